package nexmark

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/weir-dev/weir/internal/config"
)

// Config parameterises the stream. The zero Config is not valid: start from
// DefaultConfig, which holds the reference generators' defaults.
type Config struct {
	EventRate           int64           `yaml:"event_rate" doc:"Events per second of event time: event n happens n/event_rate seconds after the start (Beam's firstEventRate). Independent of the input's rate, which paces the wall clock." default:"10000"`
	OutOfOrderGroupSize int64           `yaml:"out_of_order_group_size" doc:"Events are shuffled within groups of this many event numbers (Beam's outOfOrderGroupSize); 1 keeps them in order. Sizes that divide 952 or are multiples of 953 are rejected: the shuffle would not move or not permute events." default:"1"`
	HotAuctionRatio     int             `yaml:"hot_auction_ratio" doc:"A bid goes to the current hot auction with probability 1 - 1/hot_auction_ratio." default:"2"`
	HotSellersRatio     int             `yaml:"hot_sellers_ratio" doc:"An auction is by the current hot seller with probability 1 - 1/hot_sellers_ratio." default:"4"`
	HotBiddersRatio     int             `yaml:"hot_bidders_ratio" doc:"A bid is by the current hot bidder with probability 1 - 1/hot_bidders_ratio." default:"4"`
	NumActivePeople     int             `yaml:"num_active_people" doc:"Sellers and bidders that are not hot are drawn from this many most recent people." default:"1000"`
	NumInFlightAuctions int             `yaml:"num_in_flight_auctions" doc:"Bids that are not for the hot auction go to one of this many most recent auctions; auctions last about as long as it takes to create this many more." default:"100"`
	AvgPersonByteSize   config.ByteSize `yaml:"avg_person_byte_size" doc:"Pad persons with an extra field to about this size, counted as Beam does (8 bytes a number, strings by length); 0 leaves extra empty." default:"0"`
	AvgAuctionByteSize  config.ByteSize `yaml:"avg_auction_byte_size" doc:"Pad auctions with an extra field to about this size; 0 leaves extra empty." default:"0"`
	AvgBidByteSize      config.ByteSize `yaml:"avg_bid_byte_size" doc:"Pad bids with an extra field to about this size; 0 leaves extra empty." default:"0"`

	// Start is the event time of event number 0, to the millisecond; the
	// zero Time means the Unix epoch. It is not read from YAML: the generate
	// input sets it from its own start_time.
	Start time.Time `yaml:"-"`
}

// Limits of the settings, to keep the arithmetic well inside int64.
const (
	maxEventRate = 1_000_000_000
	maxGroupSize = 1_000_000_000
	maxPopulace  = 1_000_000_000
	maxAvgSize   = config.MiB
	// permuteStep is the multiplier of the shuffle within a group, as in
	// the reference generators: a prime, so that it permutes any group whose
	// size is not a multiple of it.
	permuteStep = 953
)

// shuffles reports whether groups of size g are shuffled: permuteStep
// permutes them when it is not a multiple of g, and leaves them as they are
// when it is 1 modulo g. Size 1 means in order, so it is fine.
func shuffles(g int64) bool {
	return g == 1 || g > 1 && g%permuteStep != 0 && permuteStep%g != 1
}

// DefaultConfig returns the defaults of the reference generators, without
// padding (they pad to 200, 500 and 100 bytes).
func DefaultConfig() Config {
	return Config{
		EventRate:           10_000,
		OutOfOrderGroupSize: 1,
		HotAuctionRatio:     2,
		HotSellersRatio:     4,
		HotBiddersRatio:     4,
		NumActivePeople:     1000,
		NumInFlightAuctions: 100,
	}
}

// Validate reports every problem with c as *config.FieldError values joined
// with errors.Join, or nil. Field names are the YAML keys.
func (c Config) Validate() error {
	var errs []error
	if c.EventRate < 1 || c.EventRate > maxEventRate {
		errs = append(errs, &config.FieldError{Field: "event_rate", Msg: fmt.Sprintf("event_rate is %d", c.EventRate),
			Expected: fmt.Sprintf("events per second of event time, between 1 and %d", maxEventRate)})
	}
	switch g := c.OutOfOrderGroupSize; {
	case g < 1 || g > maxGroupSize:
		errs = append(errs, &config.FieldError{Field: "out_of_order_group_size", Msg: fmt.Sprintf("out_of_order_group_size is %d", g),
			Expected: fmt.Sprintf("a number of events between 1 and %d (1 = in order)", maxGroupSize)})
	case !shuffles(g):
		lo, hi := g-1, g+1
		for !shuffles(lo) {
			lo--
		}
		for !shuffles(hi) {
			hi++
		}
		what := "leaves the events in order"
		if g%permuteStep == 0 {
			what = "does not permute the events"
		}
		errs = append(errs, &config.FieldError{Field: "out_of_order_group_size", Msg: fmt.Sprintf("out_of_order_group_size %d %s", g, what),
			Expected: fmt.Sprintf("a size that neither divides %d nor is a multiple of %d", permuteStep-1, permuteStep),
			Hint:     fmt.Sprintf("event n moves to (n × %d) mod size within its group; use %d or %d", permuteStep, lo, hi)})
	}
	for _, r := range []struct {
		field string
		v     int
	}{{"hot_auction_ratio", c.HotAuctionRatio}, {"hot_sellers_ratio", c.HotSellersRatio}, {"hot_bidders_ratio", c.HotBiddersRatio}} {
		if r.v < 1 || r.v > math.MaxInt32 {
			errs = append(errs, &config.FieldError{Field: r.field, Msg: fmt.Sprintf("%s is %d", r.field, r.v),
				Expected: "an integer between 1 and 2147483647", Hint: "1 means never hot; 2 means hot half of the time"})
		}
	}
	for _, p := range []struct {
		field string
		v     int
	}{{"num_active_people", c.NumActivePeople}, {"num_in_flight_auctions", c.NumInFlightAuctions}} {
		if p.v < 1 || p.v > maxPopulace {
			errs = append(errs, &config.FieldError{Field: p.field, Msg: fmt.Sprintf("%s is %d", p.field, p.v),
				Expected: fmt.Sprintf("an integer between 1 and %d", maxPopulace)})
		}
	}
	for _, s := range []struct {
		field string
		v     config.ByteSize
	}{{"avg_person_byte_size", c.AvgPersonByteSize}, {"avg_auction_byte_size", c.AvgAuctionByteSize}, {"avg_bid_byte_size", c.AvgBidByteSize}} {
		if s.v < 0 || s.v > maxAvgSize {
			errs = append(errs, &config.FieldError{Field: s.field, Msg: fmt.Sprintf("%s is %d bytes", s.field, int64(s.v)),
				Expected: "a size between 0 (no padding) and 1MiB"})
		}
	}
	return errors.Join(errs...)
}
