// Command loadgen is the collector benchmark's helper (run by
// bench/peers/collector.sh). It has two modes:
//
//	loadgen bodies -dir DIR
//	    writes the request bodies that wrk (through bench/collector/post.lua)
//	    and the fixed-rate mode send: DIR/batch100-<i> (NDJSON, 100 events
//	    of about 200 bytes) and DIR/single-<i> (one event). Output is
//	    deterministic, so every system under test gets the same bytes.
//
//	loadgen rate -url URL -bodies DIR/single -rate 20000 -duration 10s ...
//	    sends requests open loop at a fixed rate and prints the latency
//	    distribution as one line of key=value pairs.
//
// The fixed-rate mode exists because wrk is closed loop: each connection
// waits for an answer before sending the next request, so a slow answer
// delays the requests that would have followed it and they are never
// measured (coordinated omission). Here request k is due at
// start + k/rate whatever happened before, and its latency runs from that
// due time to the end of the answer: time spent waiting for a free
// connection counts.
//
// It speaks just enough HTTP/1.1 (keep-alive, Content-Length or chunked
// answers) to keep its own CPU use small, since it shares the machine with
// the server under test.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen bodies|rate [flags] (loadgen MODE -h lists the flags)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "bodies":
		err = runBodies(os.Args[2:], os.Stdout)
	case "rate":
		err = runRate(ctx, os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown mode %q: use bodies or rate", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
