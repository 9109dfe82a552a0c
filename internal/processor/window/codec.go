package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The value of a window in the state store (docs/format/state.md):
//
//	version  1 byte, 1
//	flags    1 byte: 1 fired (final result emitted), 2 changed since its
//	         last result (early_fire)
//	n        uvarint, the number of aggregates
//	n × acc  each: a uvarint mask of the fields present, then those fields
//	         in mask order (below)
//
// Fields: 1 N (varint), 2 SumI (varint), 4 SumF (8 bytes, IEEE 754 little
// endian), 8 Float (no bytes), 16 Best (uvarint length, raw JSON bytes)
// with BestT (varint), 32 Counts (uvarint count, then per distinct value
// its raw JSON as uvarint length and bytes, and its count as varint),
// 64 HLL (uvarint register count, then 0 and the registers, or 1, a
// uvarint count of non-zero registers and per one uvarint index and 1
// byte), 128 List (uvarint count, then uvarint length and bytes each),
// 256 By (uvarint length, raw JSON bytes).
const winFormat = 1

const (
	flagFired = 1 << iota
	flagDirty
)

const (
	fN = 1 << iota
	fSumI
	fSumF
	fFloat
	fBest
	fCounts
	fHLL
	fList
	fBy
)

var errCorrupt = errors.New("damaged window value")

// encodeWin appends the stored form of wd to dst.
func encodeWin(dst []byte, wd *win) []byte {
	var flags byte
	if wd.fired {
		flags |= flagFired
	}
	if wd.dirty {
		flags |= flagDirty
	}
	dst = append(dst, winFormat, flags)
	dst = binary.AppendUvarint(dst, uint64(len(wd.accs)))
	for i := range wd.accs {
		dst = encodeAcc(dst, &wd.accs[i])
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

func encodeAcc(dst []byte, a *acc) []byte {
	var m uint64
	set := func(bit uint64, ok bool) {
		if ok {
			m |= bit
		}
	}
	set(fN, a.N != 0)
	set(fSumI, a.SumI != 0)
	set(fSumF, a.SumF != 0)
	set(fFloat, a.Float)
	set(fBest, a.HasB)
	set(fCounts, len(a.Counts) > 0)
	set(fHLL, a.HLL != nil)
	set(fList, len(a.List) > 0)
	set(fBy, a.By != "")
	dst = binary.AppendUvarint(dst, m)
	if m&fN != 0 {
		dst = binary.AppendVarint(dst, a.N)
	}
	if m&fSumI != 0 {
		dst = binary.AppendVarint(dst, a.SumI)
	}
	if m&fSumF != 0 {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(a.SumF))
	}
	if m&fBest != 0 {
		dst = appendString(dst, a.Best)
		dst = binary.AppendVarint(dst, a.BestT)
	}
	if m&fCounts != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(a.Counts)))
		for k, n := range a.Counts {
			dst = appendString(dst, k)
			dst = binary.AppendVarint(dst, n)
		}
	}
	if m&fHLL != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(a.HLL)))
		nz := 0
		for _, r := range a.HLL {
			if r != 0 {
				nz++
			}
		}
		if nz*3 >= len(a.HLL) {
			dst = append(dst, 0)
			dst = append(dst, a.HLL...)
		} else {
			dst = append(dst, 1)
			dst = binary.AppendUvarint(dst, uint64(nz))
			for i, r := range a.HLL {
				if r != 0 {
					dst = append(binary.AppendUvarint(dst, uint64(i)), r)
				}
			}
		}
	}
	if m&fList != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(a.List)))
		for _, v := range a.List {
			dst = appendString(dst, v)
		}
	}
	if m&fBy != 0 {
		dst = appendString(dst, a.By)
	}
	return dst
}

// decoder reads a stored window; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes(d.uvarint())) }

// count reads a count of items of at least min bytes each, bounded by
// what is left (a damaged count cannot make a huge allocation).
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

// decodeWin decodes a stored window of naggs aggregates into wd (its
// fired and dirty flags and its accumulators).
func decodeWin(v []byte, naggs int, wd *win) error {
	if len(v) < 2 || v[0] != winFormat {
		if len(v) > 0 && v[0] != winFormat {
			return fmt.Errorf("window format %d, this weir reads %d", v[0], winFormat)
		}
		return errCorrupt
	}
	wd.fired, wd.dirty = v[1]&flagFired != 0, v[1]&flagDirty != 0
	d := decoder{b: v[2:]}
	if n := d.uvarint(); d.err == nil && n != uint64(naggs) {
		return fmt.Errorf("the window has %d aggregates, the config %d: the aggregates changed; move the state directory aside to start over", n, naggs)
	}
	wd.accs = make([]acc, naggs)
	for i := range wd.accs {
		decodeAcc(&d, &wd.accs[i])
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return d.err
}

func decodeAcc(d *decoder, a *acc) {
	m := d.uvarint()
	if m >= fBy<<1 {
		d.fail()
		return
	}
	if m&fN != 0 {
		a.N = d.varint()
	}
	if m&fSumI != 0 {
		a.SumI = d.varint()
	}
	if m&fSumF != 0 {
		if b := d.bytes(8); len(b) == 8 {
			a.SumF = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
	}
	a.Float = m&fFloat != 0
	if m&fBest != 0 {
		a.HasB = true
		a.Best = d.string()
		a.BestT = d.varint()
	}
	if m&fCounts != 0 {
		n := d.count(2)
		a.Counts = make(map[string]int64, n)
		for range n {
			k := d.string()
			a.Counts[k] = d.varint()
		}
	}
	if m&fHLL != 0 {
		n := d.uvarint()
		if n != 1<<hllP {
			d.fail()
			return
		}
		a.HLL = make([]byte, n)
		switch mode := d.bytes(1); {
		case len(mode) == 0:
		case mode[0] == 0:
			copy(a.HLL, d.bytes(n))
		case mode[0] == 1:
			for range d.count(2) {
				i := d.uvarint()
				r := d.bytes(1)
				if i >= n || len(r) == 0 {
					d.fail()
					return
				}
				a.HLL[i] = r[0]
			}
		default:
			d.fail()
		}
	}
	if m&fList != 0 {
		n := d.count(1)
		a.List = make([]string, 0, n)
		for range n {
			a.List = append(a.List, d.string())
		}
	}
	if m&fBy != 0 {
		a.By = d.string()
	}
	a.mem = a.footprint()
}
