package httpin

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/testkit"
)

func testConfig(t *testing.T) Config {
	c := DefaultConfig()
	c.Address = "127.0.0.1:0"
	c.Tenants = map[string][]string{"acme": {"k1"}}
	c.Log.Dir = t.TempDir()
	c.Log.Partitions = 2
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func post(t *testing.T, addr, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/batch", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer k1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func startInput(t *testing.T, c Config, out *testkit.Outlet) (*Node, runtime.Input, func()) {
	t.Helper()
	n := NewNode(c)
	in, err := n.NewInput(runtime.Env{Pipeline: "p", Node: "collector", Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, out) }()
	deadline := time.Now().Add(5 * time.Second)
	for n.Addr() == "" {
		if time.Now().After(deadline) {
			t.Fatal("collector did not start")
		}
		time.Sleep(time.Millisecond)
	}
	return n, in, func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if err := in.(runtime.InputCloser).Close(context.Background()); err != nil {
			t.Error(err)
		}
	}
}

// Events answered 200 reach the pipeline from the log, with the
// collector's metadata as headers, marked checked; a restart does not read them again once
// acknowledged.
func TestEventsFlowThroughTheLog(t *testing.T) {
	c := testConfig(t)
	out := &testkit.Outlet{}
	n, _, stop := startInput(t, c, out)
	code, body := post(t, n.Addr(), `[{"event_id":"a","x":1},{"event_id":"b","x":2}]`)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := out.WaitEvents(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, e := range out.Events() {
		tenant, _ := e.Header("tenant")
		id, _ := e.Header("event_id")
		if string(tenant) != "acme" || (string(id) != "a" && string(id) != "b") || string(e.Key) != string(id) {
			t.Fatalf("event %s: tenant %q id %q key %q", e.Value, tenant, id, e.Key)
		}
		if !e.Checked() {
			t.Fatalf("event %s is not marked checked: processors would validate it again", e.Value)
		}
	}
	stop()

	out = &testkit.Outlet{}
	n, _, stop = startInput(t, c, out)
	code, _ = post(t, n.Addr(), `{"event_id":"c"}`)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if err := out.WaitEvents(ctx, 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // a replay of a and b would show up by now
	stop()
	if got := len(out.Events()); got != 1 {
		t.Fatalf("second run read %d events, want only the new one", got)
	}
}

// Beyond max_lag, requests are refused with 503 and Retry-After until the
// pipeline catches up.
func TestMaxLagPushesBack(t *testing.T) {
	c := testConfig(t)
	c.MaxLag = 3
	out := &testkit.Outlet{ManualAck: true}
	n, _, stop := startInput(t, c, out)
	defer stop()
	if code, body := post(t, n.Addr(), `[{"event_id":"1"},{"event_id":"2"},{"event_id":"3"},{"event_id":"4"}]`); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := out.WaitEvents(ctx, 4); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+n.Addr()+"/v1/events", strings.NewReader(`{"event_id":"5"}`))
	req.Header.Set("Authorization", "Bearer k1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over max_lag: status %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	out.Ack()
	if code, body := post(t, n.Addr(), `{"event_id":"6"}`); code != 200 {
		t.Fatalf("after catching up: status %d: %s", code, body)
	}
}
