package nexmark_test

import (
	"hash/maphash"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"
)

// q0: every bid, byte for byte as the generator writes it.
func TestQ0PassThrough(t *testing.T) {
	r := runQuery(t, "q0", events)
	noLateEvents(t, r)
	var got []uint64
	eachLine(t, r, func(line []byte) { got = append(got, maphash.Bytes(lineSeed, line)) })
	slices.Sort(got)
	want := q0Reference(genConfig(), events)
	if slices.Equal(got, want) {
		t.Logf("%d bids, all passed through unchanged", len(got))
		return
	}
	wantSet := map[uint64]bool{}
	for _, h := range want {
		wantSet[h] = true
	}
	var example string
	eachLine(t, r, func(line []byte) {
		if example == "" && !wantSet[maphash.Bytes(lineSeed, line)] {
			example = string(line)
		}
	})
	t.Errorf("got %d lines, want the %d bids unchanged; a line that is no bid of the stream: %q", len(got), len(want), example)
}

func TestQ1CurrencyConversion(t *testing.T) {
	r := runQuery(t, "q1", events)
	noLateEvents(t, r)
	compareRows(t, decodeAll[q1Row](t, r), q1Reference(genConfig(), events), q1Order)
}

func TestQ2Selection(t *testing.T) {
	r := runQuery(t, "q2", events)
	noLateEvents(t, r)
	got := decodeAll[q2Row](t, r)
	if len(got) == 0 {
		t.Fatal("no bids selected: the check would prove nothing")
	}
	compareRows(t, got, q2Reference(genConfig(), events), q2Order)
}

func TestQ3LocalItemSuggestion(t *testing.T) {
	r := runQuery(t, "q3", events)
	noLateEvents(t, r)
	compareRows(t, decodeAll[q3Row](t, r), q3Reference(genConfig(), events), q3Order)
}

func TestQ4AverageClosingPrice(t *testing.T) {
	r := runQuery(t, "q4", events)
	noLateEvents(t, r)
	got := decodeAll[q4Row](t, r)
	want := q4Reference(genConfig(), events)
	if len(want) != 5 {
		t.Fatalf("the reference has %d categories, want 5: is the stream long enough?", len(want))
	}
	compareRows(t, got, want, q4Order)
}

func TestQ5HotItems(t *testing.T) {
	r := runQuery(t, "q5", events)
	noLateEvents(t, r)
	want := q5Reference(genConfig(), events)
	// 100 s of events: 50 windows, and 4 more that start before the first
	// event.
	if len(want) != 54 {
		t.Fatalf("the reference has %d windows, want 54", len(want))
	}
	compareRows(t, decodeAll[q5Row](t, r), want, q5Order)
}

func TestQ7HighestBid(t *testing.T) {
	r := runQuery(t, "q7", events)
	noLateEvents(t, r)
	want, ties := q7Reference(genConfig(), events)
	if ties > 0 {
		t.Logf("%d of %d windows have several bids at the highest price: weir keeps the first to arrive, the first in the stream with one input instance", ties, len(want))
	}
	compareRows(t, decodeAll[q7Row](t, r), want, q7Order)
}

func TestQ8MonitorNewUsers(t *testing.T) {
	r := runQuery(t, "q8", events)
	noLateEvents(t, r)
	got := decodeAll[q8Row](t, r)
	if len(got) == 0 {
		t.Fatal("no new sellers found: the check would prove nothing")
	}
	compareRows(t, got, q8Reference(genConfig(), events), q8Order)
}

func TestQ11UserSessions(t *testing.T) {
	r := runQuery(t, "q11", events)
	noLateEvents(t, r)
	compareRows(t, decodeAll[bidderRow](t, r), q11Reference(genConfig(), events), bidderOrder)
}

// q12 windows by the wall clock, so its rows differ from run to run: check
// what does not depend on timing.
func TestQ12ProcessingTimeWindows(t *testing.T) {
	r := runQuery(t, "q12", events)
	noLateEvents(t, r)
	const size = 10_000 // ms
	rows := decodeAll[bidderRow](t, r)
	want := bidsPerBidder(genConfig(), events)
	from, to := r.started.UnixMilli(), r.started.Add(r.elapsed).UnixMilli()
	got := map[string]int64{}
	seen := map[bidderRow]bool{}
	var total, wantTotal int64
	for _, row := range rows {
		if row.WindowEnd-row.WindowStart != size || row.WindowStart%size != 0 {
			t.Errorf("row %+v: not an aligned 10 s window", row)
		}
		if row.WindowEnd <= from || row.WindowStart > to {
			t.Errorf("row %+v: window outside the run [%d, %d]", row, from, to)
		}
		k := bidderRow{Key: row.Key, WindowStart: row.WindowStart}
		if seen[k] {
			t.Errorf("bidder %s has two results for the window at %d", row.Key, row.WindowStart)
		}
		seen[k] = true
		if row.Bids <= 0 {
			t.Errorf("row %+v: a window without bids", row)
		}
		got[row.Key] += row.Bids
		total += row.Bids
	}
	for _, n := range want {
		wantTotal += n
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if got[k] > want[k] {
			t.Errorf("bidder %s: %d bids counted, the stream has %d", k, got[k], want[k])
		}
	}
	if total != wantTotal {
		t.Errorf("the windows count %d bids, the stream has %d", total, wantTotal)
	}
	for k, n := range want {
		if got[k] != n && total == wantTotal {
			t.Errorf("bidder %s: %d bids counted, the stream has %d", k, got[k], n)
		}
	}
	t.Logf("%d rows, %d bidders, %d bids", len(rows), len(got), total)
}

func fmtMs(ms int64) string {
	if ms == 0 {
		return "(none)"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) + " (" + strconv.FormatInt(ms, 10) + ")"
}
