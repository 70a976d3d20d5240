package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// logAccess writes the request's access line (when enabled) and an error
// line for failed exchanges.
func (h *Handler) logAccess(r *http.Request, ex *exchange) {
	if h.Log == nil {
		return
	}
	level := slog.LevelInfo
	if ex.err != nil {
		level = slog.LevelWarn
	}
	if !ex.accessLog && level == slog.LevelInfo {
		return
	}
	backend := ""
	if ex.backend != nil {
		backend = ex.backend.String()
	}
	attrs := [...]slog.Attr{
		slog.String("client", r.RemoteAddr),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.String("proto", r.Proto),
		slog.Int("status", ex.status),
		slog.Int64("bytes", ex.bytes),
		slog.Duration("duration", time.Since(ex.start)),
		slog.String("backend", backend),
		slog.Int("attempts", ex.attempts),
		slog.Bool("sticky", ex.stickyHit),
		slog.Any("error", ex.err),
	}
	n := len(attrs)
	if ex.err == nil {
		n-- // no error attribute
	}
	h.Log.LogAttrs(context.Background(), level, "access", attrs[:n]...)
}
