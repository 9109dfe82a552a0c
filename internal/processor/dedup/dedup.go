package dedup

import (
	"bytes"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/runtime"
)

// Processor is one instance of a dedup node. Process runs on the stage's
// goroutine; Restore, Snapshot and Committed run on the checkpoint
// coordinator's, and the metrics collector on the scraper's. Use
// Dedup.New.
type Processor struct {
	d       *Dedup
	env     runtime.Env
	log     *slog.Logger
	now     func() int64 // Unix nanoseconds
	persist bool         // checkpoints are on: record what changes

	// Used by Process only.
	tenants  map[string]tenantInfo
	last     []byte // tenant of the previous event
	lastInfo tenantInfo
	haveLast bool
	kbuf     []byte // a key that is not a string, as JSON
	tbuf     []byte // likewise for the tenant
	logAfter int64  // earliest time of the next early-expiry log line
	unlogged int    // ids expired early since the last log line

	missing atomic.Uint64 // events passed on for want of a key

	// mu guards the fields below. In a pipeline it is taken once per batch
	// (BeginBatch to EndBatch); a Process call outside a batch takes it per
	// event. Per event it would cost 40 to 80 ns at 10 million ids, more
	// than in isolation: its locked instructions wait for the event's store
	// into a table line still arriving from memory, so the next event could
	// not start its own access early (see BenchmarkDedup10M). Snapshot holds
	// it only to swap the change log out.
	mu sync.Mutex
	// inBatch is set between BeginBatch and EndBatch (mu held); batchNow is
	// the clock read once for the batch.
	inBatch  bool
	batchNow int64

	tab   *table
	delta []entry // ids inserted since the last snapshot
	// clog are the ids inserted since the last snapshot with the partition
	// of their event, when the pipeline keeps a changelog (clParts
	// partitions, set by Restore; 0 without).
	clog    []clEntry
	clParts int32
	free    []entry // a recycled change log
	full    bool    // the next snapshot rewrites every id of the instance
	dups    [maxTenantLabels + 1]uint64

	ck ckState // used by Restore, Snapshot and Committed only
}

var (
	_ runtime.Processor = (*Processor)(nil)
	_ runtime.Stateful  = (*Processor)(nil)
)

// entry is an inserted id: its fingerprint and absolute expiry label.
type entry struct {
	fp  uint64
	exp int64
}

const entryBytes = 16

// clEntry is an inserted id with its event's partition, for a changelog.
type clEntry struct {
	entry
	part int32
}

const clEntryBytes = 24

type tenantInfo struct {
	ttl   int64  // nanoseconds
	label int    // index in the node's tenant labels
	hash  uint64 // tenantHash
}

// maxCachedTenants bounds the per-instance cache of tenant settings.
const maxCachedTenants = 4096

// logEvery is the least time between two log lines about early expiry.
const logEvery = 10 * time.Second

// New returns the processor for instance env.Instance, on the system
// clock. It is a *Processor.
func (d *Dedup) New(env runtime.Env) (runtime.Processor, error) {
	p, err := d.newProcessor(env, systemClock())
	if err != nil {
		return nil, err
	}
	return p, nil
}

// systemClock reads the monotonic clock, anchored to the wall clock once:
// one clock read per event instead of two, and no jumps when the wall clock
// is set.
func systemClock() func() int64 {
	base := time.Now()
	wall := base.UnixNano()
	return func() int64 { return wall + int64(time.Since(base)) }
}

func (d *Dedup) newProcessor(env runtime.Env, now func() int64) (*Processor, error) {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Processor{
		d:       d,
		env:     env,
		log:     log.With(slog.Int("instance", env.Instance)),
		now:     now,
		persist: env.Checkpointing,
		tenants: map[string]tenantInfo{},
	}
	p.tab = newTable(0, now()/d.gran)
	p.tab.maxLive = d.maxIDs
	if env.Registerer != nil {
		if err := register(env.Registerer, p); err != nil {
			return nil, err
		}
	}
	if !env.Checkpointing && env.Instance == 0 {
		p.log.Warn("dedup state is held in memory only: without checkpoints, a restart forgets every id and lets duplicates of earlier events through")
	}
	return p, nil
}

// Process passes the event unless its id was seen within its tenant's ttl.
func (p *Processor) Process(r *runtime.Record) (bool, error) {
	kv, err := p.d.key.Eval(r)
	if err != nil {
		return false, err
	}
	key := idBytes(&p.kbuf, kv)
	if len(key) == 0 {
		p.missing.Add(1)
		return true, nil
	}
	tv, err := p.d.tenant.Eval(r)
	if err != nil {
		return false, err
	}
	tenant := idBytes(&p.tbuf, tv)
	info := p.tenantInfo(tenant)
	now := p.batchNow
	if !p.inBatch {
		now = p.now()
	}
	part := int32(-1)
	if p.clParts > 0 {
		part = runtime.KafkaPartition(r.Key(), p.clParts)
	}
	held := p.check(fingerprint(info.hash, key), info, now, part)
	return !held, nil
}

// BeginBatch takes the lock for the batch and reads the clock once
// (runtime.BatchAware). The runtime's clock argument is not used: ids are
// timed on the processor's own monotonic clock.
func (p *Processor) BeginBatch(int64) {
	p.mu.Lock()
	p.inBatch, p.batchNow = true, p.now()
}

// EndBatch releases the lock taken by BeginBatch.
func (p *Processor) EndBatch() {
	p.inBatch = false
	p.mu.Unlock()
}

// idBytes returns the bytes of an id: a string's content, other values as
// JSON, nil for missing and null.
func idBytes(buf *[]byte, v jsondoc.Value) []byte {
	switch v.Kind {
	case jsondoc.Missing, jsondoc.Null:
		return nil
	case jsondoc.String:
		return v.S
	case jsondoc.Int:
		*buf = strconv.AppendInt((*buf)[:0], v.I, 10)
	default:
		*buf = jsondoc.AppendValue((*buf)[:0], v)
	}
	return *buf
}

// fingerprint is the 64-bit id of (tenant, key): XXH64 (seed 0) of the
// key, XOR the tenant's hash (see tenantHash), with the lowest bit set
// when the low 48 bits are all 0 (the table reserves that tag). It is part
// of the state format: it must not change.
//
// The key is hashed where it lies. Copying tenant and key into one buffer
// and hashing that was slower by more than a memory access: reading back
// bytes just written in pieces stalls until the writes retire, which waits
// for the previous event's table access.
func fingerprint(tenantHash uint64, key []byte) uint64 {
	fp := xxhash.Sum64(key) ^ tenantHash
	if fp&tagMask == 0 {
		fp |= 1
	}
	return fp
}

// tenantHash is XXH64 (seed 0) of the tenant through the SplitMix64
// finalizer, a bijection that keeps (tenant a, key b) and (tenant b, key a)
// apart.
func tenantHash(tenant []byte) uint64 {
	x := xxhash.Sum64(tenant)
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// tenantInfo returns the ttl and metrics label of a tenant.
func (p *Processor) tenantInfo(tenant []byte) tenantInfo {
	if p.haveLast && bytes.Equal(tenant, p.last) {
		return p.lastInfo
	}
	info, ok := p.tenants[string(tenant)]
	if !ok {
		info.ttl = p.d.ttl
		if ttl, ok := p.d.byTenant[string(tenant)]; ok {
			info.ttl = ttl
		}
		info.label = p.d.labels.index(tenant)
		info.hash = tenantHash(tenant)
		if len(p.tenants) < maxCachedTenants {
			p.tenants[string(tenant)] = info
		}
	}
	p.last = append(p.last[:0], tenant...)
	p.lastInfo, p.haveLast = info, true
	return info
}

// check looks fp up at time now and inserts it when it is not held. It
// reports whether it was held.
func (p *Processor) check(fp uint64, info tenantInfo, now int64, part int32) bool {
	g := p.d.gran
	locked := !p.inBatch
	if locked {
		p.mu.Lock()
	}
	t := p.tab
	if f := now / g; f > t.floor {
		t.advance(f)
	}
	evictedBefore := t.evicted
	held, e := t.put(fp, max((now+info.ttl)/g+1, t.floor+1))
	evicted := int(t.evicted - evictedBefore)
	if !held && part >= 0 {
		p.clog = append(p.clog, clEntry{entry{fp, e}, part})
	}
	if held {
		p.dups[info.label]++
	} else if p.persist && !p.full {
		p.delta = append(p.delta, entry{fp, e})
		if len(p.delta) > 2*t.live+minFullRewrite {
			// Rewriting the instance's ids is now cheaper than the log.
			p.full, p.delta = true, p.delta[:0]
		}
	}
	if locked {
		p.mu.Unlock()
	}
	if evicted > 0 {
		p.noteEviction(evicted, now)
	}
	return held
}

// minFullRewrite is the change log length below which a snapshot always
// writes the log rather than every id.
const minFullRewrite = 1 << 16

// noteEviction logs early expiry, at most once every logEvery.
func (p *Processor) noteEviction(n int, now int64) {
	p.unlogged += n
	if now < p.logAfter {
		return
	}
	p.log.Warn("dedup reached max_ids and forgot ids before their ttl: duplicates of them will pass",
		slog.Int("ids", p.unlogged), slog.Int("max_ids", p.d.maxIDs),
		slog.String("hint", "raise max_ids (each id takes 15 to 31 bytes) or shorten the ttl"))
	p.unlogged = 0
	p.logAfter = now + int64(logEvery)
}

// stats is what the metrics report about one instance.
type stats struct {
	held, memory int
	evicted      uint64
	missing      uint64
	dups         [maxTenantLabels + 1]uint64
	buckets      int64
}

func (p *Processor) stats() stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return stats{
		held:    p.tab.live,
		memory:  p.tab.memoryBytes() + (cap(p.delta)+cap(p.free))*entryBytes + cap(p.clog)*clEntryBytes + int(p.ck.pendingBytes.Load()),
		evicted: p.tab.evicted,
		missing: p.missing.Load(),
		dups:    p.dups,
		buckets: int64(p.tab.buckets),
	}
}
