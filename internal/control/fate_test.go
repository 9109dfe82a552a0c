package control_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/weir-dev/weir/internal/control"
)

const fatePipeline = `
name: fate-test
control: {address: ""}
inputs:
  gen: {type: generate, rate: 2000, seed: 7}
processors:
  no_views: {type: filter, from: gen, expr: 'type != "view"'}
  tagged: {type: map, from: no_views, set: {tagged: 'true'}}
  checked: {type: map, from: tagged, set: {page_id: 'type == "purchase" ? int(page) : 0'}, on_error: dead_letter, dead_letter: dlq}
  per_user: {type: window, from: gen, key_by: user_id, window: tumbling, time: processing, size: 500ms, aggregates: {n: count()}}
outputs:
  sink: {type: discard, from: checked}
  dlq: {type: discard}
  counts: {type: discard, from: per_user}
`

// requestFate POSTs a fate request and returns the status and answer.
func requestFate(t *testing.T, lv *live, q url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := lv.client.Post(lv.base+"/api/v1/fate?"+q.Encode(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// follow requests the fate of the next event of gen that filter accepts and
// waits until it is acknowledged.
func follow(t *testing.T, lv *live, filter string) control.Fate {
	t.Helper()
	code, body := requestFate(t, lv, url.Values{"node": {"gen"}, "filter": {filter}})
	if code != http.StatusAccepted || body["state"] != "waiting" {
		t.Fatalf("POST fate: %d %v", code, body)
	}
	id := int(body["id"].(float64))
	var f control.Fate
	defer func() {
		if t.Failed() {
			t.Logf("fate: %+v steps %s", f, steps(f))
		}
	}()
	eventually(t, "the fate of an event with "+filter, func() bool {
		if c := lv.getJSON(t, "/api/v1/fate/"+jsonItoa(id), &f); c != http.StatusOK {
			t.Fatalf("GET fate %d: %d", id, c)
		}
		return f.State == "acknowledged"
	})
	return f
}

func jsonItoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// steps renders a fate as "node:what" pairs, in order.
func steps(f control.Fate) string {
	var parts []string
	for _, s := range f.Steps {
		parts = append(parts, s.Node+":"+s.What)
	}
	return strings.Join(parts, " ")
}

// The fate of an event: what each node did to it, why, and when it was
// acknowledged — on every path an event can take.
func TestEventFate(t *testing.T) {
	lv := startLive(t, fatePipeline, liveOpts{})

	t.Run("filtered out", func(t *testing.T) {
		f := follow(t, lv, `type == "view"`)
		// gen broadcasts to the chain and to the window.
		got := steps(f)
		if !strings.HasPrefix(got, "gen:read ") || !strings.Contains(got, "no_views:filtered") || !strings.Contains(got, "per_user:taken_in") ||
			!strings.HasSuffix(got, ":acknowledged") || strings.Contains(got, "sink:") {
			t.Errorf("steps %s", got)
		}
		var v map[string]any
		if err := json.Unmarshal(f.Value, &v); err != nil || v["type"] != "view" || f.Offset == nil || f.Read == nil || f.Acked == nil {
			t.Errorf("fate %+v (value %s)", f, f.Value)
		}
	})

	t.Run("changed and written", func(t *testing.T) {
		f := follow(t, lv, `type == "click"`)
		got := steps(f)
		for _, want := range []string{"gen:read", "no_views:passed", "tagged:changed", "checked:changed", "sink:written", ":acknowledged"} {
			if !strings.Contains(got, want) {
				t.Errorf("steps %s lack %s", got, want)
			}
		}
		for _, s := range f.Steps {
			if s.Node == "tagged" && !bytes.Contains(s.Value, []byte(`"tagged":true`)) {
				t.Errorf("the changed step of tagged shows %s", s.Value)
			}
			if s.Since < 0 {
				t.Errorf("step %+v before the read", s)
			}
		}
	})

	t.Run("failed and dead-lettered", func(t *testing.T) {
		f := follow(t, lv, `type == "purchase"`)
		got := steps(f)
		if !strings.Contains(got, "checked:failed") || !strings.Contains(got, "dlq:written") || strings.Contains(got, "sink:written") {
			t.Errorf("steps %s", got)
		}
		for _, s := range f.Steps {
			if s.What == "failed" && (!strings.Contains(s.Detail, "is not a number") || !strings.Contains(s.Detail, "sent to dlq")) {
				t.Errorf("failed step detail %q lacks the error or the policy", s.Detail)
			}
		}
	})

	t.Run("listed", func(t *testing.T) {
		var list control.FateList
		lv.getJSON(t, "/api/v1/fate", &list)
		if len(list.Fates) != 3 || list.Fates[0].ID < list.Fates[2].ID {
			t.Errorf("list of %d fates, want 3 newest first: %+v", len(list.Fates), list.Fates)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		for _, tc := range []struct {
			q    url.Values
			code int
		}{
			{url.Values{"node": {"nope"}}, http.StatusNotFound},
			{url.Values{"node": {"sink"}}, http.StatusBadRequest},
			{url.Values{"node": {"gen"}, "filter": {"type =="}}, http.StatusBadRequest},
		} {
			if code, body := requestFate(t, lv, tc.q); code != tc.code || body["error"] == "" {
				t.Errorf("%v: %d %v, want %d with an error", tc.q, code, body, tc.code)
			}
		}
		var e map[string]any
		if c := lv.getJSON(t, "/api/v1/fate/999", &e); c != http.StatusNotFound {
			t.Errorf("unknown fate: %d", c)
		}
	})
}
