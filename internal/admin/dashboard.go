package admin

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

// The dashboard is one HTML page (a template) with its script and style
// sheet, embedded in the binary: no build step, nothing fetched from
// elsewhere. The script polls the JSON API every second.
//
//go:embed dashboard
var dashboardFS embed.FS

var dashboardPage = template.Must(template.ParseFS(dashboardFS, "dashboard/index.html"))

// dashboardData fills the page template.
type dashboardData struct {
	Version string
	PollMS  int
}

// GET /: the live dashboard.
func (a *Admin) dashboard(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := dashboardPage.Execute(&buf, dashboardData{Version: a.opts.Version, PollMS: 1000}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Everything the page uses comes from this listener.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(buf.Bytes())
}

// staticFiles serves the dashboard's script and style sheet under /static/.
func staticFiles() http.Handler {
	sub, err := fs.Sub(dashboardFS, "dashboard")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ".js") && !strings.HasSuffix(r.URL.Path, ".css") {
			http.NotFound(w, r) // the page template is served at / only
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
