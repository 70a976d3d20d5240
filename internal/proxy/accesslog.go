package proxy

import (
	"context"
	"log/slog"
	"net/http"
)

// logAccess writes the request's access line (when enabled) and an error
// line for failed exchanges.
func (h *Handler) logAccess(r *http.Request, ex *exchange) {
	if h.Log == nil {
		return
	}
	level := slog.LevelInfo
	if ex.Err != nil {
		level = slog.LevelWarn
	}
	if !ex.accessLog && level == slog.LevelInfo || !h.Log.Enabled(context.Background(), level) {
		return
	}
	backend := ""
	if ex.Backend != nil {
		backend = ex.Backend.String()
	}
	attrs := [...]slog.Attr{
		slog.String("client", r.RemoteAddr),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.String("proto", r.Proto),
		slog.Int("status", ex.Status),
		slog.Int64("bytes", ex.BytesOut),
		slog.Int64("bytes_in", ex.BytesIn),
		slog.Duration("duration", ex.Duration),
		slog.String("backend", backend),
		slog.Int("attempts", ex.Attempts),
		slog.Bool("sticky", ex.StickyHit),
		slog.String("trace_id", ex.TraceID),
		slog.Any("error", ex.Err),
	}
	n := len(attrs)
	if ex.Err == nil {
		n-- // no error attribute
	}
	h.Log.LogAttrs(context.Background(), level, "access", attrs[:n]...)
}
