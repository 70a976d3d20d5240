// Command load_balancer is an HTTP load balancer and reverse proxy.
//
// This file only parses flags and wires the packages together; the logic
// lives under internal/.
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lbproject/load_balancer/internal/balancer"
	"github.com/lbproject/load_balancer/internal/config"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module's build info is used.
var version = ""

// flags holds the command line. Settings that also exist in the config file
// apply only when given (pflag's Changed), so the file's value stands
// otherwise.
type flags struct {
	host       string
	port       uint16
	configFile string
	strategy   string
	cookieName string
	logFile    string
	logLevel   string
	logFormat  string
	watch      bool
	intervalMS uint32

	adminAddr      string
	adminTokenFile string
}

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "load_balancer:", err)
		os.Exit(exitCode(err))
	}
}

func newRootCommand() *cobra.Command {
	var f flags
	root := &cobra.Command{
		Use:   "load_balancer [flags]",
		Short: "HTTP load balancer and reverse proxy",
		Long: `load_balancer forwards HTTP requests to a pool of backends.

Without -c it balances 127.0.0.1:9001 and 127.0.0.1:9002.
Flags given on the command line win over the same settings in the config file.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags(), &f)
			if err != nil {
				return err
			}
			return run(cmd.Context(), cfg, &f, func() (*config.Config, error) { return loadConfig(cmd.Flags(), &f) })
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetVersionTemplate("load_balancer {{.Version}}\n")
	fs := root.Flags()
	fs.SortFlags = false
	fs.StringVarP(&f.host, "host", "H", config.DefaultListenHost, "host address to bind to")
	fs.Uint16VarP(&f.port, "port", "p", config.DefaultListenPort, "port to listen on")
	fs.StringVarP(&f.configFile, "config", "c", "", "YAML config file for backend servers (default: 127.0.0.1:9001 and 127.0.0.1:9002)")
	fs.StringVarP(&f.strategy, "strategy", "s", config.DefaultStrategy, "load balancer strategy: round-robin, weighted-round-robin, random or sticky")
	fs.StringVar(&f.cookieName, "cookie-name", config.DefaultCookieName, "cookie name for sticky sessions")
	fs.StringVar(&f.logFile, "log-file", "logs/lb-<timestamp>.log", "log file path")
	fs.StringVar(&f.logLevel, "log-level", config.DefaultLogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", config.DefaultLogFormat, "log format: text or json")
	fs.BoolVarP(&f.watch, "watch", "w", false, "watch the config file and reload it when it changes")
	fs.Uint32VarP(&f.intervalMS, "interval", "i", 2000, "config file watch interval in milliseconds")
	fs.StringVar(&f.adminAddr, "admin-addr", config.DefaultAdminAddr, `admin listener (metrics, API, dashboard): HOST:PORT, or "off"`)
	fs.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the bearer token that admin calls changing state (POST) need")

	root.AddCommand(newCheckCommand(), newVersionCommand())
	return root
}

// newCheckCommand is "load_balancer check -c FILE": validate and exit, like
// nginx -t.
func newCheckCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Validate a config file and exit (0: valid, 1: invalid)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("check: -c FILE is required")}
			}
			cfg, err := config.Load(file)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d backends, strategy %s)\n", file, len(cfg.Backends), cfg.Strategy)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "YAML config file to check")
	return cmd
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and exit",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "load_balancer", buildVersion())
		},
	}
}

// loadConfig reads the config file (or the built-in default) and lays the
// command-line flags that were given over it.
func loadConfig(fs *pflag.FlagSet, f *flags) (*config.Config, error) {
	if !slices.Contains(balancer.Strategies, f.strategy) {
		return nil, usageError{fmt.Errorf("invalid strategy %q: expected one of round-robin, weighted-round-robin, random, sticky", f.strategy)}
	}
	if fs.Changed("port") && f.port == 0 {
		return nil, usageError{errors.New("invalid port 0: expected 1..65535")}
	}
	if err := (&http.Cookie{Name: f.cookieName, Value: "v"}).Valid(); err != nil {
		return nil, usageError{fmt.Errorf("invalid cookie name %q: expected an HTTP token (letters, digits, !#$%%&'*+-.^_`|~)", f.cookieName)}
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		return nil, usageError{fmt.Errorf("invalid log format %q: expected text or json", f.logFormat)}
	}
	if fs.Changed("admin-addr") {
		if err := checkAdminAddr(f.adminAddr); err != nil {
			return nil, usageError{err}
		}
	}
	if f.intervalMS == 0 {
		return nil, usageError{errors.New("invalid interval 0: expected a positive number of milliseconds")}
	}
	var cfg *config.Config
	if f.configFile == "" {
		cfg = config.Default()
	} else {
		var err error
		if cfg, err = config.Load(f.configFile); err != nil {
			return nil, err
		}
	}
	// Each string flag and the key it overrides when given.
	overrides := []struct {
		flag  string
		key   *string
		value string
	}{
		{"host", &cfg.Listen.Host, f.host},
		{"strategy", &cfg.Strategy, f.strategy},
		{"cookie-name", &cfg.Sticky.CookieName, f.cookieName},
		{"log-file", &cfg.Log.File, f.logFile},
		{"log-level", &cfg.Log.Level, f.logLevel},
		{"log-format", &cfg.Log.Format, f.logFormat},
		{"admin-addr", &cfg.Admin.Addr, f.adminAddr},
		{"admin-token-file", &cfg.Admin.TokenFile, f.adminTokenFile},
	}
	for _, o := range overrides {
		if fs.Changed(o.flag) {
			*o.key = o.value
		}
	}
	if fs.Changed("port") {
		cfg.Listen.Port = int(f.port)
	}
	return cfg, nil
}

// checkAdminAddr validates --admin-addr: "off" or HOST:PORT, port 0..65535
// (0 picks a free port; the bound address is logged).
func checkAdminAddr(addr string) error {
	if addr == config.AdminOff {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr != nil || n < 0 || n > 65535 {
			err = errors.New("port out of range")
		}
	}
	if err != nil {
		return fmt.Errorf("invalid admin address %q: expected \"off\" or HOST:PORT, e.g. %s", addr, config.DefaultAdminAddr)
	}
	return nil
}

// usageError marks a bad command line (exit status 2, as flag parsing
// errors have).
type usageError struct{ error }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	v := "devel"
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			v += " " + s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			v += "+dirty"
		}
	}
	return v
}
