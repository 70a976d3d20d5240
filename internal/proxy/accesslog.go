package proxy

import (
	"context"
	"log/slog"
	"net/http"
)

// logAccess writes the request's access line: at Info when access logging
// is on, and at Warn, whatever the setting, when the balancer failed the
// client (an error status of its own or of a backend, or a response cut
// short). A request that succeeded after a retry stays at Info; its error
// field says what the retry covered.
func (h *Handler) logAccess(r *http.Request, ex *exchange) {
	if h.Log == nil {
		return
	}
	level := slog.LevelInfo
	if ex.Status >= 500 || ex.Aborted {
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
