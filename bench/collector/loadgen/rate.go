package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sync"
	"time"
)

type rateConfig struct {
	url         *url.URL
	key         string
	contentType string
	bodies      [][]byte
	rate        float64
	duration    time.Duration
	warmup      time.Duration
	conns       int
	timeout     time.Duration
}

func parseRateFlags(args []string) (rateConfig, error) {
	fs := flag.NewFlagSet("rate", flag.ContinueOnError)
	rawURL := fs.String("url", "", "URL to POST to, such as http://127.0.0.1:8080/v1/events")
	key := fs.String("key", "", "write key, sent as Authorization: Bearer KEY (omitted when empty)")
	contentType := fs.String("content-type", "application/json", "Content-Type of the bodies")
	prefix := fs.String("bodies", "", "body files PREFIX-0, PREFIX-1, ... (see loadgen bodies), sent in turn")
	rate := fs.Float64("rate", 1000, "requests per second")
	duration := fs.Duration("duration", 10*time.Second, "how long to measure, after the warm-up")
	warmup := fs.Duration("warmup", 2*time.Second, "how long to send at the rate before measuring")
	conns := fs.Int("conns", 64, "keep-alive connections; a due request waits for a free one, and the wait counts as latency")
	timeout := fs.Duration("timeout", 10*time.Second, "longest wait for one answer; longer counts as an error and reconnects")
	if err := fs.Parse(args); err != nil {
		return rateConfig{}, err
	}
	c := rateConfig{key: *key, contentType: *contentType, rate: *rate, duration: *duration, warmup: *warmup, conns: *conns, timeout: *timeout}
	var errs []error
	u, err := url.Parse(*rawURL)
	switch {
	case *rawURL == "":
		errs = append(errs, errors.New("-url is required"))
	case err != nil:
		errs = append(errs, fmt.Errorf("-url: %w", err))
	case u.Scheme != "http" || u.Host == "":
		errs = append(errs, fmt.Errorf("-url %q: want http://host:port/path", *rawURL))
	default:
		c.url = u
	}
	if *prefix == "" {
		errs = append(errs, errors.New("-bodies is required"))
	} else if c.bodies, err = loadBodies(*prefix); err != nil {
		errs = append(errs, err)
	}
	if c.rate <= 0 {
		errs = append(errs, fmt.Errorf("-rate is %v: want > 0", c.rate))
	}
	if c.duration <= 0 || c.warmup < 0 || c.timeout <= 0 {
		errs = append(errs, errors.New("-duration and -timeout must be > 0, -warmup >= 0"))
	}
	if c.conns < 1 {
		errs = append(errs, fmt.Errorf("-conns is %d: want >= 1", c.conns))
	}
	return c, errors.Join(errs...)
}

// result is what one worker saw of the measured requests (due after the
// warm-up).
type result struct {
	lat    histogram
	ok     uint64 // answered 2xx
	non2xx uint64
	errors uint64 // no answer: connection error or timeout
}

func runRate(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseRateFlags(args)
	if err != nil {
		return err
	}
	requests := make([][]byte, len(cfg.bodies))
	for i, b := range cfg.bodies {
		requests[i] = buildRequest(cfg.url, cfg.key, cfg.contentType, b)
	}

	// Connect before the clock starts.
	workers := make([]*worker, cfg.conns)
	for i := range workers {
		workers[i] = &worker{addr: cfg.url.Host, timeout: cfg.timeout, requests: requests, next: i}
		if err := workers[i].connect(); err != nil {
			for _, w := range workers[:i] {
				w.close()
			}
			return err
		}
	}

	total := int64(cfg.rate * (cfg.warmup + cfg.duration).Seconds())
	start := time.Now().Add(20 * time.Millisecond)
	measureFrom := start.Add(cfg.warmup)
	// A request not handed to a connection by then was not sent: the server
	// fell so far behind that the run is over.
	giveUp := start.Add(cfg.warmup + cfg.duration + cfg.timeout)
	due := make(chan time.Time, cfg.conns)
	results := make([]result, cfg.conns)
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() {
			defer w.close()
			w.run(due, measureFrom, &results[i])
		})
	}

	// The schedule: request k is due at start + k/rate.
	nanosPerReq := float64(time.Second) / cfg.rate
	stopAt := time.NewTimer(time.Until(giveUp))
	defer stopAt.Stop()
	k := int64(0)
schedule:
	for k < total {
		at := start.Add(time.Duration(float64(k) * nanosPerReq))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		select {
		case due <- at:
			k++
		case <-ctx.Done():
			break schedule
		case <-stopAt.C:
			break schedule
		}
	}
	unsent := total - k
	close(due)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}

	var sum result
	for i := range results {
		sum.lat.merge(&results[i].lat)
		sum.ok += results[i].ok
		sum.non2xx += results[i].non2xx
		sum.errors += results[i].errors
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Fprintf(stdout, "rate=%.0f duration_s=%.1f sent=%d ok=%d non_2xx=%d errors=%d unsent=%d achieved_rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n",
		cfg.rate, cfg.duration.Seconds(), sum.ok+sum.non2xx+sum.errors, sum.ok, sum.non2xx, sum.errors, unsent,
		float64(sum.ok+sum.non2xx)/cfg.duration.Seconds(),
		ms(sum.lat.quantile(0.50)), ms(sum.lat.quantile(0.90)), ms(sum.lat.quantile(0.99)), ms(sum.lat.quantile(0.999)), ms(sum.lat.max))
	return nil
}
