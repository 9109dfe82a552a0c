package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name, in  string
		status    int
		keepAlive bool
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, true},
		{"empty", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, true},
		{"chunked", "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nTrailer: 1\r\n\r\n", 503, true},
		{"close", "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno", 400, false},
		{"until-eof", "HTTP/1.1 200 OK\r\n\r\nbody", 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A second answer follows: the first must be consumed exactly.
			r := bufio.NewReader(strings.NewReader(tc.in + "HTTP/1.1 204 No Content\r\n\r\n"))
			status, keepAlive, err := readResponse(r)
			if err != nil || status != tc.status || keepAlive != tc.keepAlive {
				t.Fatalf("got %d keepAlive=%v err=%v, want %d keepAlive=%v", status, keepAlive, err, tc.status, tc.keepAlive)
			}
			if !keepAlive {
				return
			}
			if status, _, err := readResponse(r); err != nil || status != 204 {
				t.Fatalf("next answer: %d %v, want 204", status, err)
			}
		})
	}
}

// TestRunRate runs the fixed-rate mode against a real server.
func TestRunRate(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	if err := runBodies([]string{"-dir", dir}, &out); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" || r.ContentLength <= 0 {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/v1/events")
	out.Reset()
	err := runRate(t.Context(), []string{"-url", u.String(), "-key", "k", "-bodies", dir + "/single",
		"-rate", "500", "-duration", "400ms", "-warmup", "100ms", "-conns", "4"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var sent, ok, non2xx, errs, unsent int
	var p50 float64
	line := out.String()
	if _, err := fmt.Sscanf(line[strings.Index(line, "sent="):], "sent=%d ok=%d non_2xx=%d errors=%d unsent=%d", &sent, &ok, &non2xx, &errs, &unsent); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if _, err := fmt.Sscanf(line[strings.Index(line, "p50_ms="):], "p50_ms=%g", &p50); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if ok < 150 || non2xx+errs+unsent != 0 || p50 <= 0 || p50 > float64(time.Second/time.Millisecond) {
		t.Fatalf("unexpected result: %s", line)
	}
}
