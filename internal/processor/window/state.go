package window

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/faults"
	"github.com/weir-dev/weir/internal/processor/opstate"
	"github.com/weir-dev/weir/internal/runtime"
)

// State layout, per node, in the operators' shared layout (opstate: an
// instance prefix, its watermark under 'm'):
//
//	<instance> 'W' <end 8> <start 8> <key>  → the window (codec.go)
//	<instance> 'e' → 8 bytes: no window of the instance in the store
//	                 ends later (absent: unknown)
//
// Times are nanoseconds, 8 bytes big-endian with the sign bit flipped, so
// that keys order by end, then start: the windows a watermark closes are
// one range scan from the start of the instance's windows. docs/format/
// state.md has the value format.
//
// The store is the state of the last checkpoint with the scratch over it
// (runtime.Scratch): the windows evicted from memory since. Memory (Op.wins)
// is a cache over both, bounded by cache_bytes; a window in memory is the
// latest version of it. A checkpoint writes the windows changed in memory
// (the store moves the scratch into it first), so a restart begins with
// memory empty and reads windows as events and the watermark reach them:
// nothing is read at a start but each instance's few records. Session
// windows stay in memory (merging looks up every session of a key) and
// are read at a start.

// Record kinds after the instance prefix.
const (
	kindWin    = 'W'
	kindMaxEnd = 'e'
	kindOldWin = 'w' // JSON windows ordered by start, before winFormat 1
)

const accSize = unsafe.Sizeof(acc{})

func appendTime(dst []byte, t int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(t)^1<<63)
}

func readTime(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ 1<<63) }

// winKeyAt appends the store key of a window of instance inst.
func winKeyAt(dst []byte, inst int, end, start int64, key string) []byte {
	dst = appendTime(appendTime(opstate.InstanceKey(dst, inst, kindWin), end), start)
	return append(dst, key...)
}

// parseWinKey splits a window's store key (instance prefix included).
func parseWinKey(k []byte) (end, start int64, key []byte, ok bool) {
	if len(k) < 19 || k[2] != kindWin {
		return 0, 0, nil, false
	}
	return readTime(k[3:]), readTime(k[11:]), k[19:], true
}

// endKey is the start of the range of this instance's windows ending at
// end or later; math.MaxInt64 stands for past every window.
func (o *Op) endKey(end int64) []byte {
	if end == math.MaxInt64 {
		return o.rng.Key(nil, kindWin+1)
	}
	return appendTime(o.rng.Key(nil, kindWin), end)
}

// unstore deletes the store's copy of wd, if any.
func (o *Op) unstore(wd *win) error {
	if !wd.stored || o.st == nil {
		return nil
	}
	wd.stored = false
	o.keyBuf = winKeyAt(o.keyBuf[:0], o.rng.Instance(), wd.sEnd, wd.sStart, wd.key)
	return o.st.Delete(o.keyBuf)
}

// store writes wd to the store (the scratch) if it changed.
func (o *Op) store(wd *win) error {
	if !wd.unsaved {
		return nil
	}
	o.keyBuf = winKeyAt(o.keyBuf[:0], o.rng.Instance(), wd.end, wd.start, wd.key)
	o.valBuf = encodeWin(o.valBuf[:0], wd)
	if err := o.st.Set(o.keyBuf, o.valBuf); err != nil {
		return err
	}
	o.stored(wd)
	return nil
}

// write writes wd's current version to w, deleting the copy stored under
// its former bounds (a session that grew).
func (o *Op) write(w runtime.StateWriter, wd *win) error {
	if wd.stored && (wd.sStart != wd.start || wd.sEnd != wd.end) {
		o.keyBuf = winKeyAt(o.keyBuf[:0], o.rng.Instance(), wd.sEnd, wd.sStart, wd.key)
		if err := w.Delete(o.keyBuf); err != nil {
			return err
		}
	}
	o.keyBuf = winKeyAt(o.keyBuf[:0], o.rng.Instance(), wd.end, wd.start, wd.key)
	o.valBuf = encodeWin(o.valBuf[:0], wd)
	return w.Set(o.keyBuf, o.valBuf)
}

// stored records that the store has wd's current version.
func (o *Op) stored(wd *win) {
	wd.unsaved, wd.stored, wd.sStart, wd.sEnd = false, true, wd.start, wd.end
	o.maxStored = max(o.maxStored, wd.end)
}

// load reads the window [start, end) of key from the store into memory;
// nil when the store has none.
func (o *Op) load(key string, start, end int64) (*win, error) {
	o.keyBuf = winKeyAt(o.keyBuf[:0], o.rng.Instance(), end, start, key)
	v, ok, err := o.st.Get(o.keyBuf)
	if err != nil || !ok {
		return nil, err
	}
	wd := &win{key: key, start: start, end: end, stored: true, sStart: start, sEnd: end}
	if err := decodeWin(v, len(o.w.aggs), wd); err != nil {
		return nil, fmt.Errorf("window state: window %q at %d: %w", key, start, err)
	}
	o.insert(wd)
	return wd, nil
}

// evict writes the windows used least recently to the store until memory
// is within the bound. Windows due have fired by now (evict runs after
// fireDue), so every evicted window is one the clock has not reached, or
// one waiting out its lateness. With early_fire, a window evicted with
// changes since its last result emits an early result first.
func (o *Op) evict(out *runtime.Collector) error {
	defer func() { o.cached.Set(float64(o.bytes)) }()
	if o.st == nil || o.w.kind == session {
		return nil
	}
	for o.bytes > o.limit && o.lru.prev != &o.lru {
		wd := o.lru.prev
		if o.w.earlyFire > 0 && wd.dirty && !wd.fired {
			o.emit(out, wd, false)
		}
		if err := o.store(wd); err != nil {
			return err
		}
		o.remove(wd)
		o.spilled.Inc()
	}
	return nil
}

var errStop = errors.New("stop")

// fireStored does for the windows in the store what fireDue does for
// those in memory: a scan of the range of ends the clock passed since the
// last one emits the windows not yet fired, and drops those past their
// lateness (a second scan, lateness behind, when there is lateness).
func (o *Op) fireStored(out *runtime.Collector) error {
	if o.st == nil || o.w.kind == session || o.clock == event.NoWatermark {
		return nil
	}
	lateness := o.w.allowedLateness
	// Windows with end-1 <= clock are due: ends below hi.
	hi := int64(math.MaxInt64)
	if o.clock < math.MaxInt64-2 {
		hi = o.clock + 2
	}
	if o.fireFrom < hi {
		err := o.st.Scan(o.endKey(o.fireFrom), o.endKey(hi), func(k, v []byte) error {
			end, start, key, ok := parseWinKey(k)
			if !ok {
				return fmt.Errorf("window state: bad key %x", k)
			}
			if o.wins[winKey{string(key), start}] != nil {
				return nil // in memory: fireDue has it
			}
			if len(v) < 2 {
				return fmt.Errorf("window state: window %q at %d: %w", key, start, errCorrupt)
			}
			purge := lateness == 0 || end-1+lateness <= o.clock
			if v[1]&flagFired == 0 {
				wd := &win{key: string(key), start: start, end: end}
				if err := decodeWin(v, len(o.w.aggs), wd); err != nil {
					return fmt.Errorf("window state: window %q at %d: %w", key, start, err)
				}
				o.emit(out, wd, true)
				if !purge {
					o.valBuf = append(o.valBuf[:0], v...)
					o.valBuf[1] = (o.valBuf[1] | flagFired) &^ flagDirty
					return o.st.Set(k, o.valBuf)
				}
			}
			if purge {
				return o.st.Delete(k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		o.fireFrom = hi
	}
	if lateness == 0 || o.clock < math.MinInt64+lateness+2 {
		return nil
	}
	if hi != math.MaxInt64 {
		hi = o.clock - lateness + 2 // end-1+lateness <= clock
	}
	if o.purgeFrom >= hi {
		return nil
	}
	err := o.st.Scan(o.endKey(o.purgeFrom), o.endKey(hi), func(k, _ []byte) error {
		_, start, key, ok := parseWinKey(k)
		if !ok {
			return fmt.Errorf("window state: bad key %x", k)
		}
		if o.wins[winKey{string(key), start}] != nil {
			return nil
		}
		return o.st.Delete(k)
	})
	o.purgeFrom = hi
	return err
}

// Snapshot implements runtime.Stateful: it writes the windows changed in
// memory since the last checkpoint (the store moves the scratch, the
// windows evicted and deleted since, into the checkpoint before these
// writes).
func (o *Op) Snapshot(_ context.Context, w runtime.StateWriter) error {
	if ms, ok := o.st.(*memScratch); ok {
		if err := ms.moveTo(w); err != nil {
			return err
		}
	}
	if err := o.rng.SaveWatermark(w, o.wm); err != nil {
		return err
	}
	for _, wd := range o.wins {
		if !wd.unsaved {
			continue
		}
		faults.Point("window.snapshot")
		if err := o.write(w, wd); err != nil {
			return err
		}
		o.stored(wd)
	}
	if o.maxStored != math.MinInt64 {
		return w.Set(o.rng.Key(nil, kindMaxEnd), appendTime(nil, o.maxStored))
	}
	return nil
}

// Restore implements runtime.Stateful. It reads each instance's watermark
// and nothing else (but session windows); when the parallelism changed
// since the checkpoint, it first moves every window to the instance that
// owns it now, through the scratch (the first instance to restore does it
// for all).
func (o *Op) Restore(_ context.Context, r runtime.StateReader) error {
	if so, ok := r.(runtime.ScratchOpener); ok {
		o.st = so.Scratch()
		o.limit = o.w.cacheBytes / int64(o.rng.Parallelism())
	} else {
		// A reader without scratch (tests): keep every window in memory
		// and read the reader on misses.
		ms := newMemScratch()
		ms.under = r
		o.st = ms
	}
	wms, err := o.instances()
	if err != nil {
		return err
	}
	if len(wms) == 0 {
		return nil
	}
	if len(wms) != o.rng.Parallelism() || wms[len(wms)-1].inst != len(wms)-1 {
		if err := o.rescale(wms); err != nil {
			return err
		}
	}
	wm := event.NoWatermark
	for _, m := range wms {
		if m.ok && (wm == event.NoWatermark || m.wm < wm) {
			wm = m.wm
		}
	}
	o.maxStored = math.MaxInt64
	v, ok, err := o.st.Get(o.rng.Key(nil, kindMaxEnd))
	if err != nil {
		return err
	}
	if ok && len(v) == 8 {
		o.maxStored = readTime(v)
	}
	o.restored = wm
	if wm > o.wm {
		o.wm, o.clock = wm, wm
	}
	if !o.w.processing && wm != event.NoWatermark {
		// Every window the watermark closed had fired, and those past
		// their lateness had gone, when the checkpoint was taken: the
		// scans need not walk what they left behind.
		o.fireFrom = satAdd(wm, 2)
		o.purgeFrom = satAdd(satAdd(wm, 2), -o.w.allowedLateness)
	}
	if o.w.kind == session {
		return o.loadSessions()
	}
	return nil
}

// satAdd adds without overflowing.
func satAdd(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}

type instMeta struct {
	inst int
	wm   int64
	ok   bool // has a watermark
}

// instances finds the instances that have records, seeking from one to
// the next, and reads their watermarks.
func (o *Op) instances() ([]instMeta, error) {
	var out []instMeta
	for next := 0; next <= math.MaxUint16; {
		found := -1
		err := o.st.Scan(opstate.InstanceKey(nil, next, 0)[:2], nil, func(k, _ []byte) error {
			found = opstate.Instance(k)
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, err
		}
		if found < 0 {
			break
		}
		m := instMeta{inst: found}
		v, ok, err := o.st.Get(opstate.InstanceKey(nil, found, 'm'))
		if err != nil {
			return nil, err
		}
		if ok && len(v) == 8 {
			m.wm, m.ok = int64(binary.BigEndian.Uint64(v)), true
		}
		err = o.st.Scan(opstate.InstanceKey(nil, found, kindOldWin), opstate.InstanceKey(nil, found, kindOldWin+1), func([]byte, []byte) error {
			return errors.New("window state: the state directory holds windows in the format of an older weir (JSON, by start); finish or drop it: move the state directory aside to start over")
		})
		if err != nil {
			return nil, err
		}
		out = append(out, m)
		next = found + 1
	}
	return out, nil
}

// rescale moves every window to the instance that owns it at the current
// parallelism and gives every instance the least watermark, all through
// the scratch: the next checkpoint makes it durable, a crash before
// forgets it.
func (o *Op) rescale(wms []instMeta) error {
	wm := event.NoWatermark
	for _, m := range wms {
		if m.ok && (wm == event.NoWatermark || m.wm < wm) {
			wm = m.wm
		}
	}
	var nk []byte
	for _, m := range wms {
		err := o.st.Scan(opstate.InstanceKey(nil, m.inst, kindWin), opstate.InstanceKey(nil, m.inst, kindWin+1), func(k, v []byte) error {
			end, start, key, ok := parseWinKey(k)
			if !ok {
				return fmt.Errorf("window state: bad key %x", k)
			}
			owner := o.rng.Owner(key)
			if owner == m.inst {
				return nil
			}
			nk = winKeyAt(nk[:0], owner, end, start, string(key))
			if err := o.st.Set(nk, v); err != nil {
				return err
			}
			return o.st.Delete(k)
		})
		if err != nil {
			return err
		}
		if err := o.st.Delete(opstate.InstanceKey(nil, m.inst, kindMaxEnd)); err != nil {
			return err
		}
		if m.inst >= o.rng.Parallelism() {
			if err := o.st.Delete(opstate.InstanceKey(nil, m.inst, 'm')); err != nil {
				return err
			}
		}
	}
	if wm == event.NoWatermark {
		return nil
	}
	for i := range o.rng.Parallelism() {
		if err := o.st.Set(opstate.InstanceKey(nil, i, 'm'), binary.BigEndian.AppendUint64(nil, uint64(wm))); err != nil {
			return err
		}
	}
	return nil
}

// loadSessions reads the instance's session windows into memory.
func (o *Op) loadSessions() error {
	return o.st.Scan(o.rng.Key(nil, kindWin), o.rng.Key(nil, kindWin+1), func(k, v []byte) error {
		end, start, key, ok := parseWinKey(k)
		if !ok {
			return fmt.Errorf("window state: bad key %x", k)
		}
		wd := &win{key: string(key), start: start, end: end, stored: true, sStart: start, sEnd: end}
		if err := decodeWin(v, len(o.w.aggs), wd); err != nil {
			return fmt.Errorf("window state: session %q at %d: %w", key, start, err)
		}
		o.insert(wd)
		o.sessions[wd.key] = insertSorted(o.sessions[wd.key], start)
		return nil
	})
}

func insertSorted(ss []int64, v int64) []int64 {
	i, _ := slices.BinarySearch(ss, v)
	return slices.Insert(ss, i, v)
}

// Committed implements runtime.Stateful.
func (o *Op) Committed(context.Context, uint64) error { return nil }

// memScratch stands in for the store's scratch when there is none: it
// keeps the writes in memory, over the reader given to Restore if any,
// until Snapshot writes them into the checkpoint.
type memScratch struct {
	under runtime.StateReader
	// ops are the writes: a nil value is a deletion.
	ops map[string][]byte
}

func newMemScratch() *memScratch { return &memScratch{ops: map[string][]byte{}} }

func (m *memScratch) Set(key, value []byte) error {
	m.ops[string(key)] = bytes.Clone(value)
	if m.ops[string(key)] == nil {
		m.ops[string(key)] = []byte{}
	}
	return nil
}

func (m *memScratch) Delete(key []byte) error {
	m.ops[string(key)] = nil
	return nil
}

func (m *memScratch) Get(key []byte) ([]byte, bool, error) {
	if v, ok := m.ops[string(key)]; ok {
		return v, v != nil, nil
	}
	if m.under == nil {
		return nil, false, nil
	}
	return m.under.Get(key)
}

func (m *memScratch) Scan(start, end []byte, fn func(key, value []byte) error) error {
	type kv struct{ k, v []byte }
	var all []kv
	if m.under != nil {
		err := m.under.Scan(start, end, func(k, v []byte) error {
			if _, ok := m.ops[string(k)]; !ok {
				all = append(all, kv{bytes.Clone(k), bytes.Clone(v)})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for k, v := range m.ops {
		if v != nil && k >= string(start) && (end == nil || k < string(end)) {
			all = append(all, kv{[]byte(k), v})
		}
	}
	slices.SortFunc(all, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	for _, e := range all {
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// moveTo writes the writes into a checkpoint and forgets them.
func (m *memScratch) moveTo(w runtime.StateWriter) error {
	for k, v := range m.ops {
		var err error
		if v == nil {
			err = w.Delete([]byte(k))
		} else {
			err = w.Set([]byte(k), v)
		}
		if err != nil {
			return err
		}
	}
	clear(m.ops)
	return nil
}
