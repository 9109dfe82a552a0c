package window

import (
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/weir-dev/weir/internal/faults"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// State layout, per node (docs/format/state.md): every instance writes its
// own key range, prefixed by its index as 2 bytes big-endian:
//
//	<instance> 'm'                      → watermark, 8 bytes big-endian (two's complement)
//	<instance> 'w' <start 8 bytes> <key> → JSON {"end":…,"fired":…,"accs":[…]}
//
// A snapshot rewrites the instance's range in full. On restore every
// instance reads every range and keeps the windows whose key hashes to it,
// so the parallelism may change between runs; instance 0 deletes the ranges
// of instances that no longer exist at its first snapshot.

type savedWin struct {
	End   int64 `json:"end"`
	Fired bool  `json:"fired,omitempty"`
	Accs  []acc `json:"accs"`
}

func instPrefix(i int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(i)) }

// Snapshot implements runtime.Stateful. The first snapshot after a start
// rewrites the instance's range; later ones write the windows changed and
// delete the windows removed since the one before.
func (o *Op) Snapshot(_ context.Context, w runtime.StateWriter) error {
	p := instPrefix(o.env.Instance)
	if o.full {
		if err := w.DeleteRange(p, instPrefix(o.env.Instance+1)); err != nil {
			return err
		}
		if o.env.Instance == 0 {
			if err := w.DeleteRange(instPrefix(o.env.Parallelism), []byte{0xff, 0xff, 0xff}); err != nil {
				return err
			}
		}
	}
	if err := w.Set(append(p[:2:2], 'm'), binary.BigEndian.AppendUint64(nil, uint64(o.wm))); err != nil {
		return err
	}
	var key []byte
	save := func(k winKey, wd *win) error {
		faults.Point("window.snapshot")
		key = append(binary.BigEndian.AppendUint64(append(append(key[:0], p...), 'w'), uint64(k.start)), k.key...)
		if wd == nil {
			return w.Delete(key)
		}
		wd.listed = false
		v, err := json.Marshal(savedWin{End: wd.end, Fired: wd.fired, Accs: wd.accs})
		if err != nil {
			return err
		}
		return w.Set(key, v)
	}
	if o.full {
		for k, wd := range o.wins {
			if err := save(k, wd); err != nil {
				return err
			}
		}
	} else {
		for _, k := range o.touched {
			if err := save(k, o.wins[k]); err != nil {
				return err
			}
		}
	}
	clear(o.touched)
	o.touched, o.full = o.touched[:0], false
	return nil
}

// Restore implements runtime.Stateful.
func (o *Op) Restore(_ context.Context, r runtime.StateReader) error {
	wm := int64(event.NoWatermark)
	err := r.Scan(nil, nil, func(k, v []byte) error {
		if len(k) < 3 {
			return fmt.Errorf("window state: short key %x", k)
		}
		switch k[2] {
		case 'm':
			if len(v) != 8 {
				return fmt.Errorf("window state: watermark of %d bytes", len(v))
			}
			if m := int64(binary.BigEndian.Uint64(v)); wm == event.NoWatermark || m < wm {
				wm = m
			}
		case 'w':
			if len(k) < 11 {
				return fmt.Errorf("window state: short window key %x", k)
			}
			start := int64(binary.BigEndian.Uint64(k[3:11]))
			key := string(k[11:])
			if o.keyed && runtime.KeyHash([]byte(key))%uint64(max(o.env.Parallelism, 1)) != uint64(o.env.Instance) {
				return nil
			}
			if !o.keyed && o.env.Instance != 0 {
				return nil
			}
			var sw savedWin
			if err := json.Unmarshal(v, &sw); err != nil {
				return fmt.Errorf("window state: window %q at %d: %w", key, start, err)
			}
			if len(sw.Accs) != len(o.w.aggs) {
				return fmt.Errorf("window state: window %q has %d aggregates, the config %d: the aggregates changed; move the state directory aside to start over", key, len(sw.Accs), len(o.w.aggs))
			}
			wd := &win{end: sw.End, fired: sw.Fired, accs: sw.Accs}
			o.wins[winKey{key, start}] = wd
			o.open.Inc()
			at, purge := wd.end-1, false
			if wd.fired {
				at, purge = wd.end-1+o.w.allowedLateness, true
			}
			heap.Push(&o.timers, timer{at: at, key: key, start: start, purge: purge})
			if o.w.kind == session {
				o.sessions[key] = insertSorted(o.sessions[key], start)
			}
		default:
			return fmt.Errorf("window state: unknown key %x", k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	o.restored = wm
	if wm > o.wm {
		o.wm, o.clock = wm, wm
	}
	return nil
}

func insertSorted(ss []int64, v int64) []int64 {
	i := 0
	for i < len(ss) && ss[i] < v {
		i++
	}
	ss = append(ss, 0)
	copy(ss[i+1:], ss[i:])
	ss[i] = v
	return ss
}

// Committed implements runtime.Stateful.
func (o *Op) Committed(context.Context, uint64) error { return nil }
