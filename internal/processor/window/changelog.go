package window

import (
	"math"

	"github.com/weir-dev/weir/internal/runtime"
)

var _ runtime.KeyedState = (*Op)(nil)

// EventKey implements runtime.KeyedState: a window's record belongs to its
// key; an instance's watermark and bound of ends to none.
func (o *Op) EventKey(stateKey []byte) ([]byte, bool) {
	_, _, key, ok := parseWinKey(stateKey)
	return key, ok
}

// Release implements runtime.KeyedState: the windows of the keys drop
// selects that changed since the last checkpoint go to w, and every window
// of those keys leaves memory (those in the store are the runtime's to
// delete).
func (o *Op) Release(drop func(key []byte) bool, w runtime.StateWriter) error {
	var gone []*win
	for _, wd := range o.wins {
		if drop([]byte(wd.key)) {
			gone = append(gone, wd)
		}
	}
	for _, wd := range gone {
		if wd.unsaved {
			if err := o.write(w, wd); err != nil {
				return err
			}
		}
		o.remove(wd)
		delete(o.sessions, wd.key)
	}
	o.cached.Set(float64(o.bytes))
	return nil
}

// Acquire implements runtime.KeyedState: the store gained windows, of any
// end, so the next scans of the store start from the beginning (windows
// the clock has passed fire then, late but complete as far as the
// changelog goes) and every end is looked up; sessions are read in.
func (o *Op) Acquire(accept func(key []byte) bool, r runtime.StateReader) error {
	o.maxStored = math.MaxInt64
	o.fireFrom, o.purgeFrom = math.MinInt64, math.MinInt64
	if o.w.kind != session {
		return nil
	}
	return r.Scan(o.rng.Key(nil, kindWin), o.rng.Key(nil, kindWin+1), func(k, v []byte) error {
		end, start, key, ok := parseWinKey(k)
		if !ok || !accept(key) || o.wins[winKey{string(key), start}] != nil {
			return nil
		}
		wd := &win{key: string(key), start: start, end: end, stored: true, sStart: start, sEnd: end}
		if err := decodeWin(v, len(o.w.aggs), wd); err != nil {
			return err
		}
		o.insert(wd)
		o.sessions[wd.key] = insertSorted(o.sessions[wd.key], start)
		return nil
	})
}
