// Command chart draws the benchmark chart of docs/BENCHMARKS.md: requests
// per balancer CPU-second and p99 latency against client connections, one
// line per system, from ../shared/bench results.tsv files. It writes SVG
// with nothing but the standard library, so it runs on any machine.
//
//	go run ./bench/chart -o chart.svg results.tsv [more.tsv ...]
//
// Only the scenarios on the /small path are drawn (small-c1, small-c64,
// small-c512, small-c2000, ...): the same request at different concurrency.
// Each point is the median over rounds.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// sample is one measured run of one system at one connection count.
type sample struct {
	system    string
	conns     int
	reqPerCPU float64 // requests / LB CPU-second
	p99Millis float64
}

func main() {
	out := flag.String("o", "chart.svg", "output SVG file")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("usage: chart -o chart.svg results.tsv [more.tsv ...]")
	}
	var samples []sample
	for _, path := range flag.Args() {
		s, err := readResults(path)
		if err != nil {
			log.Fatal(err)
		}
		samples = append(samples, s...)
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := draw(f, medians(samples)); err != nil {
		log.Fatal(err)
	}
}

// readResults reads the /small rows of one results.tsv.
func readResults(path string) ([]sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var cols map[string]int
	var out []sample
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if cols == nil {
			cols = make(map[string]int, len(fields))
			for i, c := range fields {
				cols[c] = i
			}
			continue
		}
		get := func(name string) string {
			if i, ok := cols[name]; ok && i < len(fields) {
				return fields[i]
			}
			return ""
		}
		if !strings.HasPrefix(get("scenario"), "small-") || get("system") == "direct" {
			continue
		}
		conns, _ := strconv.Atoi(get("conns"))
		requests, _ := strconv.ParseFloat(get("requests"), 64)
		cpu, err := strconv.ParseFloat(get("lb_cpu_s"), 64)
		if err != nil || cpu == 0 {
			continue
		}
		p99, _ := strconv.ParseFloat(get("p99_us"), 64)
		out = append(out, sample{system: get("system"), conns: conns, reqPerCPU: requests / cpu, p99Millis: p99 / 1000})
	}
	return out, sc.Err()
}

// series is one system's line: connection counts and the median values.
type series struct {
	system    string
	conns     []int
	reqPerCPU []float64
	p99       []float64
}

func medians(samples []sample) []series {
	type key struct {
		system string
		conns  int
	}
	groups := map[key][]sample{}
	for _, s := range samples {
		k := key{s.system, s.conns}
		groups[k] = append(groups[k], s)
	}
	bySystem := map[string]*series{}
	for k := range groups {
		s := bySystem[k.system]
		if s == nil {
			s = &series{system: k.system}
			bySystem[k.system] = s
		}
		s.conns = append(s.conns, k.conns)
	}
	var out []series
	for name, s := range bySystem {
		slices.Sort(s.conns)
		for _, c := range s.conns {
			g := groups[key{name, c}]
			s.reqPerCPU = append(s.reqPerCPU, median(g, func(x sample) float64 { return x.reqPerCPU }))
			s.p99 = append(s.p99, median(g, func(x sample) float64 { return x.p99Millis }))
		}
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b series) int { return strings.Compare(a.system, b.system) })
	return out
}

func median(g []sample, val func(sample) float64) float64 {
	v := make([]float64, len(g))
	for i, s := range g {
		v[i] = val(s)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

var colors = []string{"#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"}

const (
	panelW, panelH = 460, 300
	marginL        = 70
	marginT        = 40
	marginB        = 50
)

// draw writes two panels side by side: requests per CPU-second and p99.
func draw(w io.Writer, all []series) error {
	width := 2*(panelW+marginL) + 80 // room for the last axis label
	height := panelH + marginT + marginB + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	panel(&b, all, marginL, "requests per balancer CPU-second (higher is better)", func(s series) []float64 { return s.reqPerCPU }, false)
	panel(&b, all, 2*marginL+panelW+40, "p99 latency, ms (lower is better)", func(s series) []float64 { return s.p99 }, true)
	// legend
	for i, s := range all {
		x := marginL + i*120
		y := marginT + panelH + marginB + 10
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", x, y-4, colors[i%len(colors)], x+20, y+1, s.system)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func panel(b *strings.Builder, all []series, x0 int, title string, values func(series) []float64, logY bool) {
	var connsAll []int
	ymax := 0.0
	ymin := math.Inf(1)
	for _, s := range all {
		connsAll = append(connsAll, s.conns...)
		for _, v := range values(s) {
			ymax = math.Max(ymax, v)
			if v > 0 {
				ymin = math.Min(ymin, v)
			}
		}
	}
	if len(connsAll) == 0 {
		return
	}
	slices.Sort(connsAll)
	connsAll = slices.Compact(connsAll)
	xmin, xmax := math.Log10(float64(max(connsAll[0], 1))), math.Log10(float64(connsAll[len(connsAll)-1]))
	if xmax == xmin {
		xmax = xmin + 1
	}
	px := func(c int) float64 {
		return float64(x0) + (math.Log10(float64(max(c, 1)))-xmin)/(xmax-xmin)*panelW
	}
	yTop := ymax * 1.1
	yLow := 0.0
	if logY {
		yLow, yTop = math.Log10(ymin/1.5), math.Log10(ymax*1.5)
	}
	py := func(v float64) float64 {
		if logY {
			v = math.Log10(math.Max(v, 1e-6))
		}
		return float64(marginT) + panelH - (v-yLow)/(yTop-yLow)*panelH
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, marginT-15, title)
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", x0, marginT, panelW, panelH)
	for _, c := range connsAll {
		x := px(c)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n",
			x, marginT, x, marginT+panelH, x, marginT+panelH+16, c)
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">client connections</text>`+"\n", x0+panelW/2, marginT+panelH+36)
	for i := 0; i <= 4; i++ {
		var v float64
		if logY {
			v = math.Pow(10, yLow+(yTop-yLow)*float64(i)/4)
		} else {
			v = yTop * float64(i) / 4
		}
		y := py(v)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			x0, y, x0+panelW, y, x0-6, y+4, label(v))
	}
	for i, s := range all {
		vals := values(s)
		var pts []string
		for j, c := range s.conns {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(c), py(vals[j])))
		}
		color := colors[i%len(colors)]
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), color)
		for _, p := range pts {
			xy := strings.Split(p, ",")
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], color)
		}
	}
}

func label(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v/1000, 'f', 0, 64) + "k"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}
