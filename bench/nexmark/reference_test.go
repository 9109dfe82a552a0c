package nexmark_test

// The reference implementations: what each query should output, computed
// from the generator's events with plain maps and sorts, written from the
// queries' definitions and not from the pipelines.

import (
	"cmp"
	"hash/maphash"
	"slices"
	"strconv"

	"github.com/weir-dev/weir/internal/nexmark"
)

// Times in the rows are Unix milliseconds, as in the events.
const (
	second = int64(1000)
	q5Size = 10 * second
	q5Hop  = 2 * second
	q7Size = 10 * second
	q8Size = 10 * second
	q11Gap = 10 * second
)

// lineSeed hashes output lines and reference lines alike.
var lineSeed = maphash.MakeSeed()

// q0Reference returns the hash of the JSON of every bid, sorted.
func q0Reference(cfg nexmark.Config, n int64) []uint64 {
	var hashes []uint64
	var buf []byte
	eachEvent(cfg, n, func(e *nexmark.Event) {
		if e.Kind == nexmark.KindBid {
			buf = nexmark.AppendJSON(buf[:0], e)
			hashes = append(hashes, maphash.Bytes(lineSeed, buf))
		}
	})
	slices.Sort(hashes)
	return hashes
}

type q1Row struct {
	Auction  int64   `json:"auction"`
	Bidder   int64   `json:"bidder"`
	Price    float64 `json:"price"`
	DateTime int64   `json:"date_time"`
	Extra    string  `json:"extra"`
}

func q1Order(a, b q1Row) int {
	return cmp.Or(cmp.Compare(a.DateTime, b.DateTime), cmp.Compare(a.Auction, b.Auction), cmp.Compare(a.Bidder, b.Bidder),
		cmp.Compare(a.Price, b.Price), cmp.Compare(a.Extra, b.Extra))
}

// q1Reference converts every bid's price to euros.
func q1Reference(cfg nexmark.Config, n int64) []q1Row {
	var rows []q1Row
	eachEvent(cfg, n, func(e *nexmark.Event) {
		if b := &e.Bid; e.Kind == nexmark.KindBid {
			rows = append(rows, q1Row{Auction: b.Auction, Bidder: b.Bidder, Price: float64(b.Price) * 0.908, DateTime: b.DateTime, Extra: b.Extra})
		}
	})
	return rows
}

type q2Row struct {
	Auction int64 `json:"auction"`
	Price   int64 `json:"price"`
}

func q2Order(a, b q2Row) int {
	return cmp.Or(cmp.Compare(a.Auction, b.Auction), cmp.Compare(a.Price, b.Price))
}

// q2Reference keeps the bids on auctions whose id is a multiple of 123.
func q2Reference(cfg nexmark.Config, n int64) []q2Row {
	var rows []q2Row
	eachEvent(cfg, n, func(e *nexmark.Event) {
		if e.Kind == nexmark.KindBid && e.Bid.Auction%123 == 0 {
			rows = append(rows, q2Row{Auction: e.Bid.Auction, Price: e.Bid.Price})
		}
	})
	return rows
}

type q3Row struct {
	Name  string `json:"name"`
	City  string `json:"city"`
	State string `json:"state"`
	ID    int64  `json:"id"`
}

func q3Order(a, b q3Row) int {
	return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Name, b.Name), cmp.Compare(a.City, b.City), cmp.Compare(a.State, b.State))
}

// q3Reference pairs every auction of category 10 with its seller when the
// seller lives in OR, ID or CA, wherever either appears in the stream.
func q3Reference(cfg nexmark.Config, n int64) []q3Row {
	people := map[int64]nexmark.Person{}
	var auctions []nexmark.Auction
	eachEvent(cfg, n, func(e *nexmark.Event) {
		switch e.Kind {
		case nexmark.KindPerson:
			if s := e.Person.State; s == "OR" || s == "ID" || s == "CA" {
				people[e.Person.ID] = e.Person
			}
		case nexmark.KindAuction:
			if e.Auction.Category == 10 {
				auctions = append(auctions, e.Auction)
			}
		}
	})
	var rows []q3Row
	for _, a := range auctions {
		if p, ok := people[a.Seller]; ok {
			rows = append(rows, q3Row{Name: p.Name, City: p.City, State: p.State, ID: a.ID})
		}
	}
	return rows
}

type q4Row struct {
	Category int64   `json:"category"`
	AvgPrice float64 `json:"avg_price"`
	Auctions int64   `json:"auctions"`
}

func q4Order(a, b q4Row) int {
	return cmp.Or(cmp.Compare(a.Category, b.Category), cmp.Compare(a.AvgPrice, b.AvgPrice), cmp.Compare(a.Auctions, b.Auctions))
}

// q4Reference finds every auction's closing price, the highest bid made
// between its date_time and its expires (both included), and averages them
// per category over the auctions that have one.
func q4Reference(cfg nexmark.Config, n int64) []q4Row {
	auctions := map[int64]nexmark.Auction{}
	var bids []nexmark.Bid
	eachEvent(cfg, n, func(e *nexmark.Event) {
		switch e.Kind {
		case nexmark.KindAuction:
			auctions[e.Auction.ID] = e.Auction
		case nexmark.KindBid:
			bids = append(bids, e.Bid)
		}
	})
	closing := map[int64]int64{}
	for _, b := range bids {
		a, ok := auctions[b.Auction]
		if !ok || b.DateTime < a.DateTime || b.DateTime > a.Expires {
			continue
		}
		if p, seen := closing[a.ID]; !seen || b.Price > p {
			closing[a.ID] = b.Price
		}
	}
	type agg struct{ sum, n int64 }
	perCategory := map[int64]*agg{}
	for id, price := range closing {
		c := auctions[id].Category
		if perCategory[c] == nil {
			perCategory[c] = &agg{}
		}
		perCategory[c].sum += price
		perCategory[c].n++
	}
	var rows []q4Row
	for c, a := range perCategory {
		rows = append(rows, q4Row{Category: c, AvgPrice: float64(a.sum) / float64(a.n), Auctions: a.n})
	}
	return rows
}

type q5Row struct {
	WindowStart int64 `json:"window_start"`
	WindowEnd   int64 `json:"window_end"`
	Auction     int64 `json:"auction"`
	Num         int64 `json:"num"`
}

func q5Order(a, b q5Row) int {
	return cmp.Or(cmp.Compare(a.WindowStart, b.WindowStart), cmp.Compare(a.WindowEnd, b.WindowEnd),
		cmp.Compare(a.Auction, b.Auction), cmp.Compare(a.Num, b.Num))
}

// q5Reference counts the bids per auction in every window [s, s+10 s) with
// s a multiple of 2 s, and returns per window the auction with the most,
// the smallest id among ties.
func q5Reference(cfg nexmark.Config, n int64) []q5Row {
	type winAuction struct{ start, auction int64 }
	counts := map[winAuction]int64{}
	eachEvent(cfg, n, func(e *nexmark.Event) {
		if e.Kind != nexmark.KindBid {
			return
		}
		t := e.Bid.DateTime
		for s := t - t%q5Hop; s > t-q5Size; s -= q5Hop {
			counts[winAuction{s, e.Bid.Auction}]++
		}
	})
	best := map[int64]q5Row{}
	for k, c := range counts {
		r, ok := best[k.start]
		if !ok || c > r.Num || c == r.Num && k.auction < r.Auction {
			best[k.start] = q5Row{WindowStart: k.start, WindowEnd: k.start + q5Size, Auction: k.auction, Num: c}
		}
	}
	rows := make([]q5Row, 0, len(best))
	for _, r := range best {
		rows = append(rows, r)
	}
	return rows
}

type q7Row struct {
	Key         string `json:"key"`
	WindowStart int64  `json:"window_start"`
	WindowEnd   int64  `json:"window_end"`
	Auction     int64  `json:"auction"`
	Price       int64  `json:"price"`
	Bidder      int64  `json:"bidder"`
	DateTime    int64  `json:"date_time"`
	Extra       string `json:"extra"`
}

func q7Order(a, b q7Row) int {
	return cmp.Or(cmp.Compare(a.WindowStart, b.WindowStart), cmp.Compare(a.WindowEnd, b.WindowEnd), cmp.Compare(a.Price, b.Price),
		cmp.Compare(a.DateTime, b.DateTime), cmp.Compare(a.Auction, b.Auction), cmp.Compare(a.Bidder, b.Bidder),
		cmp.Compare(a.Key, b.Key), cmp.Compare(a.Extra, b.Extra))
}

// q7Reference returns the highest bid of every 10 s window, the first in
// the stream among bids at the same price, and how many windows had such
// a tie.
func q7Reference(cfg nexmark.Config, n int64) (rows []q7Row, ties int) {
	best := map[int64]*q7Row{}
	tied := map[int64]bool{}
	eachEvent(cfg, n, func(e *nexmark.Event) {
		if e.Kind != nexmark.KindBid {
			return
		}
		b := &e.Bid
		start := b.DateTime - b.DateTime%q7Size
		r := best[start]
		switch {
		case r == nil || b.Price > r.Price:
			best[start] = &q7Row{WindowStart: start, WindowEnd: start + q7Size, Auction: b.Auction, Price: b.Price,
				Bidder: b.Bidder, DateTime: b.DateTime, Extra: b.Extra}
			tied[start] = false
		case b.Price == r.Price:
			tied[start] = true
		}
	})
	for start, r := range best {
		rows = append(rows, *r)
		if tied[start] {
			ties++
		}
	}
	return rows, ties
}

type q8Row struct {
	WindowStart int64  `json:"window_start"`
	WindowEnd   int64  `json:"window_end"`
	ID          int64  `json:"id"`
	Name        string `json:"name"`
}

func q8Order(a, b q8Row) int {
	return cmp.Or(cmp.Compare(a.WindowStart, b.WindowStart), cmp.Compare(a.ID, b.ID), cmp.Compare(a.WindowEnd, b.WindowEnd), cmp.Compare(a.Name, b.Name))
}

// q8Reference returns the people who opened an auction in the 10 s window
// in which they joined, once per person and window.
func q8Reference(cfg nexmark.Config, n int64) []q8Row {
	type personWindow struct{ id, start int64 }
	joined := map[personWindow]string{}
	sold := map[personWindow]bool{}
	eachEvent(cfg, n, func(e *nexmark.Event) {
		switch e.Kind {
		case nexmark.KindPerson:
			p := &e.Person
			joined[personWindow{p.ID, p.DateTime - p.DateTime%q8Size}] = p.Name
		case nexmark.KindAuction:
			a := &e.Auction
			sold[personWindow{a.Seller, a.DateTime - a.DateTime%q8Size}] = true
		}
	})
	var rows []q8Row
	for pw, name := range joined {
		if sold[pw] {
			rows = append(rows, q8Row{WindowStart: pw.start, WindowEnd: pw.start + q8Size, ID: pw.id, Name: name})
		}
	}
	return rows
}

// bidderRow is a result of q11 and q12: a count of bids per bidder and
// window, the bidder as a string (the window's key).
type bidderRow struct {
	Key         string `json:"key"`
	WindowStart int64  `json:"window_start"`
	WindowEnd   int64  `json:"window_end"`
	Bids        int64  `json:"bids"`
}

func bidderOrder(a, b bidderRow) int {
	return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.WindowStart, b.WindowStart), cmp.Compare(a.WindowEnd, b.WindowEnd),
		cmp.Compare(a.Bids, b.Bids))
}

// q11Reference cuts each bidder's bids into sessions: a bid 10 s or more
// after the bidder's previous one starts a new session, which ends 10 s
// after its last bid.
func q11Reference(cfg nexmark.Config, n int64) []bidderRow {
	times := map[int64][]int64{}
	eachEvent(cfg, n, func(e *nexmark.Event) {
		if e.Kind == nexmark.KindBid {
			times[e.Bid.Bidder] = append(times[e.Bid.Bidder], e.Bid.DateTime)
		}
	})
	var rows []bidderRow
	for bidder, ts := range times {
		slices.Sort(ts)
		key := strconv.FormatInt(bidder, 10)
		cur := bidderRow{Key: key, WindowStart: ts[0], WindowEnd: ts[0] + q11Gap}
		for _, t := range ts {
			if t >= cur.WindowEnd {
				rows = append(rows, cur)
				cur = bidderRow{Key: key, WindowStart: t}
			}
			cur.WindowEnd = t + q11Gap
			cur.Bids++
		}
		rows = append(rows, cur)
	}
	return rows
}

// bidsPerBidder counts the bids of every bidder, by the bidder as a
// string.
func bidsPerBidder(cfg nexmark.Config, n int64) map[string]int64 {
	counts := map[string]int64{}
	eachEvent(cfg, n, func(e *nexmark.Event) {
		if e.Kind == nexmark.KindBid {
			counts[strconv.FormatInt(e.Bid.Bidder, 10)]++
		}
	})
	return counts
}
