package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// Body set written by the bodies mode. Several distinct bodies, so that
// nothing keyed on the body or on event ids (caches, dedup) is trivially
// hit; every event id is unique across the set.
const (
	batchBodies  = 16
	batchEvents  = 100
	singleBodies = 256
	bodiesSeed   = 20260101
)

var eventTypes = [...]string{"page_view", "page_view", "page_view", "click", "click", "add_to_cart", "purchase", "search"}

var pages = [...]string{"/", "/products/%d", "/products/%d/reviews", "/search?q=shoes&page=%d", "/cart", "/checkout"}

// appendEvent appends one web-analytics event of about 200 bytes of
// compact JSON.
func appendEvent(b []byte, r *rand.Rand, seq int) []byte {
	var id [16]byte
	for i := range id {
		id[i] = byte(r.Uint32())
	}
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	b = append(b, `{"event_id":"`...)
	b = fmt.Appendf(b, "%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
	b = append(b, `","type":"`...)
	b = append(b, eventTypes[r.IntN(len(eventTypes))]...)
	b = fmt.Appendf(b, `","user_id":"u_%06d","session_id":"s_%08x","ts":%d,"page":"`,
		r.IntN(1_000_000), r.Uint32(), 1767225600000+int64(seq)*37)
	page := pages[r.IntN(len(pages))]
	if bytes.Contains([]byte(page), []byte("%d")) {
		b = fmt.Appendf(b, page, 1+r.IntN(999))
	} else {
		b = append(b, page...)
	}
	b = fmt.Appendf(b, `","props":{"price":%d.%02d,"currency":"EUR"}}`, r.IntN(200), r.IntN(100))
	return b
}

func runBodies(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bodies", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory to write the bodies to (created if missing)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("bodies: -dir is required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(bodiesSeed, 0))
	seq, events, size := 0, 0, 0
	write := func(name string, n int) error {
		var b []byte
		for i := range n {
			if i > 0 {
				b = append(b, '\n') // NDJSON; no newline after the last event
			}
			start := len(b)
			b = appendEvent(b, r, seq)
			seq++
			events++
			size += len(b) - start
		}
		return os.WriteFile(filepath.Join(*dir, name), b, 0o644)
	}
	for i := range batchBodies {
		if err := write("batch"+strconv.Itoa(batchEvents)+"-"+strconv.Itoa(i), batchEvents); err != nil {
			return err
		}
	}
	for i := range singleBodies {
		if err := write("single-"+strconv.Itoa(i), 1); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "bodies: %d x %d events and %d single events, %d bytes/event on average\n",
		batchBodies, batchEvents, singleBodies, size/events)
	return nil
}

// loadBodies reads prefix-0, prefix-1, ... until one is missing.
func loadBodies(prefix string) ([][]byte, error) {
	var bodies [][]byte
	for i := 0; ; i++ {
		b, err := os.ReadFile(prefix + "-" + strconv.Itoa(i))
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, b)
	}
	if len(bodies) == 0 {
		return nil, fmt.Errorf("no bodies %s-0, %s-1, ...: run loadgen bodies first", prefix, prefix)
	}
	return bodies, nil
}
