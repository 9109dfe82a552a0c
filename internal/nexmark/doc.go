// Package nexmark generates the event stream of the Nexmark benchmark: the
// people, auctions and bids of an online auction site, with the structure
// and distributions of the Apache Beam and Flink Nexmark generators.
//
// The stream is a sequence of events numbered 0, 1, 2, …; each event is a
// pure function of the Config and its number, so any part of the stream can
// be made in any order, by any number of goroutines or processes. As in the
// reference generators:
//
//   - The event with id i is a person when i mod 50 is 0, an auction when
//     it is 1 to 3, and a bid otherwise (proportions 1:3:46). Person and
//     auction ids count up from 1000 in that order; categories are 10 to 14.
//   - Its fields are drawn from a java.util.Random seeded with i, in the
//     reference order, so persons and auctions (and the auction, bidder and
//     price of bids) match Beam's when padding is off and the rate divides
//     1,000,000.
//   - Bids refer to recent auctions and people: a hot auction or bidder with
//     probability 1 - 1/ratio, else one of the last num_in_flight_auctions
//     auctions or num_active_people people, or one of the next 10 ids (the
//     reference generators' "lead", which makes a bid appear just before
//     the auction or person it names).
//   - Prices are log-uniform from 100 to 100,000,000: round(10^(6u) × 100)
//     for u uniform in [0, 1).
//   - Event id i happens at start + i × 1000/event_rate ms (rounded down).
//   - With an out-of-order group size g > 1, event number n carries the
//     event with id ⌊n/g⌋g + (953n mod g): each group of g numbers holds
//     the same events as in order, shuffled, with their event times.
//
// Bids also carry a channel and a URL, as in the Flink generator: half of
// them come through one of four hot channels, the others through one of
// 10,000 numbered channels, each with a fixed URL.
//
// Generate and AppendJSON give an event as Go values and as JSON; a
// Generator appends the JSON of an event without allocating, for inputs.
// Generators are immutable and safe for concurrent use. The JSON of an
// event is one compact object: "kind" ("person", "auction" or "bid") and
// then that entity's fields in snake_case, times in Unix milliseconds.
package nexmark
