package join

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/faults"
	"github.com/weir-dev/weir/internal/runtime"
)

// State layout, per node: every instance writes its own range, prefixed by
// its index as 2 bytes big-endian:
//
//	<instance> 'm'                       → watermark, 8 bytes big-endian
//	<instance> 'e' <side> <seq 8 bytes>  → uvarint key length, key,
//	                                       varint time, varint window start,
//	                                       the event's value
//
// A snapshot rewrites the instance's range; a restore reads every range and
// keeps the events whose key hashes to the instance.

func instPrefix(i int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(i)) }

// Snapshot implements runtime.Stateful.
func (o *Op) Snapshot(_ context.Context, w runtime.StateWriter) error {
	p := instPrefix(o.env.Instance)
	if err := w.DeleteRange(p, instPrefix(o.env.Instance+1)); err != nil {
		return err
	}
	if o.env.Instance == 0 {
		if err := w.DeleteRange(instPrefix(o.env.Parallelism), []byte{0xff, 0xff, 0xff}); err != nil {
			return err
		}
	}
	if err := w.Set(append(p[:2:2], 'm'), binary.BigEndian.AppendUint64(nil, uint64(o.wm))); err != nil {
		return err
	}
	var k, v []byte
	for b, sd := range o.state {
		for side := range sd.ev {
			for i := range sd.ev[side] {
				faults.Point("join.snapshot")
				s := &sd.ev[side][i]
				k = binary.BigEndian.AppendUint64(append(append(k[:0], p...), 'e', byte(side)), s.seq)
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
	wm := event.NoWatermark
	err := r.Scan(nil, nil, func(k, v []byte) error {
		if len(k) < 3 {
			return fmt.Errorf("join state: short key %x", k)
		}
		switch k[2] {
		case 'm':
			if len(v) != 8 {
				return fmt.Errorf("join state: watermark of %d bytes", len(v))
			}
			if m := int64(binary.BigEndian.Uint64(v)); wm == event.NoWatermark || m < wm {
				wm = m
			}
		case 'e':
			if len(k) != 12 || k[3] > 1 {
				return fmt.Errorf("join state: bad event key %x", k)
			}
			side := int(k[3])
			seq := binary.BigEndian.Uint64(k[4:])
			n, m := binary.Uvarint(v)
			if m <= 0 || uint64(len(v)-m) < n {
				return fmt.Errorf("join state: event %x: bad key length", k)
			}
			key := string(v[m : m+int(n)])
			rest := v[m+int(n):]
			t, m1 := binary.Varint(rest)
			if m1 <= 0 {
				return fmt.Errorf("join state: event %x: bad time", k)
			}
			start, m2 := binary.Varint(rest[m1:])
			if m2 <= 0 {
				return fmt.Errorf("join state: event %x: bad window start", k)
			}
			if o.keyed && runtime.KeyHash([]byte(key))%uint64(max(o.env.Parallelism, 1)) != uint64(o.env.Instance) {
				return nil
			}
			if !o.keyed && o.env.Instance != 0 {
				return nil
			}
			s := stored{t: t, start: start, value: append([]byte(nil), rest[m1+m2:]...), seq: seq}
			o.seq = max(o.seq, seq+1)
			b := bucket{key: key, start: start}
			sd := o.state[b]
			if sd == nil {
				sd = &sides{}
				o.state[b] = sd
				if o.j.mode == tumbling {
					heap.Push(&o.expiries, expiry{at: start + o.j.size - 1, bucket: b})
				}
			}
			sd.ev[side] = append(sd.ev[side], s)
			o.held.Inc()
			if o.j.mode == interval {
				at := t + o.j.upper
				if side == 1 {
					at = t - o.j.lower
				}
				heap.Push(&o.expiries, expiry{at: at, bucket: b})
			}
		default:
			return fmt.Errorf("join state: unknown key %x", k)
		}
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
