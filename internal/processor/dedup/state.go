package dedup

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/weir-dev/weir/internal/runtime"
)

// State keys (the runtime prefixes them with the node's name):
//
//	0x00                                   version (1 byte) | parallelism (uint32)
//	0x01 | instance | expiry | fingerprint  empty value
//	0x02 | instance                         floor (uint64)
//
// with instance a big-endian uint32, expiry the Unix nanosecond at which the
// id expires (the start of its expiry bucket) as a big-endian uint64, and
// fingerprint a big-endian uint64. Keys sort by instance, then expiry, so
// expiring an instance's old buckets is one DeleteRange. The floor is the
// time up to which the instance's ids have expired: it runs ahead of the
// clock after max_ids forced early expiry.
const (
	stateVersion = 1
	prefixMeta   = 0x00
	prefixIDs    = 0x01
	prefixFloor  = 0x02
	idKeyLen     = 1 + 4 + 8 + 8
)

var metaKey = []byte{prefixMeta}

func appendIDKey(dst []byte, inst uint32, exp int64, fp uint64) []byte {
	dst = append(dst, prefixIDs)
	dst = binary.BigEndian.AppendUint32(dst, inst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(exp))
	return binary.BigEndian.AppendUint64(dst, fp)
}

func instPrefix(inst uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixIDs}, inst)
}

func floorKey(inst uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixFloor}, inst)
}

// ckState is what the checkpoint side keeps between calls.
type ckState struct {
	pending      []entry // changes written by snapshots not yet committed
	pendingBytes atomic.Int64
	pendingFull  bool  // a full rewrite was written and is not yet committed
	deleted      int64 // the store holds no ids of this instance expiring before this (committed)
	deleting     int64 // the same, as written by the last snapshot
	metaDirty    bool  // instance 0: write the meta key
	dropForeign  bool  // instance 0 after a rescale: delete the ids of instances >= parallelism
	keys         keyArena
}

// keyArena hands out key slices that are not reused: the StateWriter
// contract lets callers reuse values, not keys. One allocation serves
// thousands of keys.
type keyArena struct{ chunk []byte }

func (a *keyArena) idKey(inst uint32, exp int64, fp uint64) []byte {
	if cap(a.chunk)-len(a.chunk) < idKeyLen {
		a.chunk = make([]byte, 0, 64<<10)
	}
	start := len(a.chunk)
	a.chunk = appendIDKey(a.chunk, inst, exp, fp)
	return a.chunk[start:len(a.chunk):len(a.chunk)]
}

// Restore loads the ids of the last checkpoint that have not expired. When
// the node's parallelism changed since that checkpoint, ids no longer go to
// the instance that saw them: every instance then loads the ids of all
// former instances and rewrites its own at the next checkpoint.
func (p *Processor) Restore(ctx context.Context, r runtime.StateReader) error {
	c := &p.ck
	inst, par := uint32(p.env.Instance), max(1, p.env.Parallelism)
	v, ok, err := r.Get(metaKey)
	if err != nil {
		return fmt.Errorf("dedup: read state: %w", err)
	}
	prev := par
	if ok {
		if len(v) != 5 || v[0] != stateVersion {
			return fmt.Errorf("dedup: state has an unknown format (%x); this weir reads version %d", v, stateVersion)
		}
		prev = int(binary.BigEndian.Uint32(v[1:]))
	}
	g := p.d.gran
	floor := p.now() / g
	if prev == par {
		f, ok, err := r.Get(floorKey(inst))
		if err != nil {
			return fmt.Errorf("dedup: read state: %w", err)
		}
		if ok && len(f) == 8 {
			// The stored floor, if ahead of the clock (early expiry), but
			// never more than the longest ttl ahead.
			if at := int64(binary.BigEndian.Uint64(f)); at > 0 {
				floor = max(floor, min(at/g, floor+maxSpan))
			}
		}
	}
	t := newTable(0, floor)
	t.maxLive = p.d.maxIDs
	from := t.floor*g + 1 // ids expiring at or before floor*g have expired
	loaded := 0
	add := func(key, _ []byte) error {
		if len(key) != idKeyLen || key[0] != prefixIDs {
			return fmt.Errorf("dedup: malformed state key %x", key)
		}
		exp := int64(binary.BigEndian.Uint64(key[5:]))
		if exp < from {
			return nil
		}
		// Round up: a changed bucket width never shortens a promise. An
		// expiry beyond the longest configured ttl is cut to it.
		e := exp / g
		if exp%g != 0 {
			e++
		}
		e = min(e, t.floor+maxSpan)
		t.restore(binary.BigEndian.Uint64(key[13:]), e)
		loaded++
		return ctx.Err()
	}
	if prev == par {
		err = r.Scan(appendIDKey(nil, inst, from, 0), instPrefix(inst+1), add)
	} else {
		err = r.Scan([]byte{prefixIDs}, []byte{prefixIDs + 1}, add)
	}
	if err != nil {
		return fmt.Errorf("dedup: restore: %w", err)
	}
	p.mu.Lock()
	t.evicted += p.tab.evicted // the counter is monotonic
	p.tab = t
	p.delta = p.delta[:0]
	p.full = prev != par
	p.mu.Unlock()
	c.pending, c.pendingFull = nil, false
	c.pendingBytes.Store(0)
	c.deleted, c.deleting = 0, 0 // the first snapshot deletes what expired while down
	c.metaDirty = inst == 0 && (!ok || prev != par)
	c.dropForeign = inst == 0 && prev > par
	if cl := p.env.Changelog; cl != nil && cl.Name() != "" {
		p.clParts = cl.Partitions()
	}
	p.log.Info("dedup state restored", slog.Int("ids", t.live), slog.Int("keys_read", loaded),
		slog.Int("parallelism", par), slog.Int("previous_parallelism", prev))
	return nil
}

// Snapshot writes what changed since the last committed checkpoint: the ids
// inserted, and one DeleteRange for the buckets that expired. After a
// restore with another parallelism, or when the change log grew larger
// than the set itself, it rewrites the instance's ids instead.
func (p *Processor) Snapshot(ctx context.Context, w runtime.StateWriter) error {
	c := &p.ck
	g, inst := p.d.gran, uint32(p.env.Instance)
	p.mu.Lock()
	floor := p.tab.floor
	clog := p.clog
	p.clog = nil
	if len(clog) > 0 {
		// The ids this instance took in since the last snapshot, to the
		// changelog partition of their events.
		var k [16]byte
		for _, e := range clog {
			binary.BigEndian.PutUint64(k[:8], uint64(e.exp*g))
			binary.BigEndian.PutUint64(k[8:], e.fp)
			p.env.Changelog.Append(p.env.Node, e.part, k[:], clPresent)
		}
	}
	full := p.full || c.pendingFull
	var err error
	if full {
		// The cut is the table itself: write it while Process waits.
		p.full = false
		p.delta = p.delta[:0]
		err = p.writeAllLocked(w, inst)
		p.mu.Unlock()
		c.pending = c.pending[:0]
		c.pendingFull = true
	} else {
		d := p.delta
		p.delta, p.free = p.free[:0], nil
		p.mu.Unlock()
		if len(c.pending) == 0 {
			c.pending = d
		} else {
			c.pending = append(c.pending, d...)
		}
	}
	c.pendingBytes.Store(int64(cap(c.pending)) * entryBytes)
	if err != nil {
		return err
	}
	if c.metaDirty {
		meta := binary.BigEndian.AppendUint32([]byte{stateVersion}, uint32(max(1, p.env.Parallelism)))
		if err := w.Set(metaKey, meta); err != nil {
			return fmt.Errorf("dedup: snapshot: %w", err)
		}
	}
	if c.dropForeign {
		par := uint32(max(1, p.env.Parallelism))
		if err := w.DeleteRange(instPrefix(par), []byte{prefixIDs + 1}); err != nil {
			return fmt.Errorf("dedup: snapshot: %w", err)
		}
		if err := w.DeleteRange(floorKey(par), []byte{prefixFloor + 1}); err != nil {
			return fmt.Errorf("dedup: snapshot: %w", err)
		}
	}
	upTo := floor*g + 1
	if upTo > c.deleted {
		if !full {
			if err := w.DeleteRange(instPrefix(inst), c.keys.idKey(inst, upTo, 0)); err != nil {
				return fmt.Errorf("dedup: snapshot: %w", err)
			}
		}
		if err := w.Set(floorKey(inst), binary.BigEndian.AppendUint64(nil, uint64(floor*g))); err != nil {
			return fmt.Errorf("dedup: snapshot: %w", err)
		}
	}
	c.deleting = upTo
	for i, e := range c.pending {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if e.exp <= floor {
			continue
		}
		if err := w.Set(c.keys.idKey(inst, e.exp*g, e.fp), nil); err != nil {
			return fmt.Errorf("dedup: snapshot: %w", err)
		}
	}
	c.keys = keyArena{}
	return nil
}

// clPresent is the value of an id's changelog record.
var clPresent = []byte{1}

var _ runtime.ChangelogImporter = (*Processor)(nil)

// ImportChangelog implements runtime.ChangelogImporter: the ids of a
// partition this process gained (key: expiry and fingerprint, 8 bytes
// big-endian each) join the table, unless expired; the next checkpoint
// writes them to the local store. Ids of partitions that left stay until
// they expire: they only drop copies of events this process no longer
// receives (they count toward max_ids). With several instances every
// instance takes every id, since which one owns an id is not known from
// its fingerprint.
func (p *Processor) ImportChangelog(recs []runtime.ChangelogRecord) error {
	g := p.d.gran
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.tab
	if f := p.now() / g; f > t.floor {
		t.advance(f)
	}
	for _, r := range recs {
		if len(r.Key) != 16 || r.Value == nil {
			continue
		}
		exp := int64(binary.BigEndian.Uint64(r.Key[:8]))
		fp := binary.BigEndian.Uint64(r.Key[8:])
		e := exp / g
		if exp%g != 0 {
			e++
		}
		if e <= t.floor {
			continue // expired
		}
		e = min(e, t.floor+maxSpan)
		if held, label := t.put(fp, e); !held && p.persist && !p.full {
			p.delta = append(p.delta, entry{fp, label})
		}
	}
	return nil
}

// writeAllLocked replaces the instance's ids in the store with the table's.
func (p *Processor) writeAllLocked(w runtime.StateWriter, inst uint32) error {
	if err := w.DeleteRange(instPrefix(inst), instPrefix(inst+1)); err != nil {
		return fmt.Errorf("dedup: snapshot: %w", err)
	}
	g := p.d.gran
	err := p.tab.each(func(fp uint64, e int64) error {
		return w.Set(p.ck.keys.idKey(inst, e*g, fp), nil)
	})
	if err != nil {
		return fmt.Errorf("dedup: snapshot: %w", err)
	}
	return nil
}

// Committed forgets the changes the durable checkpoint holds.
func (p *Processor) Committed(context.Context, uint64) error {
	c := &p.ck
	c.deleted = c.deleting
	c.pendingFull, c.metaDirty, c.dropForeign = false, false, false
	recycled := c.pending[:0]
	c.pending = nil
	c.pendingBytes.Store(0)
	p.mu.Lock()
	if p.free == nil && cap(recycled) <= maxRecycled {
		p.free = recycled
	}
	p.mu.Unlock()
	return nil
}

// maxRecycled bounds the change log kept for reuse after a burst.
const maxRecycled = 1 << 20
