// Package telemetry sets up what the balancer tells its operator: the
// process log (log/slog to a rotated file and stderr), and later metrics and
// tracing.
package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/natefinch/lumberjack.v2"
)

// LogOptions configure the process log.
type LogOptions struct {
	// File is the log file; "" means stderr only. Its directory is created.
	File string
	// Level is debug, info, warn or error.
	Level string
	// Format is "text" (human readable, the default) or "json".
	Format string
	// MaxSizeMB rotates the file past this size; MaxBackups rotated files
	// are kept.
	MaxSizeMB, MaxBackups int
	// Stderr also receives every line. Default true in main.
	Stderr io.Writer
}

// NewLogger returns a logger that writes to the file and to stderr, and the
// closer of the file.
func NewLogger(opts LogOptions) (*slog.Logger, io.Closer, error) {
	level, err := ParseLevel(opts.Level)
	if err != nil {
		return nil, nil, err
	}
	handlerOpts := &slog.HandlerOptions{Level: level}
	newHandler := func(w io.Writer) slog.Handler {
		if opts.Format == "json" {
			return slog.NewJSONHandler(w, handlerOpts)
		}
		return slog.NewTextHandler(w, handlerOpts)
	}
	var handlers []slog.Handler
	var closer io.Closer = io.NopCloser(nil)
	if opts.File != "" {
		if err := os.MkdirAll(filepath.Dir(opts.File), 0o755); err != nil {
			return nil, nil, fmt.Errorf("log file %s: %w", opts.File, err)
		}
		// Open once now so that a path that cannot be written is an error
		// at startup, not a silent loss later.
		f, err := os.OpenFile(opts.File, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		f.Close()
		rotating := &lumberjack.Logger{Filename: opts.File, MaxSize: opts.MaxSizeMB, MaxBackups: opts.MaxBackups}
		closer = rotating
		handlers = append(handlers, newHandler(rotating))
	}
	if opts.Stderr != nil {
		handlers = append(handlers, newHandler(opts.Stderr))
	}
	if len(handlers) == 1 {
		return slog.New(handlers[0]), closer, nil
	}
	return slog.New(slog.NewMultiHandler(handlers...)), closer, nil
}

// ParseLevel parses debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: expected debug, info, warn or error", s)
}
