// Package dedup is the dedup processor: it drops events whose id was
// already seen within a time to live, with a ttl per tenant (an event
// collector dropping the duplicates SDKs send: 1h for most tenants, 36h for
// one). Config is its YAML spec, Compile checks it, and Dedup.New makes the
// processor for one instance.
//
// # Ids
//
// The key expression gives the event's id, the tenant expression its
// tenant; an id is the pair, so tenants never collide. The pair is kept as a
// 64-bit fingerprint: XXH64 of the tenant's length (uvarint), the tenant
// and the key. Fingerprints are stable across processes and versions (they
// are persisted). Two different ids are taken for one only if their
// fingerprints are equal: with n ids held, a new id is wrongly dropped with
// probability n/2^64 — 5.4e-13 per event at 10 million ids, one event in
// about 2*10^12.
//
// An event whose key is missing, null or the empty string is passed on
// unchecked and counted (weir_dedup_missing_key_total). A missing tenant is
// the tenant "".
//
// # Time
//
// Time is processing time: the clock of the process when the event reaches
// the processor (read once per event from the monotonic clock, anchored to
// the wall clock at start). Event time would let a client's clock expire
// everyone's ids.
//
// Time is cut into buckets: 1/64 of the shortest ttl (wider if the longest
// ttl would span more than 8190 buckets). An id expires at the first bucket
// boundary after its first sighting plus its tenant's ttl: it is held for
// more than the ttl and at most one bucket longer. A copy that arrives
// exactly ttl after the original is dropped. A duplicate does not extend the
// ttl of the id it repeats. testdata/ttl.txt shows the edges.
//
// # The table
//
// The ids of one instance live in one open-addressed table of 64-byte
// groups (a cache line each): seven slots of 8 bytes, each the low 48 bits
// of a fingerprint and the low 16 bits of its expiry bucket's number, and a
// little bookkeeping. A fingerprint's first group comes from its high bits
// (so the group and the slot together hold all 64 bits); its second group
// is the first XOR a hash of the low bits. An id goes to its first group
// when that has a free slot, else to its second (counted in the first's
// overflow), else by moving ids between their two groups, as in cuckoo
// hashing; when that fails or 6/10 of the slots hold live ids, the table
// doubles. A lookup reads the first group, and the second only when the
// first has overflowed.
//
// The cost of an event is one access to memory, about 170 ns on the
// reference machine (a 2-core VM): the table is built so that most events
// take a path of one cache line with predictable branches, letting the
// processor overlap consecutive events' accesses. New ids go to the lane
// after the group's last written one, which is usually the oldest and
// expired; fingerprints are hashed where the key lies (hashing bytes just
// assembled stalls). At a load of 1/3, 98% of insertions take that path.
//
// Expiry drops whole buckets in O(1): the table has a floor, the current
// bucket, and an entry whose bucket is at or below it is a free slot.
// Advancing the floor releases buckets by their live counts (one counter
// per bucket); nothing is moved or scanned. Each id carries its own bucket,
// so a tenant with a 36h ttl keeps its ids in buckets of its own and the 1h
// tenants' buckets are released on time; their slots are reused by new ids.
// A sweep paid for as the floor moves (there is no goroutine) clears expired
// slots, so that 16-bit bucket numbers never wrap onto a stale entry.
//
// Memory: 64 bytes per 7 slots, at a load between 3/10 and 6/10 — 15 to 31
// bytes per held id (26.6 at 10 million), at least 4 MiB per instance, plus
// 16 bytes per id inserted since the last checkpoint.
//
// max_ids bounds the ids an instance holds. Inserting one more first
// expires the bucket closest to expiry, for every tenant, early: its ids are
// forgotten and their duplicates will pass. This weakens the guarantee; it
// is counted (weir_dedup_evicted_early_total) and logged at most every 10 s.
// The floor then runs ahead of the clock until the clock catches up, and new
// ids of short-ttl tenants go into the bucket after it.
//
// # State
//
// A Processor implements runtime.Stateful. Without checkpoints the ids are
// in memory only, and a warning says so at start. With checkpoints each
// snapshot writes what changed since the last committed one: one key per id
// inserted, and one DeleteRange for the buckets that expired. Keys are
// 0x01, the instance, the id's expiry time and its fingerprint (big-endian),
// so expired ids of an instance form one key range. Restore loads the ids
// that have not expired (at the clock of the restart: ids that expire while
// the pipeline is down are not restored). See state.go for the format.
//
// When the node's parallelism changed since the checkpoint, every instance
// loads the ids of all former instances and rewrites its own at the next
// checkpoint; instance 0 deletes those of instances that no longer exist.
// With more than one instance the node must be fed by a key_hash edge on
// the same identity (key_by: concat(meta("tenant"), ":", meta("event_id"))
// for the default key): otherwise an id's copies reach different instances.
//
// Acknowledgement. "A duplicate that arrives while its original is not yet
// durable must not be acknowledged before the original is." In weir every
// event is in the durable log before it reaches a processor, so the
// original, being seen first, is durable when its duplicate is dropped. A
// dropped duplicate is acknowledged at once, but acknowledgements only move
// input positions, and with checkpoints those positions are committed in
// the same atomic write as the dedup state of the same cut: a checkpoint
// that counts the duplicate as done also holds its original's id, and every
// event before the cut, the original included, has been written. A restart
// from a checkpoint replays exactly the events after its cut against the
// ids of the cut, so each gets the decision it got before (TestReplayMatches).
//
// # Threading
//
// Process runs on the stage's goroutine. Restore, Snapshot and Committed
// run on the checkpoint coordinator's, and the metrics collector on the
// scraper's. Process takes the instance's mutex once per event (there is no
// batch boundary); Snapshot holds it only to swap the change log out, or
// for a full rewrite (after a rescale, or when the change log outgrew the
// set).
package dedup
