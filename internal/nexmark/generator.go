package nexmark

import (
	"math"
	"slices"
	"time"

	"github.com/weir-dev/weir/internal/config"
)

// The shape of the stream, as in the reference generators.
const (
	personProportion      = 1
	auctionProportion     = 3
	bidProportion         = 46
	proportionDenominator = personProportion + auctionProportion + bidProportion

	firstPersonID   = 1000
	firstAuctionID  = 1000
	firstCategoryID = 10
	numCategories   = 5

	// personIDLead and auctionIDLead are how many ids past the newest a
	// random pick may land on: such a bid or auction names a person or an
	// auction that appears a little later in the stream.
	personIDLead  = 10
	auctionIDLead = 10

	// hotBatch: the hot auction and the hot seller are the first id of the
	// current batch of this many ids, the hot bidder the second.
	hotBatch = 100

	minStringLen = 3
)

// Generator makes the events of one Config. It is immutable and safe for
// concurrent use.
type Generator struct {
	cfg     Config
	startMs int64
	// auctionEvents is how many events it takes to create
	// num_in_flight_auctions auctions: an auction lasts a uniform time up
	// to twice as long as those events take.
	auctionEvents int64
	maxLen        int
}

// NewGenerator returns a Generator for cfg, or cfg's problems (see
// Config.Validate).
func NewGenerator(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := newGenerator(cfg)
	return &g, nil
}

// newGenerator compiles cfg, which must be valid.
func newGenerator(cfg Config) Generator {
	g := Generator{
		cfg:           cfg,
		auctionEvents: int64(cfg.NumInFlightAuctions) * proportionDenominator / auctionProportion,
	}
	if !cfg.Start.IsZero() {
		g.startMs = cfg.Start.UnixMilli()
	}
	// The longest auction without padding is under 450 bytes.
	longest := max(cfg.AvgPersonByteSize, cfg.AvgAuctionByteSize, cfg.AvgBidByteSize)
	g.maxLen = 512 + int(longest+longest/5) + 2
	return g
}

// Generate returns the event with number n (n >= 0) of the stream of cfg,
// which must be valid. For many events, make a Generator once.
func Generate(cfg Config, n int64) Event {
	g := newGenerator(cfg)
	return g.Event(n)
}

// Config returns the configuration of g.
func (g *Generator) Config() Config { return g.cfg }

// MaxEventLen bounds the length of the JSON of any event of g: AppendEvent
// does not allocate when dst has that much room.
func (g *Generator) MaxEventLen() int { return g.maxLen }

// Event returns the event with number n (n >= 0).
func (g *Generator) Event(n int64) Event {
	var e Event
	var scratch [512]byte
	g.appendEvent(scratch[:0], n, &e)
	return e
}

// AppendEvent appends the JSON of the event with number n (n >= 0) to dst,
// and returns the extended slice and the event's time in Unix nanoseconds.
// The JSON is what AppendJSON writes for g.Event(n).
func (g *Generator) AppendEvent(dst []byte, n int64) ([]byte, int64) {
	return g.appendEvent(dst, n, nil)
}

// appendEvent appends the JSON of event n and, if e is not nil, also
// stores the event there.
func (g *Generator) appendEvent(dst []byte, n int64, e *Event) ([]byte, int64) {
	id := g.eventID(n)
	ts := g.timeMillis(id)
	r := newJrand(id)
	switch rem := id % proportionDenominator; {
	case rem < personProportion:
		dst = g.appendPerson(dst, &r, id, ts, e)
	case rem < personProportion+auctionProportion:
		dst = g.appendAuction(dst, &r, id, ts, e)
	default:
		dst = g.appendBid(dst, &r, id, ts, e)
	}
	return dst, ts * int64(time.Millisecond)
}

// eventID returns the id of the event that event number n carries: n, or
// n's shuffled place within its out-of-order group.
func (g *Generator) eventID(n int64) int64 {
	size := g.cfg.OutOfOrderGroupSize
	if size == 1 {
		return n
	}
	off := n % size
	return n - off + off*permuteStep%size
}

// timeMillis returns the event time of the event with id id in Unix
// milliseconds: id events at event_rate per second after the start.
func (g *Generator) timeMillis(id int64) int64 {
	rate := g.cfg.EventRate
	return g.startMs + id/rate*1000 + id%rate*1000/rate
}

// lastPerson returns the base-0 id of the newest person at event id id:
// its own when the event is a person.
func lastPerson(id int64) int64 {
	epoch, off := id/proportionDenominator, id%proportionDenominator
	off = min(off, personProportion-1)
	return epoch*personProportion + off
}

// lastAuction returns the base-0 id of the newest auction at event id id:
// its own when the event is an auction, -1 before the first.
func lastAuction(id int64) int64 {
	epoch, off := id/proportionDenominator, id%proportionDenominator
	switch {
	case off < personProportion:
		epoch--
		off = auctionProportion - 1
	case off >= personProportion+auctionProportion:
		off = auctionProportion - 1
	default:
		off -= personProportion
	}
	return epoch*auctionProportion + off
}

// nextPerson picks a base-0 person id among the active people and the
// lead.
func (g *Generator) nextPerson(r *jrand, id int64) int64 {
	people := lastPerson(id) + 1
	active := min(people, int64(g.cfg.NumActivePeople))
	return people - active + r.below(active+personIDLead)
}

// nextAuction picks a base-0 auction id among those in flight and the
// lead.
func (g *Generator) nextAuction(r *jrand, id int64) int64 {
	last := lastAuction(id)
	lo := max(last-int64(g.cfg.NumInFlightAuctions), 0)
	return lo + r.below(last-lo+1+auctionIDLead)
}

// nextPrice draws a log-uniform price in [100, 100,000,000]:
// round(10^(6u) × 100), u uniform in [0, 1).
func nextPrice(r *jrand) int64 {
	x := r.nextFloat64() * 6
	// Exp is four times faster than Pow and within a few ulps of it, which
	// only matters next to a rounding boundary: there, ask Pow.
	v := math.Exp(x*math.Ln10) * 100
	if f := v - math.Floor(v); math.Abs(f-0.5) < 1e-5 {
		v = math.Pow(10, x) * 100
	}
	return int64(math.Round(v))
}

// auctionLength draws how long an auction created by event id at ts lasts,
// in milliseconds: uniform up to twice the time until num_in_flight_auctions
// more auctions have been created.
func (g *Generator) auctionLength(r *jrand, id, ts int64) int64 {
	horizon := g.timeMillis(id+g.auctionEvents) - ts
	return 1 + r.below(max(horizon*2, 1))
}

func (g *Generator) appendPerson(dst []byte, r *jrand, id, ts int64, e *Event) []byte {
	pid := lastPerson(id) + firstPersonID
	dst = append(dst, `{"kind":"person","id":`...)
	dst = appendInt(dst, pid)

	dst = append(dst, `,"name":"`...)
	name := len(dst)
	dst = append(dst, firstNames[r.nextInt(int32(len(firstNames)))]...)
	dst = append(dst, ' ')
	dst = append(dst, lastNames[r.nextInt(int32(len(lastNames)))]...)
	nameEnd := len(dst)

	dst = append(dst, `","email_address":"`...)
	email := len(dst)
	dst = appendString(dst, r, 7, ' ')
	dst = append(dst, '@')
	dst = appendString(dst, r, 5, ' ')
	dst = append(dst, ".com"...)
	emailEnd := len(dst)

	dst = append(dst, `","credit_card":"`...)
	card := len(dst)
	for i := range 4 {
		if i > 0 {
			dst = append(dst, ' ')
		}
		v := r.nextInt(10000)
		dst = append(dst, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
	}
	cardEnd := len(dst)

	city := usCities[r.nextInt(int32(len(usCities)))]
	state := usStates[r.nextInt(int32(len(usStates)))]
	dst = append(dst, `","city":"`...)
	dst = append(dst, city...)
	dst = append(dst, `","state":"`...)
	dst = append(dst, state...)
	dst = append(dst, `","date_time":`...)
	dst = appendInt(dst, ts)

	dst = append(dst, `,"extra":"`...)
	extra := len(dst)
	size := 8 + (nameEnd - name) + (emailEnd - email) + (cardEnd - card) + len(city) + len(state)
	dst = appendExtra(dst, r, size, g.cfg.AvgPersonByteSize)
	extraEnd := len(dst)
	dst = append(dst, `"}`...)

	if e != nil {
		*e = Event{Kind: KindPerson, Person: Person{
			ID:           pid,
			Name:         string(dst[name:nameEnd]),
			EmailAddress: string(dst[email:emailEnd]),
			CreditCard:   string(dst[card:cardEnd]),
			City:         city,
			State:        state,
			DateTime:     ts,
			Extra:        string(dst[extra:extraEnd]),
		}}
	}
	return dst
}

func (g *Generator) appendAuction(dst []byte, r *jrand, id, ts int64, e *Event) []byte {
	aid := lastAuction(id) + firstAuctionID
	var seller int64
	if r.nextInt(int32(g.cfg.HotSellersRatio)) > 0 {
		seller = lastPerson(id) / hotBatch * hotBatch
	} else {
		seller = g.nextPerson(r, id)
	}
	seller += firstPersonID
	category := firstCategoryID + int64(r.nextInt(numCategories))
	initial := nextPrice(r)
	expires := ts + g.auctionLength(r, id, ts)

	dst = append(dst, `{"kind":"auction","id":`...)
	dst = appendInt(dst, aid)
	dst = append(dst, `,"item_name":"`...)
	name := len(dst)
	dst = appendString(dst, r, 20, ' ')
	nameEnd := len(dst)
	dst = append(dst, `","description":"`...)
	desc := len(dst)
	dst = appendString(dst, r, 100, ' ')
	descEnd := len(dst)
	reserve := initial + nextPrice(r)

	dst = append(dst, `","initial_bid":`...)
	dst = appendInt(dst, initial)
	dst = append(dst, `,"reserve":`...)
	dst = appendInt(dst, reserve)
	dst = append(dst, `,"date_time":`...)
	dst = appendInt(dst, ts)
	dst = append(dst, `,"expires":`...)
	dst = appendInt(dst, expires)
	dst = append(dst, `,"seller":`...)
	dst = appendInt(dst, seller)
	dst = append(dst, `,"category":`...)
	dst = appendInt(dst, category)

	dst = append(dst, `,"extra":"`...)
	extra := len(dst)
	size := 8 + (nameEnd - name) + (descEnd - desc) + 8 + 8 + 8 + 8 + 8
	dst = appendExtra(dst, r, size, g.cfg.AvgAuctionByteSize)
	extraEnd := len(dst)
	dst = append(dst, `"}`...)

	if e != nil {
		*e = Event{Kind: KindAuction, Auction: Auction{
			ID:          aid,
			ItemName:    string(dst[name:nameEnd]),
			Description: string(dst[desc:descEnd]),
			InitialBid:  initial,
			Reserve:     reserve,
			DateTime:    ts,
			Expires:     expires,
			Seller:      seller,
			Category:    category,
			Extra:       string(dst[extra:extraEnd]),
		}}
	}
	return dst
}

func (g *Generator) appendBid(dst []byte, r *jrand, id, ts int64, e *Event) []byte {
	var auction int64
	if r.nextInt(int32(g.cfg.HotAuctionRatio)) > 0 {
		auction = lastAuction(id) / hotBatch * hotBatch
	} else {
		auction = g.nextAuction(r, id)
	}
	auction += firstAuctionID
	var bidder int64
	if r.nextInt(int32(g.cfg.HotBiddersRatio)) > 0 {
		// The second of the batch, so that hot bidders are not hot sellers.
		bidder = lastPerson(id)/hotBatch*hotBatch + 1
	} else {
		bidder = g.nextPerson(r, id)
	}
	bidder += firstPersonID
	price := nextPrice(r)
	var ch int
	if r.nextInt(hotChannelsRatio) > 0 {
		ch = int(r.nextInt(int32(len(hotChannels))))
	} else {
		ch = len(hotChannels) + int(r.nextInt(numChannels))
	}

	dst = append(dst, `{"kind":"bid","auction":`...)
	dst = appendInt(dst, auction)
	dst = append(dst, `,"bidder":`...)
	dst = appendInt(dst, bidder)
	dst = append(dst, `,"price":`...)
	dst = appendInt(dst, price)
	dst = append(dst, `,"channel":"`...)
	channel := len(dst)
	dst = appendChannel(dst, ch)
	channelEnd := len(dst)
	dst = append(dst, `","url":"`...)
	url := channelURL(ch)
	dst = append(dst, url...)
	dst = append(dst, `","date_time":`...)
	dst = appendInt(dst, ts)

	dst = append(dst, `,"extra":"`...)
	extra := len(dst)
	dst = appendExtra(dst, r, 8+8+8+8, g.cfg.AvgBidByteSize)
	extraEnd := len(dst)
	dst = append(dst, `"}`...)

	if e != nil {
		*e = Event{Kind: KindBid, Bid: Bid{
			Auction:  auction,
			Bidder:   bidder,
			Price:    price,
			Channel:  string(dst[channel:channelEnd]),
			URL:      string(url),
			DateTime: ts,
			Extra:    string(dst[extra:extraEnd]),
		}}
	}
	return dst
}

// appendString appends a random string of minStringLen to maxLen-1
// characters, each a lowercase letter or, one time in 13, space; when
// space is ' ' the result is trimmed, so it may be shorter (down to empty).
func appendString(dst []byte, r *jrand, maxLen int32, space byte) []byte {
	start := len(dst)
	for n := minStringLen + r.nextInt(maxLen-minStringLen); n > 0; n-- {
		if r.nextInt(13) == 0 {
			dst = append(dst, space)
		} else {
			dst = append(dst, byte('a'+r.nextInt(26)))
		}
	}
	if space != ' ' {
		return dst
	}
	s := dst[start:]
	i, j := 0, len(s)
	for i < j && s[i] == ' ' {
		i++
	}
	for j > i && s[j-1] == ' ' {
		j--
	}
	if i > 0 {
		copy(s, s[i:j])
	}
	return dst[:start+j-i]
}

// appendExtra appends lowercase letters so that size plus their number
// averages avg (avg 0 appends nothing), drawing as the reference
// generators do: a length within ±20% of the gap, then one draw per six
// letters.
func appendExtra(dst []byte, r *jrand, size int, avg config.ByteSize) []byte {
	if avg == 0 || int64(size) > int64(avg) {
		return dst
	}
	gap := int(avg) - size
	delta := int(math.Round(float64(gap) * 0.2))
	n := gap - delta
	if delta > 0 {
		n += int(r.nextInt(int32(2 * delta)))
	}
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	out := dst[start:]
	for i := 0; i < len(out); {
		v := uint32(r.nextInt32())
		for k := 0; k < 6 && i < len(out); k++ { // 26^6 < 2^32
			out[i] = byte('a' + v%26)
			v /= 26
			i++
		}
	}
	return dst
}
