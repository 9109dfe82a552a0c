package runtime

// State that follows its partitions. When several weir processes share
// the partitions of a Kafka topic (a consumer group), the keyed state of an
// operator must live where the key's partition is processed, and move with
// it. The runtime's part of that:
//
//   - Every write of a keyed operator's state (its checkpoint writes and its
//     scratch writes between checkpoints) to a key whose partition this
//     process holds is recorded as a changelog record: the node, the state
//     key without its instance prefix, the value or a tombstone. The Kafka
//     output takes the records at each checkpoint (Take) and produces them,
//     in the checkpoint's transaction, to a compacted changelog topic,
//     partitioned like the input: the changelog of partition p holds the
//     state of p's keys, committed atomically with the results derived
//     from them and the input offsets.
//   - A process that loses a partition releases its state at the next
//     checkpoint at which nothing read from it is in flight (Release): the
//     operators hand over what they changed since the last checkpoint and
//     forget the keys, whose records leave the local store; the partition
//     is given up once that checkpoint is durable.
//   - A process that gains a partition imports its changelog into the
//     store, with every operator stopped, before a record of it is read
//     (Import); the operators take the keys in (KeyedState.Acquire).
//   - At a start with a changelog, the local copy of keyed state is
//     dropped: every partition's state comes from its changelog when the
//     partition is assigned, since the local copy may be stale (the
//     partition may have been processed elsewhere since).
//
// The partition of a key is Kafka's default partitioner's (murmur2 of the
// key bytes): the keyed operator's key must be the key the input records
// were produced with (co-partitioned), or a repartition topic must come
// first. KeyedState records are in the operators' shared layout
// (internal/processor/opstate): a 2-byte instance prefix.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// KeyedState is implemented by operators each of whose checkpointed
// records (but an instance's own, such as its watermark) belongs to one
// event key, so that their state can move between processes with the
// key's partition.
type KeyedState interface {
	Stateful
	// EventKey returns the event key a record of the node's state belongs
	// to; ok is false for a record of no key.
	EventKey(stateKey []byte) (key []byte, ok bool)
	// Release is called with the operator stopped: it writes to w what
	// changed since the last checkpoint in the state of the keys drop
	// selects, and forgets those keys. Their records then leave the store;
	// the operator sees no event of them until they are acquired again.
	Release(drop func(key []byte) bool, w StateWriter) error
	// Acquire is called with the operator stopped after the store gained
	// the records of the keys accept selects (in each instance's range as
	// the key's owner): the operator takes them in. r reads the store as
	// it is now.
	Acquire(accept func(key []byte) bool, r StateReader) error
}

// ChangelogImporter is implemented by stateful components that write
// their changelog records themselves (Changelog.Append), because their
// records do not name event keys (dedup keeps fingerprints of ids). They
// release nothing when a partition leaves (what they hold of it must be
// harmless to keep), and take in a gained partition's records.
type ChangelogImporter interface {
	Stateful
	// ImportChangelog is called with the pipeline stopped, with the
	// records of a partition this process gained, in order, as the
	// component appended them (the key without the node's name).
	ImportChangelog(recs []ChangelogRecord) error
}

// ChangelogRecord is one change of keyed state: Key is the node's name, a
// zero byte, and the state key without its instance prefix; a nil Value is
// a deletion.
type ChangelogRecord struct {
	Part  int32
	Key   []byte
	Value []byte
}

// splitKey splits a changelog record's key into the node and the node's
// own key (for a KeyedState, the state key without its instance prefix).
func splitKey(k []byte) (node string, key []byte, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(k[:i]), k[i+1:], true
}

// Changelog is the pipeline's side of state that follows partitions
// (Env.Changelog; nil without checkpoints).
type Changelog struct {
	c   *coordinator
	log *slog.Logger

	mu        sync.Mutex
	nodes     map[string][]KeyedState // instances by node, in instance order
	importers map[string][]ChangelogImporter
	sources   map[string][]string // the inputs upstream of each node
	name      string
	parts     int32 // partitions; 0 while disabled
	held      map[int32]bool
	pending   map[string]ChangelogRecord
	// appended are the records of Append, in order, their bytes in chunks
	// of arena (many small records, one allocation per chunk).
	appended []ChangelogRecord
	arena    []byte
	// releases wait for a checkpoint; released ones for its completion.
	releases, released []*release
	wiped              map[string]bool

	restoreSeconds prometheus.Histogram
	restored       prometheus.Counter
}

type release struct {
	parts []int32
	ready func() bool
	done  chan struct{}
}

func newChangelog(c *coordinator, log *slog.Logger, reg prometheus.Registerer) *Changelog {
	cl := &Changelog{c: c, log: log, nodes: map[string][]KeyedState{}, importers: map[string][]ChangelogImporter{}, sources: map[string][]string{}, held: map[int32]bool{},
		pending: map[string]ChangelogRecord{}, wiped: map[string]bool{},
		restoreSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weir_state_restore_seconds",
			Help:    "Time to restore the keyed state of the partitions a rebalance gave this process, from reading their changelog to the operators holding it.",
			Buckets: prometheus.ExponentialBuckets(1e-3, 2, 16),
		}),
		restored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_state_restored_partitions_total",
			Help: "Partitions whose keyed state this process restored from the changelog.",
		})}
	if reg != nil {
		reg.MustRegister(cl.restoreSeconds, cl.restored)
	}
	c.cl = cl
	return cl
}

// register notes a component of node whose state can follow partitions.
func (cl *Changelog) register(node string, comp any, sources []string) {
	if cl == nil {
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	switch c := comp.(type) {
	case KeyedState:
		cl.nodes[node] = append(cl.nodes[node], c)
	case ChangelogImporter:
		cl.importers[node] = append(cl.importers[node], c)
	default:
		return
	}
	cl.sources[node] = sources
}

// WantedBy reports whether operators with keyed state read the events of
// input (it is upstream of one).
func (cl *Changelog) WantedBy(input string) bool {
	if cl == nil {
		return false
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, srcs := range cl.sources {
		if slices.Contains(srcs, input) {
			return true
		}
	}
	return false
}

// Append records a change for a ChangelogImporter: key is its own (the
// node's name is put before it), a nil value a deletion. It is dropped
// while the changelog is off.
func (cl *Changelog) Append(node string, part int32, key, value []byte) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.parts == 0 {
		return
	}
	n := len(node) + 1 + len(key) + len(value)
	if cap(cl.arena)-len(cl.arena) < n {
		cl.arena = make([]byte, 0, max(n, 64<<10))
	}
	start := len(cl.arena)
	cl.arena = append(append(append(cl.arena, node...), 0), key...)
	rec := ChangelogRecord{Part: part, Key: cl.arena[start:len(cl.arena):len(cl.arena)]}
	if value != nil {
		vs := len(cl.arena)
		cl.arena = append(cl.arena, value...)
		rec.Value = cl.arena[vs:len(cl.arena):len(cl.arena)]
	}
	cl.appended = append(cl.appended, rec)
}

// Enable turns the changelog on, with name (the topic) and the number of
// partitions keys map to. It is called before the operators restore (an
// input's Restore does it); a second call must agree with the first.
func (cl *Changelog) Enable(name string, partitions int32) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if partitions < 1 {
		return fmt.Errorf("changelog %q: %d partitions", name, partitions)
	}
	if cl.parts != 0 {
		if cl.name != name || cl.parts != partitions {
			return fmt.Errorf("changelog: two inputs want different changelogs (%q with %d partitions, %q with %d): keyed state can follow the partitions of one topic", cl.name, cl.parts, name, partitions)
		}
		return nil
	}
	if len(cl.wiped) > 0 {
		return errors.New("changelog: enabled after an operator restored")
	}
	cl.name, cl.parts = name, partitions
	return nil
}

// Name is the changelog's name as Enable set it; "" when disabled.
func (cl *Changelog) Name() string {
	if cl == nil {
		return ""
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.name
}

// Partitions is the number of partitions keys map to; 0 when disabled.
func (cl *Changelog) Partitions() int32 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.parts
}

// KafkaPartition is the partition Kafka's default partitioner (the Java
// client's, and franz-go's StickyKeyPartitioner) gives a record with key
// among n partitions.
func KafkaPartition(key []byte, n int32) int32 {
	if n <= 0 {
		return 0
	}
	return int32(murmur2(key)&0x7fffffff) % n
}

// murmur2 is the 32-bit MurmurHash2 with Kafka's seed.
func murmur2(b []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	h := uint32(seed) ^ uint32(len(b))
	for len(b) >= 4 {
		k := binary.LittleEndian.Uint32(b)
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		b = b[4:]
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// record notes a write of a node's state when its key's partition is held
// (force: whatever the partition).
func (cl *Changelog) record(node string, ks KeyedState, stateKey, value []byte, del, force bool) {
	if len(stateKey) < 2 {
		return
	}
	key, ok := ks.EventKey(stateKey)
	if !ok {
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.parts == 0 {
		return
	}
	part := KafkaPartition(key, cl.parts)
	if !force && !cl.held[part] {
		return
	}
	k := make([]byte, 0, len(node)+1+len(stateKey)-2)
	k = append(append(append(k, node...), 0), stateKey[2:]...)
	rec := ChangelogRecord{Part: part, Key: k}
	if !del {
		rec.Value = append(make([]byte, 0, len(value)), value...)
	}
	cl.pending[string(k)] = rec
}

// Take returns the changes recorded since the last Take, for the output
// that writes them in the checkpoint's transaction (during its Snapshot:
// every operator's Snapshot has run then).
func (cl *Changelog) Take() []ChangelogRecord {
	if cl == nil {
		return nil
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if len(cl.pending) == 0 && len(cl.appended) == 0 {
		return nil
	}
	out := make([]ChangelogRecord, 0, len(cl.pending)+len(cl.appended))
	for _, r := range cl.pending {
		out = append(out, r)
	}
	clear(cl.pending)
	slices.SortFunc(out, func(a, b ChangelogRecord) int { return bytes.Compare(a.Key, b.Key) })
	out = append(out, cl.appended...)
	cl.appended, cl.arena = nil, nil
	return out
}

// Release gives up parts: at the first checkpoint at which ready reports
// true (it is called with the pipeline stopped for the checkpoint), the
// operators hand over and forget the partitions' keys. The returned
// channel is closed once that checkpoint is durable and its Committed
// steps (the output's transaction) are done.
func (cl *Changelog) Release(parts []int32, ready func() bool) <-chan struct{} {
	r := &release{parts: slices.Clone(parts), ready: ready, done: make(chan struct{})}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.releases = append(cl.releases, r)
	return r.done
}

// recordWriter records a release's writes, whatever their partition.
type recordWriter struct {
	cl   *Changelog
	node string
	ks   KeyedState
}

func (w recordWriter) Set(k, v []byte) error {
	w.cl.record(w.node, w.ks, k, v, false, true)
	return nil
}

func (w recordWriter) Delete(k []byte) error {
	w.cl.record(w.node, w.ks, k, nil, true, true)
	return nil
}

func (w recordWriter) DeleteRange(_, _ []byte) error {
	return errors.New("changelog: a release cannot delete a range")
}

// releaseDue runs the releases whose partitions are ready, with the
// pipeline stopped for a checkpoint, before its write begins.
func (cl *Changelog) releaseDue() error {
	// ready takes the input's lock: call it without cl.mu (an input's
	// Restore takes cl.mu under its own).
	cl.mu.Lock()
	waiting := slices.Clone(cl.releases)
	cl.mu.Unlock()
	var due []*release
	for _, r := range waiting {
		if r.ready() {
			due = append(due, r)
		}
	}
	cl.mu.Lock()
	cl.releases = slices.DeleteFunc(cl.releases, func(r *release) bool { return slices.Contains(due, r) })
	cl.mu.Unlock()
	for _, r := range due {
		set := map[int32]bool{}
		for _, p := range r.parts {
			set[p] = true
		}
		if err := cl.drop(set); err != nil {
			return err
		}
		cl.mu.Lock()
		for _, p := range r.parts {
			delete(cl.held, p)
		}
		cl.released = append(cl.released, r)
		cl.mu.Unlock()
		cl.log.Info("keyed state of partitions handed over to the changelog", slog.Any("partitions", r.parts))
	}
	return nil
}

// members returns the partition count and the registered components (the
// maps are copies).
func (cl *Changelog) members() (int32, map[string][]KeyedState, map[string][]ChangelogImporter) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.parts, maps.Clone(cl.nodes), maps.Clone(cl.importers)
}

// drop has every operator hand over and forget the keys of parts, then
// deletes their records from the store.
func (cl *Changelog) drop(parts map[int32]bool) error {
	n, nodes, _ := cl.members()
	in := func(key []byte) bool { return parts[KafkaPartition(key, n)] }
	for node, insts := range nodes {
		for _, ks := range insts {
			if err := ks.Release(in, recordWriter{cl: cl, node: node, ks: ks}); err != nil {
				return fmt.Errorf("node %q: release of partitions: %w", node, err)
			}
		}
		if err := cl.deleteKeys(node, insts[0], in); err != nil {
			return err
		}
	}
	return nil
}

// scratch is the raw scratch of a node: writes to it are not recorded.
func (cl *Changelog) scratch(node string) (Scratch, error) {
	so, ok := cl.c.store.Reader(node).(ScratchOpener)
	if !ok {
		return nil, errors.New("changelog: the state store has no scratch space")
	}
	return so.Scratch(), nil
}

// deleteKeys deletes from the store every record of node whose event key
// sel selects.
func (cl *Changelog) deleteKeys(node string, ks KeyedState, sel func(key []byte) bool) error {
	sc, err := cl.scratch(node)
	if err != nil {
		return err
	}
	var doomed [][]byte
	err = sc.Scan(nil, nil, func(k, _ []byte) error {
		if key, ok := ks.EventKey(k); ok && sel(key) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("node %q: %w", node, err)
	}
	for _, k := range doomed {
		if err := sc.Delete(k); err != nil {
			return fmt.Errorf("node %q: %w", node, err)
		}
	}
	return nil
}

// committed closes the releases a completed checkpoint carried out.
func (cl *Changelog) committed() {
	cl.mu.Lock()
	done := cl.released
	cl.released = nil
	cl.mu.Unlock()
	for _, r := range done {
		close(r.done)
	}
}

// Import loads the changelog records of parts (in order; later ones win)
// into the store and has the components take their keys in, all in one
// stop of the pipeline; from then on this process holds the partitions.
// since is when the restore began (for the restore time metric).
func (cl *Changelog) Import(ctx context.Context, parts []int32, recs []ChangelogRecord, since time.Time) error {
	if len(parts) == 0 {
		return nil
	}
	err := cl.c.exclusive(ctx, func() error {
		n, nodes, importers := cl.members()
		if n == 0 {
			return errors.New("changelog: import while disabled")
		}
		set := map[int32]bool{}
		for _, p := range parts {
			set[p] = true
		}
		accept := func(key []byte) bool { return set[KafkaPartition(key, n)] }
		// Stale records of the partitions (a crash between a release and
		// the next checkpoint) go first.
		scratches := map[string]Scratch{}
		for node, insts := range nodes {
			sc, err := cl.scratch(node)
			if err != nil {
				return err
			}
			scratches[node] = sc
			if err := cl.deleteKeys(node, insts[0], accept); err != nil {
				return err
			}
		}
		own := map[string][]ChangelogRecord{}
		var kb []byte
		for _, r := range recs {
			node, rest, ok := splitKey(r.Key)
			if !ok {
				continue
			}
			if len(importers[node]) > 0 {
				own[node] = append(own[node], ChangelogRecord{Part: r.Part, Key: rest, Value: r.Value})
				continue
			}
			insts := nodes[node]
			if len(insts) == 0 {
				continue // a node this version of the pipeline does not have
			}
			kb = append(append(kb[:0], 0, 0), rest...)
			key, ok := insts[0].EventKey(kb)
			if !ok {
				continue
			}
			owner := 0
			if len(insts) > 1 {
				owner = int(KeyHash(key) % uint64(len(insts)))
			}
			binary.BigEndian.PutUint16(kb, uint16(owner))
			var err error
			if r.Value == nil {
				err = scratches[node].Delete(kb)
			} else {
				err = scratches[node].Set(kb, r.Value)
			}
			if err != nil {
				return fmt.Errorf("node %q: import of partition %d: %w", node, r.Part, err)
			}
		}
		for node, insts := range nodes {
			for _, ks := range insts {
				if err := ks.Acquire(accept, scratches[node]); err != nil {
					return fmt.Errorf("node %q: acquire of partitions %v: %w", node, parts, err)
				}
			}
		}
		for node, rs := range own {
			for _, imp := range importers[node] {
				if err := imp.ImportChangelog(rs); err != nil {
					return fmt.Errorf("node %q: import of partitions %v: %w", node, parts, err)
				}
			}
		}
		cl.mu.Lock()
		for _, p := range parts {
			cl.held[p] = true
		}
		cl.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	took := time.Since(since)
	cl.restoreSeconds.Observe(took.Seconds())
	cl.restored.Add(float64(len(parts)))
	cl.log.Info("keyed state of partitions restored from the changelog", slog.Any("partitions", parts),
		slog.Int("records", len(recs)), slog.Float64("took_ms", float64(took.Microseconds())/1000))
	return nil
}

// wipe drops the local copy of node's keyed state at a start with a
// changelog (once per node).
func (cl *Changelog) wipe(node string, ks KeyedState) error {
	cl.mu.Lock()
	if cl.parts == 0 || cl.wiped[node] {
		cl.wiped[node] = true
		cl.mu.Unlock()
		return nil
	}
	cl.wiped[node] = true
	cl.mu.Unlock()
	return cl.deleteKeys(node, ks, func([]byte) bool { return true })
}

// keyed returns the KeyedState of a registered component, if it is one.
func (cl *Changelog) keyed(comp Stateful) (KeyedState, bool) {
	if cl == nil {
		return nil, false
	}
	ks, ok := comp.(KeyedState)
	return ks, ok
}

// tee records the writes of a keyed operator's node whose partition is
// held.
type tee struct {
	cl   *Changelog
	node string
	ks   KeyedState
}

// set and del record a write that err says succeeded.
func (t tee) set(err error, k, v []byte) error {
	if err == nil {
		t.cl.record(t.node, t.ks, k, v, false, false)
	}
	return err
}

func (t tee) del(err error, k []byte) error {
	if err == nil {
		t.cl.record(t.node, t.ks, k, nil, true, false)
	}
	return err
}

// teeWriter records a keyed operator's checkpoint writes.
type teeWriter struct {
	StateWriter
	t tee
}

func (w teeWriter) Set(k, v []byte) error { return w.t.set(w.StateWriter.Set(k, v), k, v) }
func (w teeWriter) Delete(k []byte) error { return w.t.del(w.StateWriter.Delete(k), k) }

// teeScratch records a keyed operator's scratch writes.
type teeScratch struct {
	Scratch
	t tee
}

func (s teeScratch) Set(k, v []byte) error { return s.t.set(s.Scratch.Set(k, v), k, v) }
func (s teeScratch) Delete(k []byte) error { return s.t.del(s.Scratch.Delete(k), k) }

// teeReader hands a keyed operator a recording scratch.
type teeReader struct {
	StateReader
	so ScratchOpener
	t  tee
}

func (r teeReader) Scratch() Scratch { return teeScratch{Scratch: r.so.Scratch(), t: r.t} }

// readerFor returns the reader a component restores from: with the
// changelog on, for a keyed operator, one that reads and writes through
// its scratch, which records the writes, after the local copy of the
// node's keyed state is dropped.
func (cl *Changelog) readerFor(node string, comp Stateful, r StateReader) (StateReader, error) {
	ks, ok := cl.keyed(comp)
	if !ok {
		return r, nil
	}
	if err := cl.wipe(node, ks); err != nil {
		return nil, err
	}
	so, ok := r.(ScratchOpener)
	if !ok || cl.Partitions() == 0 {
		// Off (it is enabled before operators restore, or never): the
		// operator writes as if there were no changelog.
		return r, nil
	}
	// Read through the scratch, which has the local copy dropped.
	return teeReader{StateReader: so.Scratch(), so: so, t: tee{cl: cl, node: node, ks: ks}}, nil
}

// writerFor returns the writer a component snapshots into: with the
// changelog on, one that records a keyed operator's writes.
func (cl *Changelog) writerFor(node string, comp Stateful, w StateWriter) StateWriter {
	ks, ok := cl.keyed(comp)
	if !ok || cl.Partitions() == 0 {
		return w
	}
	return teeWriter{StateWriter: w, t: tee{cl: cl, node: node, ks: ks}}
}
