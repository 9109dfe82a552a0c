package window

import (
	"cmp"
	"encoding/json"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// acc is the state of one aggregate in one window. Exported fields are its
// checkpointed form (encodeAcc); mem is the heap memory its variable parts
// take, roughly, kept up to date as it changes.
type acc struct {
	mem int
	N   int64 // values seen (count, avg)
	// Sum: SumI while every value is an integer, else SumF.
	SumI  int64
	SumF  float64
	Float bool
	// Best is the min, max, first or last value (raw JSON), BestT the
	// event time of first/last.
	Best  string
	BestT int64
	HasB  bool
	bestV jsondoc.Value
	// Counts per distinct value (raw JSON): count_distinct and top_k.
	Counts map[string]int64
	// HLL registers (approx_count_distinct).
	HLL []byte
	// List holds collected values (raw JSON).
	List []string
	// By is the ordering value (raw JSON) of Best for max_by and min_by.
	By  string
	byV jsondoc.Value
}

const hllP = 12 // 4096 registers: about 1.6% standard error

// add folds one value (the event's argument; by is the ordering of
// max_by and min_by) at event time t.
func (a *acc) add(s *aggSpec, v, by jsondoc.Value, t int64, scratch []byte) []byte {
	if s.fn == aggCount {
		a.N++
		return scratch
	}
	if s.fn == aggMaxBy || s.fn == aggMinBy {
		if by.Kind == jsondoc.Missing || by.Kind == jsondoc.Null {
			return scratch
		}
		if a.HasB {
			c, ok := compareValues(by, a.byValue())
			if !ok || (s.fn == aggMaxBy && c <= 0) || (s.fn == aggMinBy && c >= 0) {
				return scratch
			}
		}
		a.setBest(v, t, scratch)
		old := len(a.By)
		a.By = string(jsondoc.AppendValue(scratch[:0], by))
		a.mem += len(a.By) - old
		a.byV = jsondoc.Value{}
		return scratch
	}
	if v.Kind == jsondoc.Missing || v.Kind == jsondoc.Null {
		return scratch
	}
	switch s.fn {
	case aggSum, aggAvg:
		switch v.Kind {
		case jsondoc.Int:
			a.N++
			if !a.Float {
				if s, ok := addInt(a.SumI, v.I); ok {
					a.SumI = s
					return scratch
				}
				a.Float, a.SumF = true, float64(a.SumI)
			}
			a.SumF += float64(v.I)
		case jsondoc.Float:
			a.N++
			if !a.Float {
				a.Float, a.SumF = true, float64(a.SumI)
			}
			a.SumF += v.F
		}
	case aggMin, aggMax:
		if !a.HasB {
			a.setBest(v, t, scratch)
			return scratch
		}
		c, ok := compareValues(v, a.best())
		if ok && ((s.fn == aggMin && c < 0) || (s.fn == aggMax && c > 0)) {
			a.setBest(v, t, scratch)
		}
	case aggFirst:
		if !a.HasB || t < a.BestT {
			a.setBest(v, t, scratch)
		}
	case aggLast:
		if !a.HasB || t >= a.BestT {
			a.setBest(v, t, scratch)
		}
	case aggCountDistinct, aggTopK:
		scratch = jsondoc.AppendValue(scratch[:0], v)
		if a.Counts == nil {
			a.Counts = map[string]int64{}
			a.mem += mapBytes
		}
		if n, ok := a.Counts[string(scratch)]; ok {
			a.Counts[string(scratch)] = n + 1
			break
		}
		a.Counts[string(scratch)] = 1
		a.mem += len(scratch) + mapEntryBytes
	case aggApproxDistinct:
		scratch = jsondoc.AppendValue(scratch[:0], v)
		a.hllAdd(xxhash.Sum64(scratch))
	case aggCollect:
		if len(a.List) < s.n {
			scratch = jsondoc.AppendValue(scratch[:0], v)
			a.List = append(a.List, string(scratch))
			a.mem += len(scratch) + stringBytes
		}
	}
	return scratch
}

func addInt(a, b int64) (int64, bool) {
	s := a + b
	if (s > a) != (b > 0) {
		return 0, false
	}
	return s, true
}

func (a *acc) setBest(v jsondoc.Value, t int64, scratch []byte) {
	old := len(a.Best)
	a.Best = string(jsondoc.AppendValue(scratch[:0], v))
	a.mem += len(a.Best) - old
	a.BestT, a.HasB = t, true
	a.bestV = jsondoc.Value{}
}

// best returns the best value decoded (cached).
func (a *acc) best() jsondoc.Value {
	if a.bestV.Kind == jsondoc.Missing {
		a.bestV = decodeScalar(a.Best)
	}
	return a.bestV
}

// byValue returns the ordering value of max_by and min_by decoded (cached).
func (a *acc) byValue() jsondoc.Value {
	if a.byV.Kind == jsondoc.Missing {
		a.byV = decodeScalar(a.By)
	}
	return a.byV
}

// decodeScalar decodes a JSON string or number; other values decode as
// missing (they do not order).
func decodeScalar(js string) jsondoc.Value {
	if js == "" {
		return jsondoc.Value{}
	}
	if js[0] == '"' {
		var s string
		if json.Unmarshal([]byte(js), &s) == nil {
			return jsondoc.Value{Kind: jsondoc.String, S: []byte(s)}
		}
	} else if i, err := strconv.ParseInt(js, 10, 64); err == nil {
		return jsondoc.Value{Kind: jsondoc.Int, I: i}
	} else if f, err := strconv.ParseFloat(js, 64); err == nil {
		return jsondoc.Value{Kind: jsondoc.Float, F: f}
	}
	return jsondoc.Value{}
}

// compareValues orders numbers by value and strings bytewise; ok is false
// for values of different or unordered kinds.
func compareValues(x, y jsondoc.Value) (int, bool) {
	num := func(v jsondoc.Value) (float64, bool) {
		switch v.Kind {
		case jsondoc.Int:
			return float64(v.I), true
		case jsondoc.Float:
			return v.F, true
		}
		return 0, false
	}
	if x.Kind == jsondoc.Int && y.Kind == jsondoc.Int {
		return cmp.Compare(x.I, y.I), true
	}
	if fx, ok := num(x); ok {
		if fy, ok := num(y); ok {
			return cmp.Compare(fx, fy), true
		}
		return 0, false
	}
	if x.Kind == jsondoc.String && y.Kind == jsondoc.String {
		return cmp.Compare(string(x.S), string(y.S)), true
	}
	return 0, false
}

func (a *acc) hllAdd(h uint64) {
	if a.HLL == nil {
		a.HLL = make([]byte, 1<<hllP)
		a.mem += len(a.HLL)
	}
	idx := h >> (64 - hllP)
	rank := byte(bits.LeadingZeros64(h<<hllP|1<<(hllP-1)) + 1)
	if rank > a.HLL[idx] {
		a.HLL[idx] = rank
	}
}

func (a *acc) hllEstimate() int64 {
	if a.HLL == nil {
		return 0
	}
	m := float64(len(a.HLL))
	sum, zeros := 0.0, 0
	for _, r := range a.HLL {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	est := 0.7213 / (1 + 1.079/m) * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(m/float64(zeros))
	}
	return int64(est + 0.5)
}

// Rough heap costs of an acc's parts, for the cache's byte bound.
const (
	mapBytes      = 256 // an empty map with its first group of slots
	mapEntryBytes = 48  // a map entry with its string header and count
	stringBytes   = 24  // a string header in a slice, with room to grow
)

// footprint computes mem from scratch.
func (a *acc) footprint() int {
	n := len(a.Best) + len(a.By) + len(a.HLL)
	if a.Counts != nil {
		n += mapBytes
	}
	for k := range a.Counts {
		n += len(k) + mapEntryBytes
	}
	for _, v := range a.List {
		n += len(v) + stringBytes
	}
	return n
}

// merge folds b into a (session windows merging).
func (a *acc) merge(s *aggSpec, b *acc) {
	defer func() { a.mem = a.footprint() }()
	switch s.fn {
	case aggCount:
		a.N += b.N
	case aggSum, aggAvg:
		a.N += b.N
		if !a.Float && !b.Float {
			if sum, ok := addInt(a.SumI, b.SumI); ok {
				a.SumI = sum
				return
			}
		}
		af, bf := a.SumF, b.SumF
		if !a.Float {
			af = float64(a.SumI)
		}
		if !b.Float {
			bf = float64(b.SumI)
		}
		a.Float, a.SumF = true, af+bf
	case aggMin, aggMax:
		if !b.HasB {
			return
		}
		if !a.HasB {
			a.Best, a.BestT, a.HasB, a.bestV = b.Best, b.BestT, true, jsondoc.Value{}
			return
		}
		c, ok := compareValues(b.best(), a.best())
		if ok && ((s.fn == aggMin && c < 0) || (s.fn == aggMax && c > 0)) {
			a.Best, a.BestT, a.bestV = b.Best, b.BestT, jsondoc.Value{}
		}
	case aggFirst:
		if b.HasB && (!a.HasB || b.BestT < a.BestT) {
			a.Best, a.BestT, a.HasB = b.Best, b.BestT, true
		}
	case aggLast:
		if b.HasB && (!a.HasB || b.BestT >= a.BestT) {
			a.Best, a.BestT, a.HasB = b.Best, b.BestT, true
		}
	case aggCountDistinct, aggTopK:
		if a.Counts == nil && len(b.Counts) > 0 {
			a.Counts = map[string]int64{}
		}
		for k, n := range b.Counts {
			a.Counts[k] += n
		}
	case aggApproxDistinct:
		if b.HLL == nil {
			return
		}
		if a.HLL == nil {
			a.HLL = make([]byte, len(b.HLL))
		}
		for i, r := range b.HLL {
			a.HLL[i] = max(a.HLL[i], r)
		}
	case aggMaxBy, aggMinBy:
		if !b.HasB {
			return
		}
		if a.HasB {
			c, ok := compareValues(b.byValue(), a.byValue())
			if !ok || (s.fn == aggMaxBy && c <= 0) || (s.fn == aggMinBy && c >= 0) {
				return
			}
		}
		a.Best, a.BestT, a.HasB, a.By, a.bestV, a.byV = b.Best, b.BestT, true, b.By, jsondoc.Value{}, jsondoc.Value{}
	case aggCollect:
		for _, v := range b.List {
			if len(a.List) >= s.n {
				break
			}
			a.List = append(a.List, v)
		}
	}
}

// appendResult appends the aggregate's JSON value.
func (a *acc) appendResult(dst []byte, s *aggSpec) []byte {
	switch s.fn {
	case aggCount:
		return strconv.AppendInt(dst, a.N, 10)
	case aggSum:
		if a.Float {
			return appendFloat(dst, a.SumF)
		}
		return strconv.AppendInt(dst, a.SumI, 10)
	case aggAvg:
		if a.N == 0 {
			return append(dst, "null"...)
		}
		sum := a.SumF
		if !a.Float {
			sum = float64(a.SumI)
		}
		return appendFloat(dst, sum/float64(a.N))
	case aggMin, aggMax, aggFirst, aggLast, aggMaxBy, aggMinBy:
		if !a.HasB {
			return append(dst, "null"...)
		}
		return append(dst, a.Best...)
	case aggCountDistinct:
		return strconv.AppendInt(dst, int64(len(a.Counts)), 10)
	case aggApproxDistinct:
		return strconv.AppendInt(dst, a.hllEstimate(), 10)
	case aggTopK:
		type vc struct {
			v string
			n int64
		}
		all := make([]vc, 0, len(a.Counts))
		for v, n := range a.Counts {
			all = append(all, vc{v, n})
		}
		slices.SortFunc(all, func(x, y vc) int {
			if c := cmp.Compare(y.n, x.n); c != 0 {
				return c
			}
			return cmp.Compare(x.v, y.v)
		})
		dst = append(dst, '[')
		for i, e := range all[:min(len(all), s.n)] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"value":`...)
			dst = append(dst, e.v...)
			dst = append(dst, `,"count":`...)
			dst = strconv.AppendInt(dst, e.n, 10)
			dst = append(dst, '}')
		}
		return append(dst, ']')
	case aggCollect:
		dst = append(dst, '[')
		for i, v := range a.List {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, v...)
		}
		return append(dst, ']')
	}
	return append(dst, "null"...)
}

func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}
