package nexmark

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the generator")

// TestJavaRandom pins jrand to values printed by java.util.Random.
func TestJavaRandom(t *testing.T) {
	r := newJrand(42)
	if got := r.nextInt32(); got != -1170105035 {
		t.Errorf("Random(42).nextInt() = %d", got)
	}
	if r := newJrand(42); r.nextInt(10) != 0 {
		t.Error("Random(42).nextInt(10) != 0")
	}
	if r := newJrand(42); r.nextInt64() != -5025562857975149833 {
		t.Error("Random(42).nextLong() differs")
	}
	if r := newJrand(42); r.nextFloat64() != 0.7275636800328681 {
		t.Error("Random(42).nextDouble() differs")
	}
	if r := newJrand(-7); r.nextInt(1000) != 662 {
		t.Error("Random(-7).nextInt(1000) != 662")
	}
	if r := newJrand(5); r.nextInt(1<<20) != 766005 {
		t.Error("Random(5).nextInt(1<<20) != 766005")
	}
	// A bound just above 2^30 rejects about half of the draws.
	r = newJrand(123)
	var got []int32
	for range 6 {
		got = append(got, r.nextInt(1<<30+1))
	}
	if want := []int32{509477450, 647624789, 543942795, 555943837, 348355565, 154440637}; !slices.Equal(got, want) {
		t.Errorf("Random(123).nextInt(2^30+1) x6 = %v, want %v", got, want)
	}
	r = newJrand(-9)
	if a, b, c, d, e := r.nextInt32(), r.nextInt64(), r.nextFloat64(), r.nextInt(26), r.nextInt(64); a != 1158177818 || b != 5299828301339691117 || c != 0.13927799611844283 || d != 8 || e != 10 {
		t.Errorf("Random(-9) sequence = %d %d %v %d %d", a, b, c, d, e)
	}
	r = newJrand(math.MaxInt64)
	if a, b := r.nextInt(13), r.nextInt(10000); a != 5 || b != 2225 {
		t.Errorf("Random(MaxInt64) = %d %d", a, b)
	}
}

// decode parses one event and checks its keys and their order.
func decode(t *testing.T, line []byte) Event {
	t.Helper()
	var keys []string
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("invalid JSON %s: %v", line, err)
	}
	for _, k := range keyOrder.FindAllSubmatch(line, -1) {
		keys = append(keys, string(k[1]))
	}
	var e Event
	var fields []string
	switch string(m["kind"]) {
	case `"person"`:
		e.Kind = KindPerson
		fields = []string{"kind", "id", "name", "email_address", "credit_card", "city", "state", "date_time", "extra"}
		err := json.Unmarshal(line, &struct {
			Kind string `json:"kind"`
			*Person
		}{Person: &e.Person})
		if err != nil {
			t.Fatal(err)
		}
	case `"auction"`:
		e.Kind = KindAuction
		fields = []string{"kind", "id", "item_name", "description", "initial_bid", "reserve", "date_time", "expires", "seller", "category", "extra"}
		err := json.Unmarshal(line, &struct {
			Kind string `json:"kind"`
			*Auction
		}{Auction: &e.Auction})
		if err != nil {
			t.Fatal(err)
		}
	case `"bid"`:
		e.Kind = KindBid
		fields = []string{"kind", "auction", "bidder", "price", "channel", "url", "date_time", "extra"}
		err := json.Unmarshal(line, &struct {
			Kind string `json:"kind"`
			*Bid
		}{Bid: &e.Bid})
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("bad kind in %s", line)
	}
	if !slices.Equal(keys, fields) || len(m) != len(fields) {
		t.Fatalf("keys %v, want %v: %s", keys, fields, line)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, line); err != nil || !bytes.Equal(buf.Bytes(), line) {
		t.Fatalf("not compact JSON: %s", line)
	}
	return e
}

// keyOrder finds the keys of a flat JSON object whose strings hold no
// quotes.
var keyOrder = regexp.MustCompile(`[{,]"([a-z_]+)":`)

func TestGolden(t *testing.T) {
	padded := DefaultConfig()
	padded.AvgPersonByteSize, padded.AvgAuctionByteSize, padded.AvgBidByteSize = 200, 500, 100
	padded.OutOfOrderGroupSize = 5
	padded.EventRate = 3
	padded.Start = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		cfg  Config
		nums []int64
	}{
		// The first 60 events of the default stream. Persons and auctions,
		// and the auction, bidder and price of bids, are those of Beam's
		// generator (checked against java.util.Random).
		{"default", DefaultConfig(), seq(0, 60)},
		{"padded", padded, append(seq(0, 14), 1_000_000, 1_000_001, 1_000_004, 1_000_049)},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := NewGenerator(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var out []byte
			for _, n := range c.nums {
				out, _ = g.AppendEvent(out, n)
				out = append(out, '\n')
			}
			path := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("the stream changed; if that is intended, run go test -update and review the diff of %s\ngot:\n%s", path, out)
			}
			for line := range bytes.Lines(want) {
				decode(t, bytes.TrimSuffix(line, []byte("\n")))
			}
		})
	}
}

func seq(from, to int64) []int64 {
	var s []int64
	for n := from; n < to; n++ {
		s = append(s, n)
	}
	return s
}

func TestProportions(t *testing.T) {
	for _, group := range []int64{1, 5, 100} {
		cfg := DefaultConfig()
		cfg.OutOfOrderGroupSize = group
		g := newGenerator(cfg)
		const k = 700 // 35,000 events: a multiple of 50 and of every group
		var counts [4]int
		for n := range int64(50 * k) {
			e := g.Event(n)
			counts[e.Kind]++
			if group == 1 {
				if want := kindOf(n); e.Kind != want {
					t.Fatalf("event %d is a %v, want a %v", n, e.Kind, want)
				}
			}
		}
		if counts[KindPerson] != k || counts[KindAuction] != 3*k || counts[KindBid] != 46*k {
			t.Errorf("group %d: %d persons, %d auctions, %d bids in %d events, want exactly 1:3:46", group, counts[KindPerson], counts[KindAuction], counts[KindBid], 50*k)
		}
	}
}

func kindOf(id int64) Kind {
	switch id % 50 {
	case 0:
		return KindPerson
	case 1, 2, 3:
		return KindAuction
	}
	return KindBid
}

// TestIDsAndReferences walks the stream in order and checks that ids count
// up from 1000 and that bids and auctions refer to people and auctions that
// exist or are at most the lead ahead, and recent enough.
func TestIDsAndReferences(t *testing.T) {
	const numEvents = 100_000
	cfg := DefaultConfig()
	g := newGenerator(cfg)
	lastPerson, lastAuction := int64(999), int64(999)
	var ahead, bids int
	for n := range int64(numEvents) {
		e := g.Event(n)
		switch e.Kind {
		case KindPerson:
			if e.Person.ID != lastPerson+1 {
				t.Fatalf("event %d: person %d after %d", n, e.Person.ID, lastPerson)
			}
			lastPerson = e.Person.ID
		case KindAuction:
			a := e.Auction
			if a.ID != lastAuction+1 {
				t.Fatalf("event %d: auction %d after %d", n, a.ID, lastAuction)
			}
			lastAuction = a.ID
			if a.Category < 10 || a.Category > 14 {
				t.Fatalf("category %d", a.Category)
			}
			checkPerson(t, n, "seller", a.Seller, lastPerson, cfg)
			if a.Reserve < a.InitialBid {
				t.Fatalf("auction %d: reserve %d below the initial bid %d", a.ID, a.Reserve, a.InitialBid)
			}
		case KindBid:
			b := e.Bid
			bids++
			if b.Auction > lastAuction+auctionIDLead || b.Auction < 1000 || b.Auction < lastAuction-int64(cfg.NumInFlightAuctions)-hotBatch {
				t.Fatalf("event %d: bid on auction %d when the last is %d", n, b.Auction, lastAuction)
			}
			if b.Auction > lastAuction {
				ahead++
			}
			checkPerson(t, n, "bidder", b.Bidder, lastPerson, cfg)
		}
	}
	if lastPerson != 1000+numEvents/50-1 || lastAuction != 1000+3*numEvents/50-1 {
		t.Errorf("last person %d, last auction %d", lastPerson, lastAuction)
	}
	// A bid names an auction of the lead with probability about
	// 1/hot_auction_ratio × 10/111 = 0.045.
	if share := float64(ahead) / float64(bids); share < 0.035 || share > 0.055 {
		t.Errorf("%.3f of bids name a future auction, want about 0.045", share)
	}
}

func checkPerson(t *testing.T, n int64, role string, id, last int64, cfg Config) {
	t.Helper()
	// A hot bidder is the second of the current batch of 100, which may
	// not exist yet at the start of the batch.
	if id < 1000 || id > last+personIDLead || id < last-int64(cfg.NumActivePeople)-hotBatch {
		t.Fatalf("event %d: %s %d when the last person is %d", n, role, id, last)
	}
}

// TestHotRatios checks the share of bids on the hot auction and by the hot
// bidder, and of auctions by the hot seller, for a few ratios.
func TestHotRatios(t *testing.T) {
	for _, ratio := range []int{1, 2, 4, 10} {
		cfg := DefaultConfig()
		cfg.HotAuctionRatio, cfg.HotBiddersRatio, cfg.HotSellersRatio = ratio, ratio, ratio
		g := newGenerator(cfg)
		var bids, hotAuction, hotBidder, auctions, hotSeller int
		for n := range int64(100_000) {
			id := g.eventID(n)
			e := g.Event(n)
			switch e.Kind {
			case KindBid:
				bids++
				if e.Bid.Auction-firstAuctionID == lastAuction(id)/hotBatch*hotBatch {
					hotAuction++
				}
				if e.Bid.Bidder-firstPersonID == lastPerson(id)/hotBatch*hotBatch+1 {
					hotBidder++
				}
			case KindAuction:
				auctions++
				if e.Auction.Seller-firstPersonID == lastPerson(id)/hotBatch*hotBatch {
					hotSeller++
				}
			}
		}
		// Hot with probability 1 - 1/ratio, plus the chance that a random
		// pick lands on the hot id anyway: at most 1/11 (the first people
		// and auctions), usually about 1/110.
		want := 1 - 1/float64(ratio)
		for _, c := range []struct {
			what     string
			got, all int
		}{{"bids on the hot auction", hotAuction, bids}, {"bids by the hot bidder", hotBidder, bids}, {"auctions by the hot seller", hotSeller, auctions}} {
			share := float64(c.got) / float64(c.all)
			if share < want-0.02 || share > want+0.04 {
				t.Errorf("ratio %d: %.3f of %s, want about %.3f", ratio, share, c.what, want)
			}
		}
	}
}

// TestPrices checks that log10(price/100) is uniform on [0, 6): each
// decade holds a sixth of the prices.
func TestPrices(t *testing.T) {
	g := newGenerator(DefaultConfig())
	var decades [6]int
	total := 0
	add := func(p int64) {
		if p < 100 || p > 100_000_000 {
			t.Fatalf("price %d out of [100, 1e8]", p)
		}
		d := min(int(math.Log10(float64(p)/100)), 5)
		decades[d]++
		total++
	}
	for n := range int64(100_000) {
		switch e := g.Event(n); e.Kind {
		case KindBid:
			add(e.Bid.Price)
		case KindAuction:
			add(e.Auction.InitialBid)
		}
	}
	for d, c := range decades {
		if share := float64(c) / float64(total); math.Abs(share-1.0/6) > 0.01 {
			t.Errorf("%.3f of prices in [10^%d, 10^%d), want 1/6", share, d+2, d+3)
		}
	}
	below := decades[0] + decades[1] + decades[2]
	if share := float64(below) / float64(total); math.Abs(share-0.5) > 0.01 {
		t.Errorf("%.3f of prices below 100,000, want half", share)
	}
}

func TestEventTime(t *testing.T) {
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	t.Run("in order", func(t *testing.T) {
		for _, rate := range []int64{1, 3, 10_000, 1_000_000} {
			cfg := DefaultConfig()
			cfg.EventRate, cfg.Start = rate, start
			g := newGenerator(cfg)
			prev := int64(math.MinInt64)
			for n := range int64(20_000) {
				buf, ns := g.AppendEvent(nil, n)
				e := g.Event(n)
				if ms := start.UnixMilli() + n*1000/rate; e.DateTime() != ms || ns != ms*1e6 {
					t.Fatalf("rate %d, event %d: date_time %d, time %d ns, want %d ms", rate, n, e.DateTime(), ns, ms)
				}
				if ns < prev {
					t.Fatalf("rate %d: event %d at %d, before the previous at %d", rate, n, ns, prev)
				}
				prev = ns
				if n < 100 && !bytes.Contains(buf, []byte(`"date_time":`+strconv.FormatInt(e.DateTime(), 10)+`,`)) {
					t.Fatalf("JSON lacks date_time %d: %s", e.DateTime(), buf)
				}
			}
		}
	})
	t.Run("out of order", func(t *testing.T) {
		base := DefaultConfig()
		base.EventRate = 1000
		inOrder := newGenerator(base)
		for _, size := range []int64{3, 5, 50, 954} {
			cfg := inOrder.Config()
			cfg.OutOfOrderGroupSize = size
			g := newGenerator(cfg)
			const groups = 5
			moved := 0
			for base := int64(0); base < groups*size; base += size {
				var got, want []string
				for n := base; n < base+size; n++ {
					a, _ := g.AppendEvent(nil, n)
					b, _ := inOrder.AppendEvent(nil, n)
					got, want = append(got, string(a)), append(want, string(b))
					// Event number n carries the in-order event eventID(n).
					if c, _ := inOrder.AppendEvent(nil, g.eventID(n)); !bytes.Equal(a, c) {
						t.Fatalf("size %d: event %d is not in-order event %d", size, n, g.eventID(n))
					}
					if g.eventID(n) != n {
						moved++
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("size %d: group at %d is not a permutation of the in-order events", size, base)
				}
			}
			if moved < groups*int(size)/2 {
				t.Errorf("size %d: only %d of %d events moved", size, moved, groups*size)
			}
		}
	})
	t.Run("pure", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.OutOfOrderGroupSize = 13
		const n = 5000
		want := make([][]byte, n)
		g := newGenerator(cfg)
		for i := range int64(n) {
			want[i], _ = g.AppendEvent(nil, i)
		}
		// Backwards, from fresh Generators, from several goroutines.
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := int64(n - 1 - w); i >= 0; i -= 4 {
					g := newGenerator(cfg)
					if got, _ := g.AppendEvent(nil, i); !bytes.Equal(got, want[i]) {
						t.Errorf("event %d differs when made again", i)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

func TestAuctionExpiry(t *testing.T) {
	cfg := DefaultConfig() // 100 in flight: 1666 events, 166 ms at 10,000/s
	g := newGenerator(cfg)
	horizon := float64(g.auctionEvents) * 1000 / float64(cfg.EventRate)
	var sum float64
	var count int
	for n := range int64(100_000) {
		e := g.Event(n)
		if e.Kind != KindAuction {
			continue
		}
		length := e.Auction.Expires - e.Auction.DateTime
		if length < 1 || float64(length) > 2*horizon+1 {
			t.Fatalf("auction %d lasts %d ms, want 1 to 2×%.0f", e.Auction.ID, length, horizon)
		}
		sum += float64(length)
		count++
	}
	if mean := sum / float64(count); math.Abs(mean-horizon) > horizon*0.05 {
		t.Errorf("auctions last %.1f ms on average, want about %.1f", mean, horizon)
	}
}

func TestStringsAndChannels(t *testing.T) {
	g := newGenerator(DefaultConfig())
	word := regexp.MustCompile(`^[a-z]+( +[a-z]+)*$|^$`)
	email := regexp.MustCompile(`^[a-z ]*@[a-z ]*\.com$`)
	card := regexp.MustCompile(`^[0-9]{4} [0-9]{4} [0-9]{4} [0-9]{4}$`)
	url := regexp.MustCompile(`^https://www\.nexmark\.com/[a-z_]{3,4}/[a-z_]{3,4}/[a-z_]{3,4}/item\.htm\?query=1(&channel_id=[0-9]+)?$`)
	hot, bids := 0, 0
	urls := map[string]string{}
	for n := range int64(100_000) {
		e := g.Event(n)
		switch e.Kind {
		case KindPerson:
			p := e.Person
			if !slices.Contains(firstNames[:], strings.Fields(p.Name)[0]) || !email.MatchString(p.EmailAddress) || !card.MatchString(p.CreditCard) ||
				!slices.Contains(usCities[:], p.City) || !slices.Contains(usStates[:], p.State) {
				t.Fatalf("odd person %+v", p)
			}
		case KindAuction:
			a := e.Auction
			if len(a.ItemName) > 19 || len(a.Description) > 99 || !word.MatchString(a.ItemName) || !word.MatchString(a.Description) {
				t.Fatalf("odd auction strings %q %q", a.ItemName, a.Description)
			}
		case KindBid:
			b := e.Bid
			bids++
			if slices.Contains(hotChannels[:], b.Channel) {
				hot++
			} else if !strings.HasPrefix(b.Channel, "channel-") {
				t.Fatalf("channel %q", b.Channel)
			}
			if !url.MatchString(b.URL) {
				t.Fatalf("url %q", b.URL)
			}
			if u, ok := urls[b.Channel]; ok && u != b.URL {
				t.Fatalf("channel %s has URLs %q and %q", b.Channel, u, b.URL)
			}
			urls[b.Channel] = b.URL
		}
	}
	if share := float64(hot) / float64(bids); math.Abs(share-0.5) > 0.01 {
		t.Errorf("%.3f of bids through hot channels, want 1/2", share)
	}
	// 23,000 bids through numbered channels reach about 9,000 of them.
	if len(urls) < 8500 {
		t.Errorf("only %d distinct channels", len(urls))
	}
}

// TestAppendJSON checks that the fused AppendEvent writes what AppendJSON
// writes for Generate, within MaxEventLen, with and without padding.
func TestAppendJSON(t *testing.T) {
	padded := DefaultConfig()
	padded.AvgPersonByteSize, padded.AvgAuctionByteSize, padded.AvgBidByteSize = 200, 500, 100
	for _, cfg := range []Config{DefaultConfig(), padded} {
		g, err := NewGenerator(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var sizes [4]struct{ sum, n int }
		for n := range int64(20_000) {
			got, _ := g.AppendEvent([]byte("x"), n)
			got = got[1:]
			e := Generate(cfg, n)
			if want := AppendJSON(nil, &e); !bytes.Equal(got, want) {
				t.Fatalf("event %d:\nAppendEvent %s\nAppendJSON  %s", n, got, want)
			}
			if len(got) > g.MaxEventLen() {
				t.Fatalf("event %d is %d bytes, above MaxEventLen %d", n, len(got), g.MaxEventLen())
			}
			if n < 2000 {
				if d := decode(t, got); d != e {
					t.Fatalf("event %d decodes to %+v, want %+v", n, d, e)
				}
			}
			s := &sizes[e.Kind]
			s.n++
			switch e.Kind {
			case KindPerson:
				p := e.Person
				s.sum += 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State) + len(p.Extra)
			case KindAuction:
				a := e.Auction
				s.sum += 8 + len(a.ItemName) + len(a.Description) + 40 + len(a.Extra)
			case KindBid:
				s.sum += 32 + len(e.Bid.Extra)
			}
		}
		if cfg.AvgBidByteSize == 0 {
			continue
		}
		for k, want := range map[Kind]config.ByteSize{KindPerson: cfg.AvgPersonByteSize, KindAuction: cfg.AvgAuctionByteSize, KindBid: cfg.AvgBidByteSize} {
			mean := float64(sizes[k].sum) / float64(sizes[k].n)
			if math.Abs(mean-float64(want)) > float64(want)*0.03 {
				t.Errorf("%v: padded to %.1f bytes on average, want about %d", k, mean, want)
			}
		}
	}
}

func TestAppendJSONEscapes(t *testing.T) {
	e := Event{Kind: KindPerson, Person: Person{ID: 1, Name: "a\"b\\c", EmailAddress: "tab\there\nnl\x01", CreditCard: "é€😀", City: "bad\xffutf8", State: "", DateTime: -5, Extra: "</script>"}}
	got := AppendJSON(nil, &e)
	var back Person
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	want := e.Person
	want.City = "bad\uFFFDutf8"
	if back != want {
		t.Fatalf("round trip: got %+v, want %+v", back, want)
	}
	for _, k := range []Kind{KindAuction, KindBid} {
		e := Event{Kind: k}
		if d := decode(t, AppendJSON(nil, &e)); d != e {
			t.Fatalf("zero %v: %+v", k, d)
		}
	}
	if Kind(0).String() != "invalid" || KindBid.String() != "bid" {
		t.Error("Kind.String")
	}
}

func TestNoAllocations(t *testing.T) {
	g := newGenerator(DefaultConfig())
	buf := make([]byte, 0, g.MaxEventLen())
	g.AppendEvent(buf, 0) // build the URL table
	n := int64(0)
	if a := testing.AllocsPerRun(10_000, func() {
		buf, _ = g.AppendEvent(buf[:0], n)
		n++
	}); a != 0 {
		t.Fatalf("%v allocations per event", a)
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := Config{EventRate: 0, OutOfOrderGroupSize: 0, HotAuctionRatio: 0, HotSellersRatio: -1, HotBiddersRatio: 1 << 31,
		NumActivePeople: 0, NumInFlightAuctions: -3, AvgPersonByteSize: -1, AvgAuctionByteSize: 2 * config.MiB}
	want := []string{"event_rate", "out_of_order_group_size", "hot_auction_ratio", "hot_sellers_ratio", "hot_bidders_ratio",
		"num_active_people", "num_in_flight_auctions", "avg_person_byte_size", "avg_auction_byte_size"}
	if got := fieldsOf(t, bad.Validate()); !slices.Equal(got, want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
	for _, size := range []int64{2, 4, 7, 8, 17, 952, 953, 2 * 953} {
		c := DefaultConfig()
		c.OutOfOrderGroupSize = size
		if got := fieldsOf(t, c.Validate()); !slices.Equal(got, []string{"out_of_order_group_size"}) {
			t.Errorf("group size %d accepted: %v", size, got)
		}
	}
	for _, size := range []int64{1, 3, 5, 6, 100, 951, 954} {
		c := DefaultConfig()
		c.OutOfOrderGroupSize = size
		if err := c.Validate(); err != nil {
			t.Errorf("group size %d rejected: %v", size, err)
		}
	}
	if _, err := NewGenerator(bad); err == nil {
		t.Fatal("NewGenerator accepted an invalid config")
	}
}

func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var fields []string
	if err == nil {
		return nil
	}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		fields = append(fields, fe.Field)
	}
	return fields
}

// BenchmarkAppendEvent generates consecutive events of the default stream
// into a reused buffer.
func BenchmarkAppendEvent(b *testing.B) {
	for _, c := range []struct {
		name string
		pad  bool
	}{{"default", false}, {"padded", true}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := DefaultConfig()
			if c.pad {
				cfg.AvgPersonByteSize, cfg.AvgAuctionByteSize, cfg.AvgBidByteSize = 200, 500, 100
			}
			g := newGenerator(cfg)
			buf := make([]byte, 0, g.MaxEventLen())
			var total int64
			b.ReportAllocs()
			n := int64(0)
			for b.Loop() {
				buf, _ = g.AppendEvent(buf[:0], n)
				total += int64(len(buf))
				n++
			}
			b.SetBytes(total / n)
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkGenerate makes events as Go values, as the reference
// implementations of queries do.
func BenchmarkGenerate(b *testing.B) {
	g := newGenerator(DefaultConfig())
	n := int64(0)
	for b.Loop() {
		_ = g.Event(n)
		n++
	}
}

// TestPriceMatchesPow checks the fast price against the definition.
func TestPriceMatchesPow(t *testing.T) {
	for seed := range int64(500_000) {
		r := newJrand(seed)
		r2 := r
		want := int64(math.Round(math.Pow(10, r2.nextFloat64()*6) * 100))
		if got := nextPrice(&r); got != want {
			t.Fatalf("seed %d: price %d, want %d", seed, got, want)
		}
	}
}

func TestAppendInt(t *testing.T) {
	vals := []int64{0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 12345, 1714564800000, math.MaxInt64, -1, -10, math.MinInt64}
	for p := int64(1); p > 0 && p < math.MaxInt64/10; p *= 10 {
		vals = append(vals, p-1, p, p+1)
	}
	for _, v := range vals {
		if got := string(appendInt([]byte("x"), v)); got != "x"+strconv.FormatInt(v, 10) {
			t.Errorf("appendInt(%d) = %q", v, got)
		}
	}
}
