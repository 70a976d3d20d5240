package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/server"
	"github.com/lbproject/load_balancer/internal/telemetry"
)

// initialHealthBound is how long startup waits for the first round of
// health probes.
const initialHealthBound = time.Second

// run starts the balancer with cfg and serves until SIGTERM or SIGINT, then
// drains gracefully; a second signal exits at once. reload re-reads the
// configuration for SIGHUP and the file watcher.
func run(ctx context.Context, cfg *config.Config, f *flags, reload func() (*config.Config, error)) error {
	if _, err := telemetry.ParseLevel(cfg.Log.Level); err != nil {
		return usageError{err}
	}
	logFile := cfg.Log.File
	if logFile == "" {
		logFile = config.DefaultLogFile(time.Now())
	}
	log, closeLog, err := telemetry.NewLogger(telemetry.LogOptions{
		File: logFile, Level: cfg.Log.Level, Format: cfg.Log.Format,
		MaxSizeMB: cfg.Log.MaxSizeMB, MaxBackups: cfg.Log.MaxBackups,
		Stderr: os.Stderr,
	})
	if err != nil {
		return err
	}
	defer closeLog.Close()

	metrics := newMetrics(cfg)
	srv, err := server.NewWithOptions(cfg, log, serverOptions(metrics))
	if err != nil {
		return err
	}
	telemetry.LogTracingErrors(log)
	tracer, stopTracing, err := telemetry.NewTracer(ctx, cfg.Tracing, buildVersion())
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer flushTraces(log, stopTracing)
	if tracer != nil { // a nil *Tracer in the interface would not be nil
		srv.Handler().Tracer = tracer
		log.Info("tracing on", "service", cfg.Tracing.ServiceName)
	}
	addr := net.JoinHostPort(cfg.Listen.Host, strconv.Itoa(cfg.Listen.Port))
	if err := srv.Listen(addr); err != nil {
		return err
	}
	stopAdmin, err := startAdmin(log, cfg, srv, metrics, func() server.Reload {
		return applyReload(srv, reload, "admin API")
	})
	if err != nil {
		return err
	}
	defer stopAdmin()
	// One bounded round of probes first: backends proven down start out of
	// rotation, the others start healthy.
	srv.CheckHealth(ctx, initialHealthBound)

	watchCtx, stopWatching := context.WithCancel(ctx)
	var watching sync.WaitGroup
	defer func() { stopWatching(); watching.Wait() }()
	if f.watch && f.configFile != "" {
		interval := time.Duration(f.intervalMS) * time.Millisecond
		w := config.NewWatcher(f.configFile, interval)
		watching.Go(func() {
			w.Run(watchCtx,
				func() { applyReload(srv, reload, "file change") },
				func(err error) { log.Warn("config watch: no file notifications, polling only", "error", err.Error()) })
		})
		log.Info("watching config file", "file", f.configFile, "interval", interval.String())
	} else if f.watch {
		log.Warn("--watch needs a config file (-c); nothing to watch")
	}

	log.Info("load balancer started", "addr", srv.Addr().String(), "strategy", cfg.Strategy,
		"backends", len(cfg.Backends), "config", cfg.Source, "log_file", logFile, "version", buildVersion())

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(signals)

	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	for {
		select {
		case err := <-served:
			return err
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				applyReload(srv, reload, "SIGHUP")
				continue
			}
			return shutdown(log, srv, sig, signals, served)
		case <-ctx.Done():
			return shutdown(log, srv, nil, signals, served)
		}
	}
}

// flushTraces exports the spans still buffered, for at most five seconds.
func flushTraces(log *slog.Logger, stop func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		log.Warn("tracing: flushing spans failed", "error", err.Error())
	}
}

// shutdown drains for at most the grace period; a second signal cuts it
// short.
func shutdown(log *slog.Logger, srv *server.Server, sig os.Signal, signals <-chan os.Signal, served <-chan error) error {
	grace := srv.GracePeriod()
	log.Info("shutting down: draining requests in flight", "signal", fmt.Sprint(sig), "grace_period", grace.String())
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	go func() {
		for {
			select {
			case s := <-signals:
				if s == syscall.SIGHUP {
					// A reload signal (log rotators send it) is not a
					// second stop signal.
					log.Info("SIGHUP ignored: shutting down")
					continue
				}
				log.Warn("second signal: exiting now", "signal", s.String())
				cancel()
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("grace period over: remaining connections closed", "error", err)
	}
	if err := <-served; err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// applyReload loads the configuration again and applies it; a bad file
// leaves the running configuration in service. The server logs the result
// and keeps it in its reload history.
func applyReload(srv *server.Server, reload func() (*config.Config, error), why string) server.Reload {
	return srv.Reload(why, reload)
}
