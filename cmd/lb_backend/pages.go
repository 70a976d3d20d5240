package main

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

const timeFormat = "2006-01-02 15:04:05.000 MST"

// forwardingHeaders are the headers a proxy adds; the page shows them apart.
var forwardingHeaders = map[string]bool{
	"X-Forwarded-For":   true,
	"X-Forwarded-Proto": true,
	"X-Forwarded-Host":  true,
	"X-Forwarded-Port":  true,
	"X-Real-Ip":         true,
	"Forwarded":         true,
	"Via":               true,
}

type headerLine struct {
	Name      string
	Value     string
	Forwarded bool // set by a proxy (X-Forwarded-*, Via, ...)
}

// requestInfo is what the index page shows, as HTML or as text.
type requestInfo struct {
	Name      string
	Badge     string
	Port      int
	Style     int
	Method    string
	URI       string
	Proto     string
	Host      string
	Remote    string
	Time      string
	Served    uint64 // requests this backend's page has served, this one included
	Forwarded []headerLine
	Headers   []headerLine
}

func (b *backend) describe(r *http.Request) requestInfo {
	headers := sortedHeaders(r.Header)
	var fwd []headerLine
	for _, h := range headers {
		if h.Forwarded {
			fwd = append(fwd, h)
		}
	}
	return requestInfo{
		Name:      b.name,
		Badge:     badge(b.name),
		Port:      b.port,
		Style:     b.style,
		Method:    r.Method,
		URI:       r.RequestURI,
		Proto:     r.Proto,
		Host:      r.Host,
		Remote:    r.RemoteAddr,
		Time:      b.now().Format(timeFormat),
		Served:    b.served.Add(1),
		Forwarded: fwd,
		Headers:   headers,
	}
}

// sortedHeaders lists the headers by name, one line per value.
func sortedHeaders(h http.Header) []headerLine {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	lines := make([]headerLine, 0, len(names))
	for _, name := range names {
		for _, v := range h[name] {
			lines = append(lines, headerLine{Name: name, Value: v, Forwarded: forwardingHeaders[name]})
		}
	}
	return lines
}

// badge is the big mark on the page: the last word of the name when short
// ("Backend 2" gives "2"), else its first letter.
func badge(name string) string {
	fields := strings.Fields(name)
	if len(fields) == 0 {
		return "?"
	}
	if last := fields[len(fields)-1]; utf8.RuneCountInString(last) <= 3 {
		return last
	}
	r, _ := utf8.DecodeRuneInString(name)
	return strings.ToUpper(string(r))
}

// renderText is the plain-text page; its first line names the backend.
func renderText(info requestInfo) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s (port %d)\n\n", info.Name, info.Port)
	fmt.Fprintf(&sb, "Request: %s %s %s\n", info.Method, info.URI, info.Proto)
	fmt.Fprintf(&sb, "Host:    %s\n", info.Host)
	fmt.Fprintf(&sb, "Client:  %s\n", info.Remote)
	fmt.Fprintf(&sb, "Time:    %s\n", info.Time)
	fmt.Fprintf(&sb, "Served:  request #%d on this backend\n\nHeaders:\n", info.Served)
	for _, h := range info.Headers {
		fmt.Fprintf(&sb, "  %s: %s\n", h.Name, h.Value)
	}
	return sb.String()
}

func renderPage(info requestInfo) ([]byte, error) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, info); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// pageHTML is the page; style1 and style2 are the two stylings (Backend 1 a
// light card, Backend 2 a dark terminal with a sidebar). The inline icon
// keeps browsers from spending a balancer pick on /favicon.ico.
const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Name}} (port {{.Port}})</title>
{{if eq .Style 2}}<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' height='16' fill='%23ff9f1c'/%3E%3C/svg%3E">
<style>{{template "style2"}}</style>{{else}}<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='8' fill='%231565c0'/%3E%3C/svg%3E">
<style>{{template "style1"}}</style>{{end}}
</head>
<body class="style{{.Style}}">
<main>
<header class="banner">
  <div class="badge">{{.Badge}}</div>
  <div>
    <h1>{{.Name}}</h1>
    <p class="sub">served this request on port {{.Port}}</p>
  </div>
</header>
<section class="facts">
  <h2>Request</h2>
  <dl>
    <dt>Request</dt><dd><code>{{.Method}} {{.URI}} {{.Proto}}</code></dd>
    <dt>Host</dt><dd>{{.Host}}</dd>
    <dt>Client</dt><dd>{{.Remote}}</dd>
    <dt>Time</dt><dd>{{.Time}}</dd>
    <dt>Served</dt><dd>request #{{.Served}} on this backend</dd>
  </dl>
</section>
<section class="forwarded">
  <h2>Proxy headers</h2>
  {{- if .Forwarded}}
  <table>{{range .Forwarded}}
    <tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>{{end}}
  </table>
  {{- else}}
  <p class="none">None: this request did not come through a proxy.</p>
  {{- end}}
</section>
<section class="headers">
  <h2>All request headers</h2>
  <table>{{range .Headers}}
    <tr{{if .Forwarded}} class="fwd"{{end}}><th>{{.Name}}</th><td>{{.Value}}</td></tr>{{end}}
  </table>
</section>
<footer>
  Refresh to see the load balancer pick a backend.
  Try <a href="/chunked">/chunked</a>, <a href="/sse">/sse</a>, <a href="/delay?d=2s">/delay?d=2s</a>,
  <a href="/status/503">/status/503</a>, <a href="/echo">/echo</a>, <a href="/bytes/1k">/bytes/1k</a>,
  <a href="/health">/health</a>.
</footer>
</main>
</body>
</html>
{{define "style1"}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;padding:3rem 1rem;display:flex;justify-content:center;align-items:flex-start;
  font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#0d2b45;
  background:linear-gradient(135deg,#e3f2fd,#bbdefb)}
main{width:100%;max-width:780px;background:#fff;border-radius:14px;overflow:hidden;
  box-shadow:0 10px 30px rgba(13,71,161,.18)}
.banner{display:flex;gap:1.2rem;align-items:center;background:#1565c0;color:#fff;padding:1.5rem 2rem}
.badge{flex:none;width:3.6rem;height:3.6rem;border-radius:50%;background:#fff;color:#1565c0;
  display:grid;place-items:center;font-size:1.6rem;font-weight:700}
h1{margin:0;font-size:1.9rem}
.sub{margin:.2rem 0 0;opacity:.85}
section{padding:1rem 2rem 0}
h2{margin:.6rem 0;font-size:.85rem;text-transform:uppercase;letter-spacing:.08em;color:#1565c0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1.2rem;margin:0}
dt{font-weight:600;color:#5c7080}
dd{margin:0;word-break:break-all}
table{width:100%;border-collapse:collapse;font-size:.9rem}
th,td{text-align:left;vertical-align:top;padding:.35rem .6rem;border-bottom:1px solid #e3eaf2;word-break:break-all}
th{width:32%;color:#5c7080;font-weight:600}
tr.fwd{background:#fff8e1}
.forwarded table{background:#fff8e1;border-radius:8px}
.none{margin:0;color:#78909c;font-style:italic}
footer{margin-top:1.2rem;padding:1rem 2rem 1.5rem;font-size:.85rem;color:#78909c;border-top:1px solid #e3eaf2}
a{color:#1565c0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
{{end}}
{{define "style2"}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;background:#14161f;color:#d7dae0;
  font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
main{display:grid;min-height:100vh;grid-template-columns:280px 1fr;
  grid-template-areas:"banner facts" "banner forwarded" "banner headers" "banner footer";
  grid-template-rows:auto auto auto 1fr}
.banner{grid-area:banner;display:flex;flex-direction:column;gap:1rem;padding:2.5rem 1.6rem;
  background:#1f2233;border-right:4px solid #ff9f1c}
.badge{font-size:5rem;font-weight:700;line-height:1;color:#ff9f1c}
h1{margin:0;font-size:1.5rem;color:#fff}
.sub{margin:0;color:#8b90a5}
.facts{grid-area:facts}.forwarded{grid-area:forwarded}.headers{grid-area:headers}footer{grid-area:footer}
section{padding:1.4rem 2.2rem 0}
h2{margin:.2rem 0 .7rem;font-size:.95rem;color:#2ec4b6}
h2::before{content:"$ ";color:#ff9f1c}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1.4rem;margin:0}
dt{color:#8b90a5}
dd{margin:0;color:#fff;word-break:break-all}
table{width:100%;border-collapse:collapse;font-size:.85rem}
th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px dashed #2c3047;word-break:break-all}
th{width:32%;color:#8b90a5;font-weight:400}
tr.fwd td,.forwarded td{color:#2ec4b6}
.none{margin:0;color:#8b90a5}
footer{padding:1.6rem 2.2rem;font-size:.8rem;color:#8b90a5;align-self:end}
a{color:#ff9f1c}
@media (max-width:720px){
  main{grid-template-columns:1fr;grid-template-areas:"banner" "facts" "forwarded" "headers" "footer";grid-template-rows:none}
  .banner{border-right:0;border-bottom:4px solid #ff9f1c;flex-direction:row;align-items:center}
}
{{end}}`
