package browser

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/scaleshop/scaleshop/infra/local/stackcontrol"
	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/services/console/internal/sources"
)

// chromium is Debian's package; stackctl installs it for the test profile.
const chromium = "/usr/bin/chromium"

// browser starts a fresh headless Chromium (its own empty profile) and
// returns a tab, closed when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("no %s: `stackctl install --profile test` installs Debian's chromium package (%v)", chromium, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// This machine has no network but loopback: without these Chromium
		// keeps dialling Google's hosts.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(cctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// eval returns a JavaScript expression's value in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(cctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitFor polls expr in the page until it is true.
func waitFor(t *testing.T, ctx context.Context, timeout time.Duration, what, expr string) time.Duration {
	t.Helper()
	start := time.Now()
	stacktest.Eventually(t, timeout, what, func() error {
		if eval[bool](t, ctx, expr) {
			return nil
		}
		return fmt.Errorf("%s is false", expr)
	})
	return time.Since(start)
}

// screenshot saves the whole page as a test artifact.
func screenshot(t *testing.T, ctx context.Context, stack *stacktest.Stack, name string) string {
	t.Helper()
	dir := filepath.Join(stack.StateDir, "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(cctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
	return path
}

func nodeState(name string) string {
	return fmt.Sprintf(`(document.querySelector('[data-node=%q]') || {dataset: {}}).dataset.state`, name)
}

func nodeShare(name string) string {
	return fmt.Sprintf(`Number((document.querySelector('[data-node=%q]') || {dataset: {}}).dataset.share || "NaN")`, name)
}

func TestTheOverviewShowsEveryComponentHealthy(t *testing.T) {
	stack := stacktest.Require(t)
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(stack.Endpoints.ConsoleURL+"/"))
	waitFor(t, ctx, 60*time.Second, "every component up on the overview",
		`document.querySelector('.topology') && document.querySelector('.topology').dataset.allUp === "true"`)
	for _, c := range stack.Components {
		if got := eval[string](t, ctx, nodeState(c.Name)); got != "up" {
			t.Errorf("%s is %q on the overview, want up", c.Name, got)
		}
	}
	screenshot(t, ctx, stack, "overview")
}

// traffic sends product reads through the gateway until the test ends, so
// the clones have shares to show.
func traffic(t *testing.T, gateway string) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		client := &http.Client{Timeout: 2 * time.Second}
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/products/%d", gateway, 1+i%5), nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
}

func TestKillingACloneFromBreakItShowsItDownAndItsShareMoves(t *testing.T) {
	stack := stacktest.Require(t)
	stack.Exclusive(t)
	stack.Restart(t, "catalog-2") // whatever happens below, it runs again after
	traffic(t, stack.Endpoints.GatewayURL)
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(stack.Endpoints.ConsoleURL+"/break"))
	waitFor(t, ctx, 30*time.Second, "both catalog clones up and serving",
		nodeState("catalog-1")+` === "up" && `+nodeState("catalog-2")+` === "up" && `+nodeShare("catalog-2")+` > 0.1`)
	screenshot(t, ctx, stack, "break-before")

	run(t, ctx, chromedp.Click(chromedp.CSS(`button[data-button="kill catalog-2"]`)))
	took := waitFor(t, ctx, 10*time.Second, "catalog-2 down on the overview", nodeState("catalog-2")+` !== "up"`)
	if took > 5*time.Second {
		t.Errorf("catalog-2 showed as down %s after the kill, want within 5 s", took.Round(100*time.Millisecond))
	}
	waitFor(t, ctx, 30*time.Second, "catalog-1 takes catalog-2's share", nodeShare("catalog-1")+` >= 0.95`)
	waitFor(t, ctx, 30*time.Second, "the kill on the timeline, done",
		`!!document.querySelector('.timeline li.ok[data-action="kill"][data-target="catalog-2"]')`)
	screenshot(t, ctx, stack, "break-killed")

	run(t, ctx, chromedp.Click(chromedp.CSS(`button[data-button="start catalog-2"]`)))
	waitFor(t, ctx, 3*time.Minute, "catalog-2 started again", nodeState("catalog-2")+` === "up"`)
	waitFor(t, ctx, 60*time.Second, "catalog-2 serving again", nodeShare("catalog-2")+` > 0`)
	if !eval[bool](t, ctx, `!!document.querySelector('.timeline li.ok[data-action="start"][data-target="catalog-2"]')`) {
		t.Error("the start is not on the timeline as done")
	}
}

func TestAnOrderPlacedInTheShopIsConfirmedAndItsTraceSpansEveryTier(t *testing.T) {
	stack := stacktest.Require(t)
	ctx := browser(t)
	// A product of its own (the seed has 10,000, each in stock), so other
	// tests' orders cannot have sold it out.
	id := strconv.Itoa(1000 + int(time.Now().UnixNano()%8000))
	run(t, ctx,
		chromedp.Navigate(stack.Endpoints.ConsoleURL+"/shop#/products/"+id),
		chromedp.WaitVisible(chromedp.ID("product")),
	)
	waitFor(t, ctx, 30*time.Second, "product "+id+" shown", `document.getElementById("product").dataset.product === "`+id+`"`)
	run(t, ctx, chromedp.Click(chromedp.ID("order")))
	waitFor(t, ctx, 60*time.Second, "the order confirmed", `document.getElementById("order-state").dataset.state === "confirmed"`)
	if steps := eval[string](t, ctx, `document.getElementById("order-steps").innerText`); !strings.Contains(steps, "accepted (202, pending)") {
		t.Errorf("the order's steps do not start with its 202: %q", steps)
	}
	screenshot(t, ctx, stack, "shop-order")

	run(t, ctx, chromedp.Click(chromedp.ID("order-trace-link")))
	// Services export spans in batches: the worker's arrive last.
	services := `["gateway", "orders", "worker", "catalog"].every(s => document.querySelector('.span[data-service="' + s + '"]'))`
	stacktest.Eventually(t, 60*time.Second, "spans from gateway, orders, worker and catalog on the trace page", func() error {
		if eval[bool](t, ctx, services) {
			return nil
		}
		shown := eval[string](t, ctx, `Array.from(document.querySelectorAll('.service')).map(e => e.textContent).join(", ")`)
		says := eval[string](t, ctx, `Array.from(document.querySelectorAll('.problems')).map(e => e.textContent).join(" ")`)
		run(t, ctx, chromedp.Reload())
		return fmt.Errorf("the trace page shows services %q and says %q; spans lost on the way, by service: %s", shown, says, spanLosses(stack))
	})
	if !eval[bool](t, ctx, `!!document.querySelector('.kafka-hop')`) {
		t.Error("the trace page does not show the Kafka hop")
	}
	screenshot(t, ctx, stack, "trace")
}

func TestASecondViewOfAProductComesFromTheBrowsersCacheOrA304(t *testing.T) {
	stack := stacktest.Require(t)
	ctx := browser(t)
	var (
		mu        sync.Mutex
		requests  []network.RequestID // of /api/products/2, in order
		fromCache = map[network.RequestID]bool{}
		status    = map[network.RequestID]int64{}
	)
	err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			if strings.HasSuffix(ev.Request.URL, "/api/products/2") {
				requests = append(requests, ev.RequestID)
			}
		case *network.EventRequestServedFromCache:
			fromCache[ev.RequestID] = true
		case *network.EventResponseReceived:
			status[ev.RequestID] = ev.Response.Status
			if ev.Response.FromDiskCache || ev.Response.FromPrefetchCache {
				fromCache[ev.RequestID] = true
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx,
		chromedp.Navigate(stack.Endpoints.ConsoleURL+"/shop#/products/2"),
	)
	waitFor(t, ctx, 30*time.Second, "product 2 shown", `document.getElementById("product").dataset.product === "2"`)
	first := eval[string](t, ctx, `document.getElementById("product-provenance").textContent`)
	run(t, ctx, chromedp.Click(chromedp.ID("view-again")))
	stacktest.Eventually(t, 30*time.Second, "the second view's response", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(requests) < 2 {
			return fmt.Errorf("%d requests for product 2 so far", len(requests))
		}
		if id := requests[1]; !fromCache[id] && status[id] == 0 {
			return fmt.Errorf("no response yet")
		}
		return nil
	})
	mu.Lock()
	second := requests[1]
	cached, code := fromCache[second], status[second]
	firstCode := status[requests[0]]
	mu.Unlock()
	if firstCode != http.StatusOK {
		t.Errorf("the first view was %d, want 200 from the network", firstCode)
	}
	if !cached && code != http.StatusNotModified {
		t.Errorf("the second view was %d from the network; want the browser's cache or a 304", code)
	}
	waitFor(t, ctx, 10*time.Second, "the page says where the second view came from",
		`/your browser's cache|304 Not Modified/.test(document.getElementById("product-provenance").textContent)`)
	t.Logf("first view: %s; second: cached=%v status=%d", first, cached, code)
	screenshot(t, ctx, stack, "shop-product")
}

func TestTheConceptsPageHasAPanelPerConcept(t *testing.T) {
	stack := stacktest.Require(t)
	ctx := browser(t)
	run(t, ctx, chromedp.Navigate(stack.Endpoints.ConsoleURL+"/concepts"))
	if n := eval[int](t, ctx, `document.querySelectorAll('article.panel').length`); n != 13 {
		t.Errorf("%d concept panels, want 13", n)
	}
	waitFor(t, ctx, 60*time.Second, "the caching panel's chart drawn from Prometheus",
		`!!document.querySelector('#caching svg.spark polyline')`)
	screenshot(t, ctx, stack, "concepts")
}

func TestACrossOriginActionIsRefused(t *testing.T) {
	stack := stacktest.Require(t)
	req, _ := http.NewRequest(http.MethodPost, stack.Endpoints.ConsoleURL+"/break/actions",
		strings.NewReader("action=kill&target=catalog-2"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://another-site.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site POST to Break it: %s, want 403", resp.Status)
	}
	running, err := stackRunning(stack)
	if err != nil {
		t.Fatal(err)
	}
	if !running["catalog-2"] {
		t.Error("catalog-2 is not running after a refused cross-site kill")
	}
}

func stackRunning(stack *stacktest.Stack) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return stackcontrol.Running(ctx, stack.StateDir)
}

// spanLosses is what each service's span pipeline dropped or failed to
// export, as Prometheus last scraped it: a trace that never reaches Jaeger
// was either lost there or never sampled.
func spanLosses(stack *stacktest.Stack) string {
	prom, err := sources.NewPrometheus(stack.Endpoints.PrometheusURL)
	if err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	samples, err := prom.Instant(ctx, `sum by (job) (otel_spans_dropped_total + otel_spans_export_failed_total)`)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, s := range samples {
		out = append(out, fmt.Sprintf("%s %g", s.Labels["job"], s.Value))
	}
	return strings.Join(out, ", ")
}
