package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is the Debian chromium package's browser (.ci/run installs
// it).
const chromiumPath = "/usr/bin/chromium"

// dashboardCard is what the test reads of one backend card.
type dashboardCard struct {
	Address  string `json:"address"`
	State    string `json:"state"`
	Pill     string `json:"pill"`
	Requests int    `json:"requests"`
}

// readCards is the page script that lists the backend cards.
const readCards = `[...document.querySelectorAll("#backends .card")].map(c => ({
	address: c.dataset.backend,
	state: c.dataset.state,
	pill: c.querySelector(".pill").textContent,
	requests: Number(c.querySelector(".requests-total").dataset.value || 0),
}))`

// TestAdminDashboardInChromium opens the live dashboard in a real headless
// Chromium while two real lb_backend processes serve traffic through the
// balancer: the page must show both backends up with requests counted,
// then one of them down once it is killed. The last view is saved to
// e2e/artifacts/dashboard.png.
func TestAdminDashboardInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("the dashboard test needs %s (Debian package chromium; .ci/run installs it): %v", chromiumPath, err)
	}
	t.Parallel()

	_, addr1 := startDemoBackend(t, "Backend 1")
	proc2, addr2 := startDemoBackend(t, "Backend 2")
	lb := startAdminBalancer(t, lbConfig("round-robin", `health_check:
  interval: 300ms
  timeout: 200ms
  fall: 1
  rise: 1
`, backendsAt(addr1, addr2)...))

	// Steady traffic for as long as the test runs: a request every 40ms.
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	c := client(t)
	traffic.Go(func() {
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if res, err := c.Get(lb.URL("/")); err == nil {
				res.Body.Close()
			}
		}
	})
	t.Cleanup(func() { close(stop); traffic.Wait() })

	ctx := ctxFor(t, 90*time.Second)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 960),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	if err := chromedp.Do(browser, chromedp.Navigate(lb.AdminURL("/"))); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	title, err := chromedp.Run(browser, chromedp.Title())
	if err != nil || !strings.Contains(title, "load_balancer") {
		t.Fatalf("page title %q (%v), want one naming load_balancer", title, err)
	}

	// Live data: both backends up, each with requests counted.
	_, err = chromedp.Run(browser, chromedp.Poll[bool](`(() => {
		const cards = `+readCards+`;
		return cards.length === 2 && cards.every(c => c.state === "up" && c.requests > 0);
	})()`, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("the dashboard never showed both backends up with traffic: %v; cards: %s", err, cardsOf(browser))
	}
	cards, err := chromedp.Run(browser, chromedp.Evaluate[[]dashboardCard](readCards))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"http://" + addr1: true, "http://" + addr2: true}
	for _, c := range cards {
		if !want[c.Address] {
			t.Errorf("card for %q, want only %v", c.Address, want)
		}
		if !strings.EqualFold(c.Pill, "up") {
			t.Errorf("%s: status pill %q, want UP", c.Address, c.Pill)
		}
	}
	// A few seconds of live rates and sparklines before the picture.
	time.Sleep(4 * time.Second)
	saveScreenshot(t, browser, "dashboard-up.png")

	// Kill Backend 2: its card turns red with state down, and the health
	// transition shows in the table.
	proc2.Signal(syscall.SIGKILL)
	_, err = chromedp.Run(browser, chromedp.Poll[bool](fmt.Sprintf(`(() => {
		const cards = %s;
		const down = cards.find(c => c.address === %q);
		const up = cards.find(c => c.address === %q);
		const events = document.querySelector("#health-events").textContent;
		return !!down && down.state === "down" && down.pill.toLowerCase() === "down" &&
			!!up && up.state === "up" && events.includes(%q);
	})()`, readCards, "http://"+addr2, "http://"+addr1, addr2),
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("the dashboard never showed %s down: %v; cards: %s", addr2, err, cardsOf(browser))
	}
	// A few more seconds of traffic, so the sparklines show the change.
	time.Sleep(4 * time.Second)
	saveScreenshot(t, browser, "dashboard.png")

	// The API agrees with the page.
	bs := apiBackends(t, lb)
	if bs[addr2].State != "down" || bs[addr1].State != "up" {
		t.Errorf("API states: %s %q, %s %q", addr1, bs[addr1].State, addr2, bs[addr2].State)
	}
	if res, err := http.Get(lb.AdminURL("/static/app.js")); err != nil || res.StatusCode != 200 {
		t.Errorf("GET /static/app.js: %v %v", res, err)
	} else {
		res.Body.Close()
	}
}

// cardsOf returns the page's cards as text, for failure messages.
func cardsOf(browser context.Context) string {
	cards, err := chromedp.Run(browser, chromedp.Evaluate[[]dashboardCard](readCards))
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%+v", cards)
}

// saveScreenshot saves the whole page to e2e/artifacts/name.
func saveScreenshot(t *testing.T, browser context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	if err := os.MkdirAll("artifacts", 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("artifacts", name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot saved to e2e/%s", path)
}
