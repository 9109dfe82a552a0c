package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The pipeline the browser looks at: a generator at a fixed rate, a fused
// filter → map chain, a stdout output the test reads fast and then slowly
// (the slow output), and beside it a map that fails on purchases (their
// page is no number) feeding a discard output.
const uiPipeline = `name: ui-e2e
control:
  address: ${WEIR_CONTROL_ADDRESS}
inputs:
  web:
    type: generate
    rate: 3000
    seed: 7
processors:
  not_views:
    type: filter
    from: web
    expr: type != "view"
  enrich:
    type: map
    from: not_views
    set:
      price_with_tax: round(price * 1.2 * 100) / 100
    key: user_id
  page_ids:
    type: map
    from: web
    on_error: drop
    set:
      page_id: 'type == "purchase" ? int(page) : 0'
outputs:
  console:
    type: stdout
    from: enrich
  archive:
    type: discard
    from: page_ids
`

// chromium finds the browser. make test installs Debian's chromium and sets
// WEIR_REQUIRE_CHROMIUM, so there a missing browser fails the test instead
// of skipping it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("WEIR_REQUIRE_CHROMIUM") != "" {
		t.Fatal("no chromium on PATH (make test installs Debian's chromium package)")
	}
	t.Skip("no chromium on PATH; make test installs it")
	return ""
}

// slowReader drains the pipeline's stdout: as fast as it comes, or, once
// slow is set, 256 bytes every 100 ms, which makes the stdout output the
// bottleneck of the pipeline.
type slowReader struct {
	slow  atomic.Bool
	bytes atomic.Int64
}

func (s *slowReader) drain(r io.Reader) {
	buf := make([]byte, 64<<10)
	for {
		n := len(buf)
		if s.slow.Load() {
			time.Sleep(100 * time.Millisecond)
			n = 256
		}
		m, err := r.Read(buf[:n])
		s.bytes.Add(int64(m))
		if err != nil {
			return
		}
	}
}

// parseRate reads the UI's rate text ("870", "2.9k", "1.2M").
func parseRate(s string) (float64, bool) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, strings.TrimSuffix(s, "M")
	}
	v, err := strconv.ParseFloat(s, 64)
	return v * mult, err == nil
}

// TestUIInBrowser drives the web UI in a real headless Chromium against the
// real binary: every node is drawn, the rates shown are live, a slow output
// shows up as backpressure on the stage before it, and the tail panel
// streams events that match its filter. It saves a screenshot as a test
// artifact (go test -artifacts), and to $WEIR_UI_SCREENSHOT when set (that
// is how docs/ui.png is made).
func TestUIInBrowser(t *testing.T) {
	browser := chromium(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := writeFile(t, dir, "ui.yaml", uiPipeline)
	cmd := weirCmd(t, "run", cfg)
	cmd.Env = append(os.Environ(), "WEIR_CONTROL_ADDRESS="+addr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reader := &slowReader{}
	go reader.drain(stdout)
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("weir stderr:\n%s", stderr.String())
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(1760, 1000),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer bcancel()

	// Any uncaught exception in the page fails the test.
	if err := chromedp.Listen(bctx, func(ev any) {
		if e, ok := ev.(*cdpruntime.EventExceptionThrown); ok && e.ExceptionDetails != nil {
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			t.Errorf("JavaScript exception in the UI at %s:%d: %s", d.URL, d.LineNumber+1, msg)
		}
	}); err != nil {
		t.Fatal(err)
	}

	// The control plane comes up with the pipeline; retry the page until
	// the graph is drawn.
	url := "http://" + addr + "/ui/"
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = chromedp.Do(bctx, chromedp.Navigate(url))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("open %s: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	eval := func(js string, out any) {
		t.Helper()
		raw, err := chromedp.Run(bctx, chromedp.Evaluate[[]byte](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("evaluate %s: result %s: %v", js, raw, err)
		}
	}
	// waitJS polls a JavaScript condition (twice a second) until it is true.
	waitJS := func(what, js string, within time.Duration) {
		t.Helper()
		end := time.Now().Add(within)
		for {
			var ok bool
			eval(js, &ok)
			if ok {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("UI never showed %s within %v (condition %s)", what, within, js)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	nodeText := func(node, field string) string {
		t.Helper()
		var s string
		eval(fmt.Sprintf(`(document.querySelector('#graph g.node[data-node=%q] [data-field=%q]') || {}).textContent || ""`, node, field), &s)
		return s
	}

	// Every node of the DAG is drawn.
	waitJS("the graph", `document.querySelectorAll("#graph g.node").length >= 6`, 20*time.Second)
	var drawn []string
	eval(`Array.from(document.querySelectorAll("#graph g.node")).map(g => g.getAttribute("data-node")).sort()`, &drawn)
	if got, want := strings.Join(drawn, ","), "archive,console,enrich,not_views,page_ids,web"; got != want {
		t.Fatalf("nodes drawn: %s, want %s", got, want)
	}

	// Rates are live: the console's input rate appears (the filter keeps
	// clicks and purchases, ~30% of 3000/s) and nothing is under pressure
	// while stdout is read as fast as it comes.
	waitJS("a console rate near 900/s", `(() => {
		const t = document.querySelector('#graph g.node[data-node="console"] [data-field="in_rate"]').textContent;
		const v = t.endsWith("k") ? parseFloat(t) * 1000 : parseFloat(t);
		return v > 500;
	})()`, 20*time.Second)
	fast := nodeText("console", "in_rate")
	fastRate, _ := parseRate(fast)

	// The tail panel: events of enrich whose type is purchase, only those.
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.ID("tail-node"), "enrich"),
		chromedp.SendKeys(chromedp.ID("tail-filter"), `type == "purchase"`),
		chromedp.Click(chromedp.ID("tail-start")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS("tail rows", `document.querySelectorAll("#tail-rows .tail-row").length >= 5`, 20*time.Second)
	var values []string
	eval(`Array.from(document.querySelectorAll("#tail-rows .tail-row .v")).map(e => e.textContent)`, &values)
	for _, v := range values {
		var ev struct {
			Type         string   `json:"type"`
			PriceWithTax *float64 `json:"price_with_tax"`
		}
		if err := json.Unmarshal([]byte(v), &ev); err != nil {
			t.Fatalf("tail row is not the event's JSON: %q", v)
		}
		if ev.Type != "purchase" || ev.PriceWithTax == nil {
			t.Fatalf("tail row does not match the filter or was not enriched: %s", v)
		}
	}

	// Event fate: the next purchase, followed through the graph. It
	// passes the filter, is changed by enrich and written by console, fails
	// in page_ids (dropped), and is then acknowledged.
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.ID("fate-node"), "web"),
		chromedp.SendKeys(chromedp.ID("fate-filter"), `type == "purchase"`),
		chromedp.Click(chromedp.ID("fate-start")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS("an acknowledged fate", `document.querySelector(".fate .state.acknowledged") !== null`, 20*time.Second)
	var fateSteps []string
	eval(`Array.from(document.querySelectorAll(".fate .fate-step")).map(r => r.children[1].textContent + ":" + r.getAttribute("data-what"))`, &fateSteps)
	got := strings.Join(fateSteps, " ")
	for _, want := range []string{"web:read", "not_views:passed", "enrich:changed", "console:written", "page_ids:failed", ":acknowledged"} {
		if !strings.Contains(got, want) {
			t.Fatalf("the fate shows %q, lacking %s", got, want)
		}
	}

	// Recent errors: samples of the failed events, with the error.
	waitJS("error samples", `document.querySelectorAll("#error-samples .error-sample").length > 0`, 20*time.Second)
	var sample string
	eval(`document.querySelector("#error-samples .error-sample").textContent`, &sample)
	if !strings.Contains(sample, "page_ids") || !strings.Contains(sample, "dropped") || !strings.Contains(sample, `"type":"purchase"`) {
		t.Fatalf("error sample row %q lacks the node, the action or the event", sample)
	}

	// Select a node: its charts fill the side panel.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#graph g.node[data-node="enrich"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS("the selected node's panel", `document.getElementById("side-node").textContent.includes("enrich")`, 10*time.Second)

	// The slow output: stdout is now read at ~2.5 KB/s. The stage that
	// feeds it waits on it (pressured), and the rates drop.
	reader.slow.Store(true)
	waitJS("enrich as backpressured", `document.querySelector('#graph g.node[data-node="enrich"]').classList.contains("pressured")`, 30*time.Second)
	waitJS("the console rate falling", `(() => {
		const t = document.querySelector('#graph g.node[data-node="console"] [data-field="in_rate"]').textContent;
		const v = t.endsWith("k") ? parseFloat(t) * 1000 : parseFloat(t);
		return v < 200;
	})()`, 30*time.Second)
	slow := nodeText("console", "in_rate")
	slowRate, _ := parseRate(slow)
	if !(slowRate < fastRate/2) {
		t.Fatalf("console rate went from %q to %q: not a live, falling rate", fast, slow)
	}
	var consoleClass string
	eval(`document.querySelector('#graph g.node[data-node="console"]').getAttribute("class")`, &consoleClass)
	t.Logf("console rate %s/s fast, %s/s slow; console class %q", fast, slow, consoleClass)

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.ArtifactDir(), "ui.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if p := os.Getenv("WEIR_UI_SCREENSHOT"); p != "" {
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
}
