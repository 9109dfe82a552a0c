package join

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/weir-dev/weir/internal/faults"
	"github.com/weir-dev/weir/internal/processor/opstate"
	"github.com/weir-dev/weir/internal/runtime"
)

// State layout, per node, in the operators' shared layout (opstate: an
// instance prefix, its watermark under 'm'):
//
//	<instance> 'E' <side> <seq 8 bytes> <key>  → varint time, varint window
//	                                             start, the event's value
//
// The first snapshot after a start rewrites the instance's range; later
// ones write the events taken in since the last one and delete those gone. Before, records were
//
//	<instance> 'e' <side> <seq 8 bytes>  → uvarint key length, key,
//	                                       varint time, varint window start,
//	                                       the event's value
//
// which Restore still reads.

// eventKey appends the state key of an event of key on side.
func (o *Op) eventKey(dst []byte, side int, seq uint64, key string) []byte {
	dst = binary.BigEndian.AppendUint64(append(o.rng.Key(dst, 'E'), byte(side)), seq)
	return append(dst, key...)
}

// eventValue appends the state value of s.
func eventValue(dst []byte, s *stored) []byte {
	dst = binary.AppendVarint(dst, s.t)
	dst = binary.AppendVarint(dst, s.start)
	return append(dst, s.value...)
}

// decodeEvent reads a record of the current layout: k after the kind byte.
func decodeEvent(k, v []byte) (side int, key []byte, s stored, err error) {
	if len(k) < 9 || k[0] > 1 {
		return 0, nil, s, fmt.Errorf("join state: bad event key %x", k)
	}
	side, s.seq, key = int(k[0]), binary.BigEndian.Uint64(k[1:9]), k[9:]
	t, m1 := binary.Varint(v)
	if m1 <= 0 {
		return 0, nil, s, fmt.Errorf("join state: event %x: bad time", k)
	}
	start, m2 := binary.Varint(v[m1:])
	if m2 <= 0 {
		return 0, nil, s, fmt.Errorf("join state: event %x: bad window start", k)
	}
	s.t, s.start, s.value = t, start, append([]byte(nil), v[m1+m2:]...)
	return side, key, s, nil
}

// Snapshot implements runtime.Stateful: the events taken in since the last
// checkpoint, and deletions of those that left; after a restore, the
// instance's whole range.
func (o *Op) Snapshot(_ context.Context, w runtime.StateWriter) error {
	if o.full {
		if err := o.rng.Clear(w); err != nil {
			return err
		}
	}
	if err := o.rng.SaveWatermark(w, o.wm); err != nil {
		return err
	}
	var k, v []byte
	if o.full {
		for b, sd := range o.state {
			for side := range sd.ev {
				for i := range sd.ev[side] {
					faults.Point("join.snapshot")
					s := &sd.ev[side][i]
					k = o.eventKey(k[:0], side, s.seq, b.key)
					v = eventValue(v[:0], s)
					if err := w.Set(k, v); err != nil {
						return err
					}
				}
			}
		}
		o.full = false
	} else {
		for i := range o.added {
			faults.Point("join.snapshot")
			a := &o.added[i]
			k = o.eventKey(k[:0], a.side, a.s.seq, a.b.key)
			v = eventValue(v[:0], &a.s)
			if err := w.Set(k, v); err != nil {
				return err
			}
		}
	}
	clear(o.added)
	o.added = o.added[:0]
	// After the writes: an event taken in and gone since is deleted.
	for _, g := range o.gone {
		if err := w.Delete(g); err != nil {
			return err
		}
	}
	o.gone = o.gone[:0]
	return nil
}

// Restore implements runtime.Stateful.
func (o *Op) Restore(_ context.Context, r runtime.StateReader) error {
	wm, err := opstate.Restore(r, "join", func(kind byte, k, v []byte) error {
		if kind == 'E' {
			side, key, s, err := decodeEvent(k, v)
			if err != nil {
				return err
			}
			if !o.rng.Owns(key) {
				return nil
			}
			o.seq = max(o.seq, s.seq+1)
			b := bucket{key: string(key), start: s.start}
			o.keep(o.bucket(b), b, side, s)
			return nil
		}
		if kind != 'e' || len(k) != 9 || k[0] > 1 {
			return fmt.Errorf("join state: bad event key %q %x", kind, k)
		}
		side := int(k[0])
		seq := binary.BigEndian.Uint64(k[1:])
		n, m := binary.Uvarint(v)
		if m <= 0 || uint64(len(v)-m) < n {
			return fmt.Errorf("join state: event %x: bad key length", k)
		}
		key := v[m : m+int(n)]
		rest := v[m+int(n):]
		t, m1 := binary.Varint(rest)
		if m1 <= 0 {
			return fmt.Errorf("join state: event %x: bad time", k)
		}
		start, m2 := binary.Varint(rest[m1:])
		if m2 <= 0 {
			return fmt.Errorf("join state: event %x: bad window start", k)
		}
		if !o.rng.Owns(key) {
			return nil
		}
		o.seq = max(o.seq, seq+1)
		b := bucket{key: string(key), start: start}
		o.keep(o.bucket(b), b, side, stored{t: t, start: start, value: append([]byte(nil), rest[m1+m2:]...), seq: seq})
		return nil
	})
	if err != nil {
		return err
	}
	// Pairs are formed in arrival order: keep each side in it.
	for _, sd := range o.state {
		for side := range sd.ev {
			slices.SortFunc(sd.ev[side], func(a, b stored) int { return cmp.Compare(a.seq, b.seq) })
		}
	}
	o.restored, o.wm = wm, max(o.wm, wm)
	return nil
}

var _ runtime.KeyedState = (*Op)(nil)

// EventKey implements runtime.KeyedState.
func (o *Op) EventKey(stateKey []byte) ([]byte, bool) {
	if len(stateKey) < 12 || stateKey[2] != 'E' {
		return nil, false
	}
	return stateKey[12:], true
}

// Release implements runtime.KeyedState: every event held for the keys
// drop selects goes to w (a snapshot rewrites them all anyway), with the
// deletions of those gone since the last checkpoint, and the keys leave
// memory.
func (o *Op) Release(drop func(key []byte) bool, w runtime.StateWriter) error {
	var k, v []byte
	for b, sd := range o.state {
		if !drop([]byte(b.key)) {
			continue
		}
		for side := range sd.ev {
			for i := range sd.ev[side] {
				s := &sd.ev[side][i]
				k = o.eventKey(k[:0], side, s.seq, b.key)
				if err := w.Set(k, eventValue(v[:0], s)); err != nil {
					return err
				}
			}
			o.release(sd.ev[side])
		}
		delete(o.state, b)
	}
	kept := o.added[:0]
	for _, a := range o.added {
		if !drop([]byte(a.b.key)) {
			kept = append(kept, a)
		}
	}
	clear(o.added[len(kept):])
	o.added = kept
	keep := o.gone[:0]
	for _, g := range o.gone {
		if key, _ := o.EventKey(g); drop(key) {
			if err := w.Delete(g); err != nil {
				return err
			}
			continue
		}
		keep = append(keep, g)
	}
	o.gone = keep
	return nil
}

// Acquire implements runtime.KeyedState: the events of the keys accept
// selects are read from this instance's range, in arrival order.
func (o *Op) Acquire(accept func(key []byte) bool, r runtime.StateReader) error {
	touched := map[bucket]bool{}
	err := r.Scan(o.rng.Key(nil, 'E'), o.rng.Key(nil, 'E'+1), func(k, v []byte) error {
		side, key, s, err := decodeEvent(k[3:], v)
		if err != nil {
			return err
		}
		if !accept(key) {
			return nil
		}
		o.seq = max(o.seq, s.seq+1)
		b := bucket{key: string(key), start: s.start}
		o.keep(o.bucket(b), b, side, s)
		touched[b] = true
		return nil
	})
	for b := range touched {
		sd := o.state[b]
		for side := range sd.ev {
			slices.SortFunc(sd.ev[side], func(a, b stored) int { return cmp.Compare(a.seq, b.seq) })
		}
	}
	return err
}

// Committed implements runtime.Stateful.
func (o *Op) Committed(context.Context, uint64) error { return nil }
