package window

import (
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/weir-dev/weir/internal/faults"
	"github.com/weir-dev/weir/internal/processor/opstate"
	"github.com/weir-dev/weir/internal/runtime"
)

// State layout, per node, in the operators' shared layout (opstate: an
// instance prefix, its watermark under 'm'):
//
//	<instance> 'w' <start 8 bytes> <key> → JSON {"end":…,"fired":…,"accs":[…]}

type savedWin struct {
	End   int64 `json:"end"`
	Fired bool  `json:"fired,omitempty"`
	Accs  []acc `json:"accs"`
}

// Snapshot implements runtime.Stateful. The first snapshot after a start
// rewrites the instance's range; later ones write the windows changed and
// delete the windows removed since the one before.
func (o *Op) Snapshot(_ context.Context, w runtime.StateWriter) error {
	if o.full {
		if err := o.rng.Clear(w); err != nil {
			return err
		}
	}
	if err := o.rng.SaveWatermark(w, o.wm); err != nil {
		return err
	}
	var key []byte
	save := func(k winKey, wd *win) error {
		faults.Point("window.snapshot")
		key = append(binary.BigEndian.AppendUint64(o.rng.Key(key[:0], 'w'), uint64(k.start)), k.key...)
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
	wm, err := opstate.Restore(r, "window", func(kind byte, k, v []byte) error {
		if kind != 'w' || len(k) < 8 {
			return fmt.Errorf("window state: unknown key %q %x", kind, k)
		}
		start := int64(binary.BigEndian.Uint64(k[:8]))
		if !o.rng.Owns(k[8:]) {
			return nil
		}
		key := string(k[8:])
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
