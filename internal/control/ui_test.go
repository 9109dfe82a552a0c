package control_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestUIAssets checks that the control server serves the web UI at /ui/
// with the right types, nothing else under it, and that the page loads
// nothing from other hosts (it must work offline).
func TestUIAssets(t *testing.T) {
	lv := startLive(t, apiPipeline, liveOpts{})
	c := lv.client

	status, ctype, page := get(t, c, lv.base+"/ui/")
	if status != http.StatusOK || !strings.HasPrefix(ctype, "text/html") {
		t.Fatalf("GET /ui/ = %d %q, want 200 text/html", status, ctype)
	}
	for _, want := range []string{`id="app"`, `id="graph"`, `id="tail"`, `id="tail-filter"`, `id="tail-start"`, `src="app.js"`, `href="style.css"`} {
		if !strings.Contains(page, want) {
			t.Errorf("GET /ui/: the page lacks %s", want)
		}
	}

	assets := map[string]string{"index.html": page}
	for _, a := range []struct{ path, ctype, want string }{
		{"/ui/app.js", "text/javascript", "/api/v1"},
		{"/ui/style.css", "text/css", ".pressured"},
	} {
		status, ctype, body := get(t, c, lv.base+a.path)
		if status != http.StatusOK || !strings.HasPrefix(ctype, a.ctype) {
			t.Errorf("GET %s = %d %q, want 200 %s", a.path, status, ctype, a.ctype)
		}
		if !strings.Contains(body, a.want) {
			t.Errorf("GET %s: the body lacks %q", a.path, a.want)
		}
		assets[a.path] = body
	}
	// The hooks a browser test relies on.
	for _, want := range []string{`data-node`, `"in_rate"`, `"out_rate"`, `"busy"`, `"backpressure"`, `"queue"`, `"errors"`, `"pressured"`, `tail-row`} {
		if !strings.Contains(assets["/ui/app.js"], want) {
			t.Errorf("app.js lacks %s", want)
		}
	}

	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for name, body := range assets {
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("%s refers to another host: %q (every asset must be embedded)", name, external.FindString(body))
		}
		if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']//`).FindString(body); m != "" {
			t.Errorf("%s loads a protocol-relative URL: %q", name, m)
		}
	}

	for _, path := range []string{"/ui/nope.js", "/ui/index.htm", "/ui/../go.mod", "/ui/app.js/x"} {
		if status, _, _ := get(t, c, lv.base+path); status != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, status)
		}
	}
}

// TestUIRedirects checks that / and /ui lead to the UI, with or without a
// pipeline.
func TestUIRedirects(t *testing.T) {
	s := start(t, prometheus.NewRegistry())
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer noFollow.CloseIdleConnections()
	for _, path := range []string{"/", "/ui"} {
		resp, err := noFollow.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/ui/" {
			t.Errorf("GET %s = %d to %q, want a redirect to /ui/", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	status, ctype, _ := get(t, noFollow, "http://"+s.Addr()+"/ui/")
	if status != http.StatusOK || !strings.HasPrefix(ctype, "text/html") {
		t.Errorf("GET /ui/ without a pipeline = %d %q, want 200 text/html", status, ctype)
	}
}
