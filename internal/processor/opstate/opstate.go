// Package opstate is the checkpointed key layout that weir's operators
// (window, join, keyed) share. Each instance writes its own range of the
// node's key space, prefixed by its index as 2 bytes big-endian, then a
// record kind byte:
//
//	<instance> 'm'          → the instance's watermark, 8 bytes big-endian
//	<instance> <kind> …     → the operator's own records
//
// A restore reads every instance's range and keeps the records whose key
// hashes to the restoring instance (runtime.KeyHash, as key-hash edges
// route), so the parallelism may change between runs; the restored
// watermark is the least of all instances'. Instance 0 deletes the ranges
// of instances that no longer exist when it rewrites its own.
package opstate

import (
	"encoding/binary"
	"fmt"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// kindWatermark is the record kind of an instance's watermark.
const kindWatermark = 'm'

// Range is one operator instance's part of the node's key space.
type Range struct {
	instance, parallelism int
	keyed                 bool
}

// New returns the range of instance env.Instance; keyed says whether the
// operator's events arrive keyed (without a key, instance 0 owns all).
func New(env runtime.Env, keyed bool) Range {
	return Range{instance: env.Instance, parallelism: max(env.Parallelism, 1), keyed: keyed}
}

func prefix(dst []byte, instance int) []byte {
	return binary.BigEndian.AppendUint16(dst, uint16(instance))
}

// Key appends to dst the start of a key of kind in this range.
func (r Range) Key(dst []byte, kind byte) []byte {
	return append(prefix(dst, r.instance), kind)
}

// Clear deletes everything in this range (a full snapshot rewrites it),
// and for instance 0 the ranges of instances past the parallelism.
func (r Range) Clear(w runtime.StateWriter) error {
	if err := w.DeleteRange(prefix(nil, r.instance), prefix(nil, r.instance+1)); err != nil {
		return err
	}
	if r.instance == 0 {
		return w.DeleteRange(prefix(nil, r.parallelism), []byte{0xff, 0xff, 0xff})
	}
	return nil
}

// SaveWatermark writes the instance's watermark.
func (r Range) SaveWatermark(w runtime.StateWriter, wm int64) error {
	return w.Set(r.Key(nil, kindWatermark), binary.BigEndian.AppendUint64(nil, uint64(wm)))
}

// Owns reports whether a record of key belongs to this instance.
func (r Range) Owns(key []byte) bool {
	if !r.keyed {
		return r.instance == 0
	}
	return runtime.KeyHash(key)%uint64(r.parallelism) == uint64(r.instance)
}

// Restore scans every instance's range: fn gets each record other than a
// watermark, with its kind and the key after the kind byte (fn decides
// ownership with Owns). It returns the least watermark saved, or
// event.NoWatermark when there is none.
func Restore(rd runtime.StateReader, what string, fn func(kind byte, key, value []byte) error) (int64, error) {
	wm := event.NoWatermark
	err := rd.Scan(nil, nil, func(k, v []byte) error {
		if len(k) < 3 {
			return fmt.Errorf("%s state: short key %x", what, k)
		}
		if k[2] != kindWatermark {
			return fn(k[2], k[3:], v)
		}
		if len(v) != 8 {
			return fmt.Errorf("%s state: watermark of %d bytes", what, len(v))
		}
		if m := int64(binary.BigEndian.Uint64(v)); wm == event.NoWatermark || m < wm {
			wm = m
		}
		return nil
	})
	return wm, err
}

// InstanceKey appends to dst the start of a key of kind in instance's
// range (another instance's, when migrating records between ranges).
func InstanceKey(dst []byte, instance int, kind byte) []byte {
	return append(prefix(dst, instance), kind)
}

// Instance returns the instance of a key in the layout.
func Instance(key []byte) int { return int(binary.BigEndian.Uint16(key)) }

// Owner returns the instance that owns a record of key at the current
// parallelism.
func (r Range) Owner(key []byte) int {
	if !r.keyed {
		return 0
	}
	return int(runtime.KeyHash(key) % uint64(r.parallelism))
}

// Instance is this range's instance.
func (r Range) Instance() int { return r.instance }

// Parallelism is the number of instances.
func (r Range) Parallelism() int { return r.parallelism }
