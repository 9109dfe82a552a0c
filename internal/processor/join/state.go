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
//	<instance> 'e' <side> <seq 8 bytes>  → uvarint key length, key,
//	                                       varint time, varint window start,
//	                                       the event's value
//
// A snapshot rewrites the instance's range.

// Snapshot implements runtime.Stateful.
func (o *Op) Snapshot(_ context.Context, w runtime.StateWriter) error {
	if err := o.rng.Clear(w); err != nil {
		return err
	}
	if err := o.rng.SaveWatermark(w, o.wm); err != nil {
		return err
	}
	var k, v []byte
	for b, sd := range o.state {
		for side := range sd.ev {
			for i := range sd.ev[side] {
				faults.Point("join.snapshot")
				s := &sd.ev[side][i]
				k = binary.BigEndian.AppendUint64(append(o.rng.Key(k[:0], 'e'), byte(side)), s.seq)
				v = binary.AppendUvarint(v[:0], uint64(len(b.key)))
				v = append(v, b.key...)
				v = binary.AppendVarint(v, s.t)
				v = binary.AppendVarint(v, s.start)
				v = append(v, s.value...)
				if err := w.Set(k, v); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Restore implements runtime.Stateful.
func (o *Op) Restore(_ context.Context, r runtime.StateReader) error {
	wm, err := opstate.Restore(r, "join", func(kind byte, k, v []byte) error {
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

// Committed implements runtime.Stateful.
func (o *Op) Committed(context.Context, uint64) error { return nil }
