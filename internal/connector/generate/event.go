package generate

import (
	"math/bits"
	"strconv"
	"time"

	"github.com/weir-dev/weir/internal/nexmark"
)

// The vocabulary of generated events. Changing any of it changes every
// generated stream: tests and benchmarks pin the output of given seeds.
var (
	types = [3]string{"view", "click", "purchase"}

	userAgents = [...]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"curl/8.7.1",
	}

	// Fixed pages; "/products/<n>" and "/search?q=<word>" are added by page.
	fixedPages  = [...]string{"/", "/cart", "/checkout", "/account", "/category/shoes", "/category/books"}
	searchWords = [...]string{"shoes", "red+dress", "laptop", "coffee", "headphones", "gift+ideas", "tent", "usb-c+cable"}
)

const (
	maxProduct = 10000 // products are numbered [1, maxProduct)
	minCents   = 100   // prices of clicks and purchases: [1.00, 500.00)
	maxCents   = 50000
)

// Event appends to dst the event with sequence number seq of the stream
// defined by seed and cfg, and returns the extended slice. It is what every
// generate input emits, so tests and benchmarks can reproduce a stream. An
// empty cfg.StartTime means the Unix epoch here (a running input uses the
// wall clock at its start instead). The nexmark schema ignores seed. cfg
// must be valid.
func Event(seed int64, seq int64, cfg Config, dst []byte) []byte {
	var start time.Time
	if cfg.StartTime != "" {
		start, _ = time.Parse(time.RFC3339, cfg.StartTime)
	} else {
		start = time.Unix(0, 0)
	}
	cfg.Seed = seed
	dst, _ = newStream(cfg, start).appendEvent(dst, seq)
	return dst
}

// stream makes the events of one schema.
type stream interface {
	// appendEvent appends event seq and returns it with its time in Unix
	// nanoseconds.
	appendEvent(dst []byte, seq int64) ([]byte, int64)
	// maxEventLen bounds the length of any event, so that an arena with
	// this much room never has to grow for one more event.
	maxEventLen() int
}

// newStream compiles cfg, which must be valid, with event 0 at start.
func newStream(cfg Config, start time.Time) stream {
	if cfg.Schema == SchemaNexmark {
		nc := cfg.Nexmark
		nc.Start = start
		g, err := nexmark.NewGenerator(nc)
		if err != nil {
			panic("generate: invalid nexmark config: " + err.Error())
		}
		return nexmarkStream{g}
	}
	sp := newSpec(cfg, start)
	return &sp
}

// nexmarkStream is the nexmark schema.
type nexmarkStream struct{ g *nexmark.Generator }

func (s nexmarkStream) appendEvent(dst []byte, seq int64) ([]byte, int64) {
	return s.g.AppendEvent(dst, seq)
}

func (s nexmarkStream) maxEventLen() int { return s.g.MaxEventLen() }

// spec is a Config compiled for generating events.
type spec struct {
	seed    int64
	users   uint64
	cum     [3]uint64 // cumulative type weights
	total   uint64
	startMs int64
	// msPerEvent is the event-time spacing: 1000/rate, or 1 ms when rate
	// is 0.
	msPerEvent float64
}

func newSpec(cfg Config, start time.Time) spec {
	sp := spec{
		seed:       cfg.Seed,
		users:      uint64(cfg.Users),
		startMs:    start.UnixMilli(),
		msPerEvent: 1,
	}
	if cfg.Rate > 0 {
		sp.msPerEvent = 1000 / cfg.Rate
	}
	var c uint64
	for i, w := range cfg.Weights {
		c += uint64(w)
		sp.cum[i] = c
	}
	sp.total = c
	return sp
}

// tsMillis is the event time of seq in Unix milliseconds.
func (sp *spec) tsMillis(seq int64) int64 {
	return sp.startMs + int64(float64(seq)*sp.msPerEvent)
}

// maxEventLen bounds the length of any event of sp, so that an arena with
// this much room never has to grow for one more event.
func (sp *spec) maxEventLen() int {
	n := len(`{"event_id":"","user_id":"u_","type":"","ts":,"price":,"page":"","user_agent":""}`)
	n += 36                // UUID
	n += 20                // user number
	n += len("purchase")   // longest type
	n += 20                // ts, with a sign
	n += len("500.00")     // price
	n += len("/search?q=") // longest page
	n += maxLen(searchWords[:]) + len("/products/") + 5
	n += maxLen(fixedPages[:])
	n += maxLen(userAgents[:])
	return n
}

func maxLen(ss []string) int {
	m := 0
	for _, s := range ss {
		m = max(m, len(s))
	}
	return m
}

// rng is splitmix64: tiny, fast, and good enough for synthetic data.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	return mix64(uint64(*r))
}

// below returns a number in [0, n) (Lemire's multiply-shift, bias
// negligible for the small n used here).
func (r *rng) below(n uint64) uint64 {
	hi, _ := bits.Mul64(r.next(), n)
	return hi
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

const hexDigits = "0123456789abcdef"

// appendEvent appends event seq and returns it with its time in Unix ns.
// Fields and their order are part of the stream's definition.
func (sp *spec) appendEvent(dst []byte, seq int64) ([]byte, int64) {
	// Mix seed and seq separately so that distinct (seed, seq) pairs give
	// unrelated streams (a plain seed^seq would make seeds 0 and 1 swap
	// events pairwise).
	r := rng(mix64(mix64(uint64(sp.seed)^0x5851f42d4c957f2d) + uint64(seq)))

	dst = append(dst, `{"event_id":"`...)
	dst = appendUUID(dst, r.next(), r.next())

	dst = append(dst, `","user_id":"u_`...)
	dst = strconv.AppendUint(dst, r.below(sp.users), 10)

	t := 0
	for w := r.below(sp.total); w >= sp.cum[t]; {
		t++
	}
	dst = append(dst, `","type":"`...)
	dst = append(dst, types[t]...)

	ts := sp.tsMillis(seq)
	dst = append(dst, `","ts":`...)
	dst = strconv.AppendInt(dst, ts, 10)

	dst = append(dst, `,"price":`...)
	cents := uint64(0)
	if t != 0 {
		cents = minCents + r.below(maxCents-minCents)
	}
	dst = strconv.AppendUint(dst, cents/100, 10)
	dst = append(dst, '.', byte('0'+cents/10%10), byte('0'+cents%10))

	dst = append(dst, `,"page":"`...)
	dst = sp.appendPage(dst, &r, t)

	dst = append(dst, `","user_agent":"`...)
	dst = append(dst, userAgents[r.below(uint64(len(userAgents)))]...)
	dst = append(dst, `"}`...)
	return dst, ts * int64(time.Millisecond)
}

// appendPage picks a page: purchases happen on /checkout; other events land
// on a product page half of the time, else on a search or a fixed page.
func (sp *spec) appendPage(dst []byte, r *rng, typ int) []byte {
	if typ == 2 {
		return append(dst, "/checkout"...)
	}
	switch k := r.below(8); {
	case k < 4:
		dst = append(dst, "/products/"...)
		return strconv.AppendUint(dst, 1+r.below(maxProduct-1), 10)
	case k < 6:
		dst = append(dst, "/search?q="...)
		return append(dst, searchWords[r.below(uint64(len(searchWords)))]...)
	default:
		return append(dst, fixedPages[r.below(uint64(len(fixedPages)))]...)
	}
}

// appendUUID appends a version 4 UUID made of hi and lo.
func appendUUID(dst []byte, hi, lo uint64) []byte {
	hi = hi&^(0xf<<12) | 0x4<<12       // version 4
	lo = lo&^(0x3<<62) | uint64(2)<<62 // variant 10
	var b [36]byte
	putHex(b[0:8], hi>>32)
	b[8] = '-'
	putHex(b[9:13], hi>>16)
	b[13] = '-'
	putHex(b[14:18], hi)
	b[18] = '-'
	putHex(b[19:23], lo>>48)
	b[23] = '-'
	putHex(b[24:36], lo)
	return append(dst, b[:]...)
}

// putHex fills dst with the len(dst) lowest nibbles of v in hex.
func putHex(dst []byte, v uint64) {
	for k := len(dst) - 1; k >= 0; k-- {
		dst[k] = hexDigits[v&0xf]
		v >>= 4
	}
}
