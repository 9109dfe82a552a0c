package dedup

import (
	"math/bits"
	"unsafe"
)

// Labels. Time is cut into buckets of equal width (Dedup.gran); bucket n
// covers [n*gran, (n+1)*gran). An id's expiry label is the number of the
// bucket at whose start it expires. The table's floor is the label of the
// current bucket: an entry whose label is <= floor has expired.
//
// Entries store only the low 16 bits of their label. Every label in the
// table lies within (floor-passMax-3*maxSpan, floor+maxSpan], fewer than
// 2^16 labels, so the stored bits decode without ambiguity relative to the
// floor:
//   - live entries have labels in (floor, floor+maxSpan] (the longest ttl
//     spans fewer than maxSpan buckets, see bucketWidth);
//   - expired entries are cleared by the sweeper, which completes a pass
//     over the table within passMax/2+maxSpan labels of floor movement, so
//     an expired entry stays at most two passes; the floor moves at most
//     maxSpan labels in one step (a longer step expires everything and
//     clears the table).
const (
	maxSpan = 8192
	passMax = 8192
	nLabels = 1 << 16
)

// Slots. A slot is one uint64: the low 48 bits of the fingerprint (the tag,
// never 0) above the 16-bit label; 0 is an empty slot. A group is one
// 64-byte cache line: seven slots and the group's overflow bookkeeping.
const (
	lanes    = 7
	tagBits  = 48
	tagMask  = 1<<tagBits - 1
	labBits  = 16
	slotTag  = ^uint64(1<<labBits - 1)
	minLog   = 64 - tagBits // fewest groups, as a power of two: see fpOf
	maxLoad  = 0.6          // live ids per slot at which the table doubles
	maxKicks = 64           // relocations of one insertion before growing
)

type group struct {
	slot [lanes]uint64
	// ovf counts entries whose first group is this one but that live in
	// their second group; while it is 0 a lookup reads only this line.
	ovf uint32
	// sec has a bit per lane whose entry is in its second group.
	sec uint8
	// next is the lane the group's oldest first-group entry was written
	// to, where the next one goes if it is free: slots are filled in turn,
	// so it is usually the one that expired first.
	next uint8
	_    [2]byte
}

const groupBytes = int(unsafe.Sizeof(group{}))

// table is a set of 64-bit fingerprints, each with an expiry label. A
// fingerprint's first group is given by its high bits; its second group is
// the first XOR a hash of its tag, so either can be computed from the other
// and the tag (two-choice hashing with relocation, as in cuckoo hashing).
// An id goes to its first group when that has a free slot, so most lookups
// read one cache line. The group index and the tag together give back the
// whole fingerprint. The table doubles when maxLoad of its slots hold live
// ids: below that, 98% of insertions at a load of 1/3 and 64% at 2/3 take
// the one-line path.
//
// Expiry is O(1): advancing the floor makes every entry with an older label
// a free slot; live counts per label say how many ids that released, and
// nothing is moved. One tenant's long ttl leaves its own labels in the
// table and costs the others nothing. A table is used by one goroutine at a
// time (Processor.mu).
type table struct {
	groups []group
	shift  uint   // 64 - log2(len(groups))
	mask   uint64 // len(groups) - 1
	limit  int    // live ids at which the table doubles
	live   int    // entries with a label above the floor
	// maxLive is max_ids: inserting beyond it expires the bucket closest
	// to expiry first. evicted counts the ids that expired early.
	maxLive int
	evicted uint64

	floor   int64 // absolute label; see above
	counts  []uint32
	buckets int // labels with live ids

	sweep     int   // next group the sweeper clears
	sweepDue  int   // groups the sweeper owes, times passMax/2
	passStart int64 // floor when the current sweep pass began
	kick      uint  // rotates the lane relocations start from
}

// newTable returns an empty table with room for n ids, floor as its floor,
// and no bound on the ids it holds.
func newTable(n int, floor int64) *table {
	t := &table{counts: make([]uint32, nLabels), floor: floor, passStart: floor, maxLive: maxMaxIDs}
	t.alloc(logFor(n))
	return t
}

// logFor returns log2 of the number of groups that hold n ids below
// maxLoad.
func logFor(n int) uint {
	l := uint(minLog)
	for float64(n) >= maxLoad*float64(uint64(lanes)<<l) {
		l++
	}
	return l
}

func (t *table) alloc(log uint) {
	t.groups = make([]group, 1<<log)
	adviseHugePages(t.groups)
	t.shift, t.mask = 64-log, 1<<log-1
	t.limit = int(maxLoad * float64(len(t.groups)*lanes))
	t.sweep, t.sweepDue = 0, 0
	t.passStart = t.floor
}

// other returns the other group of a tag in group gi.
func (t *table) other(gi, tag uint64) uint64 {
	return gi ^ ((tag*0x9e3779b97f4a7c15)>>29&t.mask | 1)
}

// fpOf returns the fingerprint of the entry in slot s of group gi: the
// first group gives its top bits, the tag its low 48 (they overlap when
// there are more than 2^16 groups).
func (t *table) fpOf(gi uint64, s uint64, sec bool) uint64 {
	tag := s >> labBits
	if sec {
		gi = t.other(gi, tag)
	}
	return gi<<t.shift | tag
}

// alive reports whether a stored label is above the floor.
func alive(s uint64, floor16 uint16) bool {
	return uint16(s)-floor16-1 < maxSpan
}

// freeLanes returns a bit per lane of g that is free (empty, or holding an
// expired entry), and those of them that hold no second-group entry.
func freeLanes(g *group, f16 uint16) (free, cheap uint) {
	_, free = scan(g, 1, f16) // tag 1 never matches: scan wants a shifted tag
	return free, free &^ uint(g.sec)
}

// pick returns the free lane to use: one whose old entry needs no
// bookkeeping elsewhere, if any.
func pick(free, cheap uint) int {
	if cheap != 0 {
		return bits.TrailingZeros(cheap)
	}
	return bits.TrailingZeros(free)
}

// abs returns the absolute label of a live entry's stored label.
func (t *table) abs(s uint64) int64 { return t.floor + int64(uint16(s)-uint16(t.floor)) }

// memoryBytes is the memory the table holds.
func (t *table) memoryBytes() int {
	return len(t.groups)*groupBytes + len(t.counts)*4
}

// put adds fp (whose tag is not 0) with expiry label e (floor < e <=
// floor+maxSpan) unless it is held, and reports whether it was held. An
// expired entry of fp is given the new label. Adding an id beyond maxLive
// first expires the bucket closest to expiry, which may move the floor past
// e: the label used is then floor+1, and put returns it.
//
// The common case — absent, no overflow, the group's next lane free — reads
// one cache line and takes only branches that are predicted right, so the
// processor can start the next event's memory access before this one's
// line arrives (one access to DRAM takes about 170 ns on the reference
// machine). Searching the line for a free slot, with branches or with bit
// arithmetic, made every event wait for the previous one's access.
func (t *table) put(fp uint64, e int64) (held bool, label int64) {
	if t.live >= t.maxLive || t.live >= t.limit {
		return t.putSlow(fp, e)
	}
	want := (fp & tagMask) << labBits
	a := &t.groups[fp>>t.shift]
	for i := range lanes {
		if a.slot[i]&slotTag == want && a.sec&(1<<i) == 0 {
			return t.rearm(a, i, e)
		}
	}
	if a.ovf != 0 {
		return t.putSlow(fp, e)
	}
	// The lane after the last one written is usually free (and then the
	// branch is predicted right); a free slot that held a second-group
	// entry needs bookkeeping elsewhere: the slow path does it.
	i := a.next % lanes
	if s := a.slot[i]; (s == 0 || !alive(s, uint16(t.floor))) && a.sec&(1<<i) == 0 {
		a.slot[i] = want | uint64(uint16(e))
		a.next = nextLane[i]
		t.addLive(e)
		return false, e
	}
	return t.putSlow(fp, e)
}

var nextLane = [lanes]uint8{1, 2, 3, 4, 5, 6, 0}

// scan returns a bit per lane of g whose tag is want's, and a bit per free
// lane (empty, or holding an expired entry).
func scan(g *group, want uint64, f16 uint16) (match, free uint) {
	for i := range lanes {
		s := g.slot[i]
		if s&slotTag == want {
			match |= 1 << i
		}
		if s == 0 || !alive(s, f16) {
			free |= 1 << i
		}
	}
	return match, free
}

// putSlow is put for the other cases: a second group to look at, no room
// in the first group, early expiry or growth due.
func (t *table) putSlow(fp uint64, e int64) (bool, int64) {
	tag := fp & tagMask
	want := tag << labBits
	h1 := fp >> t.shift
	a := &t.groups[h1]
	f16 := uint16(t.floor)
	if match, _ := scan(a, want, f16); match&^uint(a.sec) != 0 {
		return t.rearm(a, bits.TrailingZeros(match&^uint(a.sec)), e)
	}
	if a.ovf != 0 {
		b := &t.groups[t.other(h1, tag)]
		if match, _ := scan(b, want, f16); match&uint(b.sec) != 0 {
			return t.rearm(b, bits.TrailingZeros(match&uint(b.sec)), e)
		}
	}
	if t.live >= t.maxLive {
		t.evictOldest()
		e = max(e, t.floor+1)
	}
	if t.live >= t.limit {
		t.resize(uint(64-t.shift) + 1)
	}
	t.insert(fp, want|uint64(uint16(e)))
	t.addLive(e)
	return false, e
}

// rearm handles fp found in lane i of g: held if alive, else given label e
// (or floor+1, see put).
func (t *table) rearm(g *group, i int, e int64) (bool, int64) {
	if alive(g.slot[i], uint16(t.floor)) {
		return true, 0
	}
	if t.live >= t.maxLive {
		t.evictOldest() // expired entries are untouched by it
		e = max(e, t.floor+1)
	}
	g.slot[i] = g.slot[i]&slotTag | uint64(uint16(e))
	t.addLive(e)
	return false, e
}

// evictOldest expires the bucket closest to expiry now.
func (t *table) evictOldest() {
	if l, ok := t.oldest(); ok {
		t.evicted += uint64(t.advance(l))
	}
}

// insert stores slot s of fingerprint fp, known to be absent: in its first
// group if that has a free slot, else in its second, else by relocating
// entries; it grows the table if that fails.
func (t *table) insert(fp, s uint64) {
	for {
		h1 := fp >> t.shift
		f16 := uint16(t.floor)
		if free, cheap := freeLanes(&t.groups[h1], f16); free != 0 {
			t.store(h1, pick(free, cheap), s, false)
			return
		}
		h2 := t.other(h1, s>>labBits)
		if free, cheap := freeLanes(&t.groups[h2], f16); free != 0 {
			t.store(h2, pick(free, cheap), s, true)
			t.groups[h1].ovf++
			return
		}
		var ok bool
		if fp, s, ok = t.relocate(h1, s); ok {
			return
		}
		// One entry is left without a slot: grow, and place it after.
		t.resize(uint(64-t.shift) + 1)
	}
}

// store puts slot s in lane i of group gi, as a second-group entry if sec,
// replacing a free (empty or expired) slot.
func (t *table) store(gi uint64, i int, s uint64, sec bool) {
	g := &t.groups[gi]
	bit := uint8(1) << i
	if g.sec&bit != 0 {
		// The expired entry there counted in its first group's ovf.
		t.groups[t.other(gi, g.slot[i]>>labBits)].ovf--
	}
	g.slot[i] = s
	if sec {
		g.sec |= bit
	} else {
		g.sec &^= bit
		if s != 0 {
			g.next = nextLane[i]
		}
	}
}

// relocate places s, whose first group h1 and second group are both full,
// by moving a live entry of h1 to its other group, and so on, up to
// maxKicks times (a random walk). It returns false and the entry still
// without a slot when it gives up; every other entry is then in a valid
// slot.
func (t *table) relocate(h1, s uint64) (uint64, uint64, bool) {
	f16 := uint16(t.floor)
	gi, sec := h1, false
	for range maxKicks {
		t.kick++
		i := int(t.kick % lanes)
		g := &t.groups[gi]
		bit := uint8(1) << i
		// Swap s in; the victim moves to its other group.
		victim, vsec := g.slot[i], g.sec&bit != 0
		g.slot[i] = s
		if sec {
			g.sec |= bit
		} else {
			g.sec &^= bit
		}
		dst := t.other(gi, victim>>labBits)
		if vsec {
			t.groups[dst].ovf-- // back to its first group
		} else {
			g.ovf++ // gi is its first group
		}
		s, sec, gi = victim, !vsec, dst
		if free, cheap := freeLanes(&t.groups[gi], f16); free != 0 {
			t.store(gi, pick(free, cheap), s, sec)
			return 0, 0, true
		}
	}
	// s is homeless: undo its bookkeeping so that the caller re-inserts it
	// as a new entry, and return its fingerprint.
	fp := t.fpOf(gi, s, sec)
	if sec {
		t.groups[fp>>t.shift].ovf--
	}
	return fp, s, false
}

// find returns the group and lane of fp if it is held.
func (t *table) find(fp uint64) (*group, int, bool) {
	tag := fp & tagMask
	want := tag << labBits
	h1 := fp >> t.shift
	f16 := uint16(t.floor)
	a := &t.groups[h1]
	for i := range lanes {
		if a.slot[i]&slotTag == want && a.sec&(1<<i) == 0 && alive(a.slot[i], f16) {
			return a, i, true
		}
	}
	if a.ovf != 0 {
		b := &t.groups[t.other(h1, tag)]
		for i := range lanes {
			if b.slot[i]&slotTag == want && b.sec&(1<<i) != 0 && alive(b.slot[i], f16) {
				return b, i, true
			}
		}
	}
	return nil, 0, false
}

// restore adds fp with expiry label e, keeping the later label when fp is
// already held.
func (t *table) restore(fp uint64, e int64) {
	if g, i, ok := t.find(fp); ok {
		if old := t.abs(g.slot[i]); e > old {
			t.dropLive(old)
			g.slot[i] = g.slot[i]&slotTag | uint64(uint16(e))
			t.addLive(e)
		}
		return
	}
	t.put(fp, e)
}

func (t *table) addLive(e int64) {
	t.live++
	c := &t.counts[uint16(e)]
	if *c == 0 {
		t.buckets++
	}
	*c++
}

func (t *table) dropLive(e int64) {
	t.live--
	c := &t.counts[uint16(e)]
	*c--
	if *c == 0 {
		t.buckets--
	}
}

// advance moves the floor to f (> floor) and returns how many ids expired.
func (t *table) advance(f int64) int {
	if f <= t.floor {
		return 0
	}
	before := t.live
	step := f - t.floor
	if step > maxSpan {
		// Every label in the table is at or below the new floor.
		t.floor = f
		clear(t.groups)
		clear(t.counts)
		t.live, t.buckets, t.sweep, t.sweepDue = 0, 0, 0, 0
		t.passStart = f
		return before
	}
	for l := t.floor + 1; l <= f; l++ {
		c := &t.counts[uint16(l)]
		if *c != 0 {
			t.live -= int(*c)
			t.buckets--
			*c = 0
		}
	}
	t.floor = f
	// The sweeper clears a pass's worth of groups every passMax/2 labels.
	t.sweepDue += int(step) * len(t.groups)
	n := t.sweepDue / (passMax / 2)
	t.sweepDue -= n * (passMax / 2)
	if f-t.passStart >= passMax/2 {
		n = len(t.groups) // finish the pass now
	}
	t.sweepGroups(n)
	return before - t.live
}

// sweepGroups clears the expired entries of the next n groups (at most to
// the end of the pass).
func (t *table) sweepGroups(n int) {
	f16 := uint16(t.floor)
	for ; n > 0; n-- {
		gi := uint64(t.sweep)
		g := &t.groups[gi]
		for i := range lanes {
			if s := g.slot[i]; s != 0 && !alive(s, f16) {
				t.store(gi, i, 0, false)
			}
		}
		t.sweep++
		if t.sweep == len(t.groups) {
			t.sweep, t.sweepDue, t.passStart = 0, 0, t.floor
			return
		}
	}
}

// oldest returns the smallest label with live ids, or false when none.
func (t *table) oldest() (int64, bool) {
	if t.live == 0 {
		return 0, false
	}
	for l := t.floor + 1; l <= t.floor+maxSpan; l++ {
		if t.counts[uint16(l)] != 0 {
			return l, true
		}
	}
	return 0, false
}

// resize copies the live entries into a table of 2^log groups.
func (t *table) resize(log uint) {
	old := t.groups
	oldShift := t.shift
	f16 := uint16(t.floor)
	t.alloc(log)
	for gi := range old {
		g := &old[gi]
		for i := range lanes {
			if s := g.slot[i]; s != 0 && alive(s, f16) {
				fp := fpOfIn(uint64(gi), s, g.sec&(1<<i) != 0, oldShift, uint64(len(old)-1))
				t.insert(fp, s)
			}
		}
	}
}

// fpOfIn is fpOf for a table of another size.
func fpOfIn(gi, s uint64, sec bool, shift uint, mask uint64) uint64 {
	o := table{shift: shift, mask: mask}
	return o.fpOf(gi, s, sec)
}

// each calls fn with the fingerprint and absolute label of every live
// entry.
func (t *table) each(fn func(fp uint64, e int64) error) error {
	f16 := uint16(t.floor)
	for gi := range t.groups {
		g := &t.groups[gi]
		for i := range lanes {
			if s := g.slot[i]; s != 0 && alive(s, f16) {
				if err := fn(t.fpOf(uint64(gi), s, g.sec&(1<<i) != 0), t.abs(s)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
