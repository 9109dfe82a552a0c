package collector

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"

	"github.com/weir-dev/weir/internal/log"
)

// Paths served.
const (
	pathEvents = "/v1/events"
	pathBatch  = "/v1/batch"
)

// Record header names.
const (
	HeaderTenant     = "tenant"
	HeaderReceivedAt = "received_at"
	HeaderEventID    = "event_id"
	HeaderClientIP   = "client_ip"
	HeaderUABrowser  = "ua_browser"
	HeaderUAOS       = "ua_os"
	HeaderUADevice   = "ua_device"
)

// receivedAtLayout is RFC 3339 with milliseconds, always in UTC ("Z").
const receivedAtLayout = "2006-01-02T15:04:05.000Z07:00"

// Response header values.
const (
	hdrAllow        = "POST, OPTIONS"
	hdrAllowHeaders = "Authorization, Content-Type, Content-Encoding"
)

// reqState is what one request needs, pooled: its buffers are reused so
// that steady-state requests allocate little and nothing per event.
type reqState struct {
	body  []byte
	dec   *decoder
	lim   limitedBody
	recs  []log.Record
	hdrs  []log.Header
	arena []byte // header values: received_at, client_ip, event ids
	rnd   []byte // random bytes for generated event ids
	resp  []byte
}

// serve is the fasthttp handler.
//
// A panic while serving a request (a bug) is answered 500 and logged with
// its stack, and the connection is closed; the server goes on, as net/http
// would (fasthttp alone would let it end the process).
func (s *Server) serve(c *fasthttp.RequestCtx) {
	start := time.Now()
	code := http.StatusInternalServerError
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("collector: panic while serving a request; answered 500", "panic", v, "stack", string(debug.Stack()))
			c.Response.Reset()
			c.SetConnectionClose()
			code = s.fail(c, http.StatusInternalServerError, "internal error: the events were not stored; retry later")
		}
		s.m.request(code)
		s.m.requestSeconds.Observe(time.Since(start).Seconds())
	}()
	code = s.handle(c)
}

// serveError answers a request the HTTP server could not read: headers
// too large (431), too slow (408), or malformed (400).
func (s *Server) serveError(c *fasthttp.RequestCtx, err error) {
	code, msg := http.StatusBadRequest, "malformed HTTP request"
	var small *fasthttp.ErrSmallBuffer
	var nerr net.Error
	switch {
	case errors.As(err, &small):
		code, msg = http.StatusRequestHeaderFieldsTooLarge, "request headers larger than http.max_header_bytes"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		code, msg = http.StatusRequestEntityTooLarge, s.bodyTooLarge()
	case errors.As(err, &nerr) && nerr.Timeout():
		code, msg = http.StatusRequestTimeout, "timed out reading the request"
	}
	c.SetConnectionClose()
	s.m.request(s.fail(c, code, msg))
}

// handle answers one request and returns the status it answered with.
func (s *Server) handle(c *fasthttp.RequestCtx) int {
	form := formBatch
	switch string(c.Path()) {
	case pathBatch:
	case pathEvents:
		form = formSingle
	default:
		return s.refuse(c, http.StatusNotFound, "not found: the collector serves POST /v1/events and POST /v1/batch")
	}
	rh := &c.Request.Header
	h := &c.Response.Header

	origin := rh.Peek("Origin")
	if len(origin) > 0 {
		if !s.anyOrigin && !s.origins[string(origin)] {
			return s.refuse(c, http.StatusForbidden, "origin not allowed: add it to cors.allowed_origins")
		}
		if s.anyOrigin {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.SetBytesV("Access-Control-Allow-Origin", origin)
			h.Set("Vary", "Origin")
		}
		h.Set("Access-Control-Expose-Headers", "Retry-After")
	}
	switch {
	case c.IsPost():
	case c.IsOptions():
		h.Set("Allow", hdrAllow)
		if len(origin) > 0 {
			h.Set("Access-Control-Allow-Methods", hdrAllow)
			h.Set("Access-Control-Allow-Headers", hdrAllowHeaders)
			h.Set("Access-Control-Max-Age", s.corsMaxAge)
		}
		c.SetStatusCode(http.StatusNoContent)
		return http.StatusNoContent
	default:
		h.Set("Allow", hdrAllow)
		return s.refuse(c, http.StatusMethodNotAllowed, "method not allowed: send events with POST")
	}

	t, reason := s.authenticate(c)
	if t == nil {
		h.Set("WWW-Authenticate", `Bearer realm="weir"`)
		return s.refuse(c, http.StatusUnauthorized, reason)
	}
	if s.overloaded != nil && s.overloaded() {
		h.Set("Retry-After", s.retryAfter)
		return s.refuse(c, http.StatusServiceUnavailable, "overloaded: the pipeline is behind; retry later")
	}
	enc, ok := encodingOf(rh.Peek("Content-Encoding"))
	if !ok {
		return s.refuse(c, http.StatusUnsupportedMediaType, "unsupported Content-Encoding: send gzip, zstd or an uncompressed body")
	}
	if form, ok = formOf(rh.ContentType(), form); !ok {
		return s.refuse(c, http.StatusUnsupportedMediaType, "unsupported Content-Type: send application/json, application/x-ndjson or text/plain")
	}
	if int64(rh.ContentLength()) > s.maxBody {
		return s.refuse(c, http.StatusRequestEntityTooLarge, s.bodyTooLarge())
	}
	now := s.now()
	if t.limiter != nil && t.limiter.TokensAt(now) < 1 {
		h.Set("Retry-After", strconv.Itoa(ceilSeconds(time.Duration((1-t.limiter.TokensAt(now))/float64(t.limiter.Limit())*float64(time.Second)))))
		return s.refuse(c, http.StatusTooManyRequests, "rate limit exceeded for this write key's tenant: slow down, retry after Retry-After seconds")
	}

	select {
	case s.sem <- struct{}{}:
	default:
		h.Set("Retry-After", s.retryAfter)
		return s.refuse(c, http.StatusServiceUnavailable, "too many requests in flight (limits.max_in_flight): retry later")
	}
	defer func() { <-s.sem }()
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()
	st := s.states.Get().(*reqState)
	defer s.states.Put(st)

	body, code, msg := s.readBody(c, st, enc)
	if code != 0 {
		// The rest of the body, if any, is not worth reading.
		c.SetConnectionClose()
		return s.fail(c, code, msg)
	}
	d := st.dec
	if err := d.decode(body, form); err != nil {
		var be *bodyError
		if errors.As(err, &be) {
			return s.fail(c, be.status, be.msg)
		}
		return s.fail(c, http.StatusBadRequest, "invalid body")
	}
	if d.accepted == 0 {
		s.countRejected(t, d)
		return s.result(c, st, http.StatusBadRequest)
	}

	var reserved *rate.Reservation
	if t.limiter != nil {
		rv := t.limiter.ReserveN(now, d.accepted)
		if !rv.OK() {
			h.Set("Retry-After", s.retryAfter)
			return s.fail(c, http.StatusTooManyRequests, "more events than the tenant's rate_limit burst: send smaller batches")
		}
		if delay := rv.DelayFrom(now); delay > 0 {
			rv.CancelAt(now)
			h.Set("Retry-After", strconv.Itoa(ceilSeconds(delay)))
			return s.fail(c, http.StatusTooManyRequests, "rate limit exceeded for this write key's tenant: slow down, retry after Retry-After seconds")
		}
		reserved = rv
	}

	recs := s.records(st, c, t, body, now)
	// The append is bounded by append_timeout, not by the client: once
	// started it finishes even if the client goes away.
	appendStart := time.Now()
	err := s.app.Append(s.deadlines.get(appendStart), recs)
	s.m.appendSeconds.Observe(time.Since(appendStart).Seconds())
	if err != nil {
		if reserved != nil {
			reserved.CancelAt(now) // the events were not taken: give the tokens back
		}
		return s.appendFailed(c, err)
	}
	t.m.accepted.Add(float64(d.accepted))
	s.countRejected(t, d)
	return s.result(c, st, http.StatusOK)
}

func (s *Server) countRejected(t *tenant, d *decoder) {
	if len(d.events) == d.accepted {
		return
	}
	for i := range d.events {
		if p := d.events[i].prob; p != probNone {
			t.m.rejected[p].Inc()
		}
	}
}

func (s *Server) bodyTooLarge() string {
	return fmt.Sprintf("body larger than limits.max_body_bytes (%d bytes): send smaller batches", s.maxBody)
}

// appendFailed answers a request whose Append failed.
func (s *Server) appendFailed(c *fasthttp.RequestCtx, err error) int {
	code, msg := http.StatusServiceUnavailable, ""
	switch {
	case errors.Is(err, log.ErrFull):
		msg = "the event log is full: retry later"
	case errors.Is(err, log.ErrFailed), errors.Is(err, log.ErrClosed):
		msg = "the event log is unavailable: retry later"
	case errors.Is(err, context.DeadlineExceeded):
		msg = "timed out making the events durable: retry later"
	case errors.Is(err, context.Canceled):
		msg = "the request was cancelled"
	case errors.Is(err, log.ErrTooLarge):
		code, msg = http.StatusRequestEntityTooLarge, "the batch is too large for one append to the log: send smaller batches"
	default:
		code, msg = http.StatusInternalServerError, "internal error: the events were not stored; retry later"
	}
	if !errors.Is(err, context.Canceled) {
		if ok, held := s.warn.allow(time.Now()); ok {
			s.log.Warn("collector: append failed; the request is not acknowledged", "err", err, "status", code, "suppressed", held)
		}
	}
	if code == http.StatusServiceUnavailable {
		c.Response.Header.Set("Retry-After", s.retryAfter)
	}
	return s.fail(c, code, msg)
}

// authenticate finds the tenant of the request's write key. It returns nil
// and the reason when there is none.
func (s *Server) authenticate(c *fasthttp.RequestCtx) (*tenant, string) {
	key, ok := writeKey(string(c.Request.Header.Peek("Authorization")))
	if !ok && s.cfg.QueryKeyParam != "" {
		key = string(c.QueryArgs().Peek(s.cfg.QueryKeyParam))
		ok = key != ""
	}
	if !ok {
		return nil, "missing write key: send Authorization: Bearer <write key>, or Basic auth with the write key as user name and an empty password"
	}
	// A map lookup by a hash of the key: the time taken does not depend on
	// how much of a guess matches a real key.
	if t := s.tenants[sha256.Sum256([]byte(key))]; t != nil {
		return t, ""
	}
	return nil, "unknown write key"
}

// writeKey extracts the write key from an Authorization header: "Bearer
// KEY", or Basic auth with KEY as user name (the password is ignored).
func writeKey(h string) (string, bool) {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(h), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case cred == "":
		return "", false
	case strings.EqualFold(scheme, "Bearer"):
		return cred, true
	case strings.EqualFold(scheme, "Basic"):
		dec, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return "", false
		}
		user, _, _ := strings.Cut(string(dec), ":")
		return user, user != ""
	}
	return "", false
}

// encoding is a supported Content-Encoding.
type encoding uint8

const (
	encIdentity encoding = iota
	encGzip
	encZstd
)

func encodingOf(v []byte) (encoding, bool) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0 || bytes.EqualFold(v, []byte("identity")):
		return encIdentity, true
	case bytes.EqualFold(v, []byte("gzip")) || bytes.EqualFold(v, []byte("x-gzip")):
		return encGzip, true
	case bytes.EqualFold(v, []byte("zstd")):
		return encZstd, true
	}
	return 0, false
}

// formOf checks the Content-Type and refines the path's form: NDJSON
// media types frame a batch by lines.
func formOf(v []byte, form bodyForm) (bodyForm, bool) {
	mt, _, _ := bytes.Cut(v, []byte(";"))
	mt = bytes.TrimSpace(mt)
	for _, t := range [...]string{"", "application/json", "text/plain"} {
		if bytes.EqualFold(mt, []byte(t)) {
			return form, true
		}
	}
	for _, t := range [...]string{"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines"} {
		if bytes.EqualFold(mt, []byte(t)) {
			if form == formBatch {
				return formNDJSON, true
			}
			return form, true
		}
	}
	if len(mt) > 5 && bytes.EqualFold(mt[len(mt)-5:], []byte("+json")) {
		return form, true
	}
	return form, false
}

// records builds the log records of the accepted events in st.dec. They
// reference body and st's buffers.
func (s *Server) records(st *reqState, c *fasthttp.RequestCtx, t *tenant, body []byte, now time.Time) []log.Record {
	d := st.dec
	need, generated := len(receivedAtLayout)+8+64, 0
	for i := range d.events {
		switch e := &d.events[i]; {
		case e.prob != probNone:
		case e.idLen < 0:
			generated++
			need += 36
		case e.idEsc:
			need += e.idLen // unescaping never makes it longer
		}
	}
	// Every header value lives in arena, which must not move once values
	// point into it: size it first.
	if cap(st.arena) < need {
		st.arena = make([]byte, 0, need)
	}
	a := now.UTC().AppendFormat(st.arena[:0], receivedAtLayout)
	receivedAt := a[:len(a):len(a)]

	var clientIP []byte
	if s.cfg.ClientIP != ClientIPOff {
		if ip := s.clientIP(c); ip.IsValid() {
			n := len(a)
			a = ip.AppendTo(a)
			clientIP = a[n:len(a):len(a)]
		}
	}
	var ua *userAgent
	if s.ua != nil {
		if h := c.Request.Header.UserAgent(); len(h) > 0 {
			v := s.ua.parse(string(h))
			ua = &v
		}
	}
	k := s.headerCount
	if clientIP == nil && s.cfg.ClientIP != ClientIPOff {
		k--
	}
	if ua != nil {
		k += 3
	}
	if generated > 0 {
		if cap(st.rnd) < 16*generated {
			st.rnd = make([]byte, 16*generated)
		}
		st.rnd = st.rnd[:16*generated]
		_, _ = rand.Read(st.rnd) // never fails (crypto/rand)
	}
	rnd := st.rnd[:16*generated]

	if cap(st.hdrs) < k*d.accepted {
		st.hdrs = make([]log.Header, k*d.accepted)
	}
	hdrs := st.hdrs[:k*d.accepted]
	if cap(st.recs) < d.accepted {
		st.recs = make([]log.Record, 0, d.accepted)
	}
	recs := st.recs[:0]
	for i := range d.events {
		e := &d.events[i]
		if e.prob != probNone {
			continue
		}
		var id []byte
		n := len(a)
		switch {
		case e.idLen < 0:
			a = appendUUID(a, rnd[:16])
			rnd = rnd[16:]
			id = a[n:len(a):len(a)]
		case e.idEsc:
			a = appendUnescaped(a, body[e.idOff:e.idOff+e.idLen])
			id = a[n:len(a):len(a)]
		default:
			id = body[e.idOff : e.idOff+e.idLen : e.idOff+e.idLen]
		}
		h := hdrs[:k:k]
		hdrs = hdrs[k:]
		h[0] = log.Header{Key: HeaderTenant, Value: t.value}
		h[1] = log.Header{Key: HeaderReceivedAt, Value: receivedAt}
		h[2] = log.Header{Key: HeaderEventID, Value: id}
		j := 3
		if clientIP != nil {
			h[j] = log.Header{Key: HeaderClientIP, Value: clientIP}
			j++
		}
		if ua != nil {
			h[j] = log.Header{Key: HeaderUABrowser, Value: browserValues[ua.browser]}
			h[j+1] = log.Header{Key: HeaderUAOS, Value: osValues[ua.os]}
			h[j+2] = log.Header{Key: HeaderUADevice, Value: deviceValues[ua.device]}
		}
		recs = append(recs, log.Record{Timestamp: now, Key: id, Value: body[e.start:e.end:e.end], Headers: h})
	}
	st.recs = recs
	return recs
}

// clientIP returns the client address per cfg.ClientIP; the zero Addr if
// it cannot be told.
func (s *Server) clientIP(c *fasthttp.RequestCtx) netip.Addr {
	remote := func() netip.Addr {
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			return a.AddrPort().Addr().Unmap()
		}
		return netip.Addr{}
	}
	if s.cfg.ClientIP == ClientIPRemoteAddr {
		return remote()
	}
	// X-Forwarded-For: each proxy appends the address it got the request
	// from. With n trusted proxies the client is the n-th entry from the
	// right; entries further left were sent by the client and can be
	// forged.
	var entries []string
	for _, v := range c.Request.Header.PeekAll("X-Forwarded-For") {
		for e := range strings.SplitSeq(string(v), ",") {
			if e = strings.TrimSpace(e); e != "" {
				entries = append(entries, e)
			}
		}
	}
	if len(entries) == 0 {
		return remote()
	}
	e := entries[max(0, len(entries)-s.cfg.TrustedProxies)]
	if ip, err := netip.ParseAddr(e); err == nil {
		return ip.Unmap().WithZone("")
	}
	if ap, err := netip.ParseAddrPort(e); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	return remote()
}

const hexDigits = "0123456789abcdef"

// appendUUID appends a version 4 UUID made of the 16 random bytes b.
func appendUUID(dst []byte, b []byte) []byte {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	for i, c := range b[:16] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return dst
}

// result answers with the per-event outcome of st.dec.
func (s *Server) result(c *fasthttp.RequestCtx, st *reqState, code int) int {
	d := st.dec
	b := append(st.resp[:0], `{"accepted":`...)
	b = strconv.AppendInt(b, int64(d.accepted), 10)
	b = append(b, `,"rejected":`...)
	b = strconv.AppendInt(b, int64(len(d.events)-d.accepted), 10)
	b = append(b, `,"errors":[`...)
	first := true
	for i := range d.events {
		e := &d.events[i]
		if e.prob == probNone {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, e.reason)
		b = append(b, '}')
	}
	b = append(b, "]}\n"...)
	st.resp = b
	return s.answer(c, code, b)
}

// refuse answers a request whose body has not been read. Unless it has no
// body, the connection is closed after the answer: otherwise the rest of
// the body would be read and discarded first, which is the work refusing
// avoids (and would keep an overloaded server waiting for slow clients).
func (s *Server) refuse(c *fasthttp.RequestCtx, code int, msg string) int {
	if c.Request.Header.ContentLength() != 0 {
		c.SetConnectionClose()
	}
	return s.fail(c, code, msg)
}

// fail answers with {"error": msg}.
func (s *Server) fail(c *fasthttp.RequestCtx, code int, msg string) int {
	b := make([]byte, 0, len(msg)+16)
	b = append(b, `{"error":`...)
	b = appendJSONString(b, msg)
	b = append(b, "}\n"...)
	return s.answer(c, code, b)
}

// answer sets a JSON response (body is copied).
func (s *Server) answer(c *fasthttp.RequestCtx, code int, body []byte) int {
	c.Response.Header.SetContentType("application/json")
	c.SetStatusCode(code)
	c.SetBody(body)
	return code
}

// appendJSONString appends s as a JSON string. Bytes that are not UTF-8
// become U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
		case r == 0x2028 || r == 0x2029:
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return append(dst, '"')
}
