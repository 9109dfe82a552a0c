package main

import (
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 257, 1000, 1 << 20, 123456789, 1<<62 + 12345} {
		i := bucketOf(v)
		if ub := upperBound(i); ub < v {
			t.Errorf("value %d in bucket %d whose upper bound is %d", v, i, ub)
		}
		if i > 0 && upperBound(i-1) >= v {
			t.Errorf("value %d in bucket %d, but bucket %d reaches %d", v, i, i-1, upperBound(i-1))
		}
		if v >= 1<<subBits && float64(upperBound(i)-v) > float64(v)/(1<<subBits) {
			t.Errorf("value %d: bucket bound %d is more than 1/%d above", v, upperBound(i), 1<<subBits)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	check := func(q float64, want time.Duration) {
		t.Helper()
		got := h.quantile(q)
		if got < want || float64(got-want) > float64(want)/(1<<subBits) {
			t.Errorf("quantile(%v) = %v, want %v (within 1/%d above)", q, got, want, 1<<subBits)
		}
	}
	check(0.5, 500*time.Microsecond)
	check(0.99, 990*time.Microsecond)
	check(1, 1000*time.Microsecond)

	var other histogram
	other.record(time.Second)
	h.merge(&other)
	if h.n != 1001 || h.quantile(1) != time.Second {
		t.Errorf("after merge: n=%d max=%v, want 1001 and 1s", h.n, h.quantile(1))
	}
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("quantile of an empty histogram is not 0")
	}
}
