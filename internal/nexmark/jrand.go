package nexmark

// jrand is the linear congruential generator of java.util.Random, step for
// step: the reference Nexmark generators seed one with each event's id and
// draw the event's fields from it, so replicating it makes our streams
// follow theirs. Its 48-bit state lives in the low bits of the uint64.
type jrand uint64

const (
	jrandMult = 0x5DEECE66D
	jrandAdd  = 0xB
	jrandMask = 1<<48 - 1
)

// newJrand is new java.util.Random(seed).
func newJrand(seed int64) jrand {
	return jrand((uint64(seed) ^ jrandMult) & jrandMask)
}

// next advances the state and returns its top bits bits (1 to 32) as a
// Java int: for 32 bits the result may be negative.
func (r *jrand) next(bits uint) int32 {
	*r = jrand((uint64(*r)*jrandMult + jrandAdd) & jrandMask)
	return int32(uint64(*r) >> (48 - bits))
}

// nextInt32 is Random.nextInt(): any int32.
func (r *jrand) nextInt32() int32 { return r.next(32) }

// nextInt is Random.nextInt(bound): uniform in [0, bound). bound must be
// positive.
func (r *jrand) nextInt(bound int32) int32 {
	v := r.next(31)
	m := bound - 1
	if bound&m == 0 { // a power of two: take the high bits
		return int32(int64(bound) * int64(v) >> 31)
	}
	// Reject the top partial range so that every value is equally likely;
	// the test relies on int32 overflow exactly as Java's does.
	for u := v; ; u = r.next(31) {
		v = u % bound
		if u-v+m >= 0 {
			return v
		}
	}
}

// nextInt64 is Random.nextLong(): any int64.
func (r *jrand) nextInt64() int64 {
	hi := int64(r.next(32))
	return hi<<32 + int64(r.next(32))
}

// nextFloat64 is Random.nextDouble(): uniform in [0, 1) on a 2^-53 grid.
func (r *jrand) nextFloat64() float64 {
	hi := int64(r.next(26))
	return float64(hi<<27+int64(r.next(27))) * 0x1p-53
}

// below returns a number in [0, n) the way the reference generators' helper
// for longs does: Random.nextInt when n fits, else |nextLong() mod n|, which
// is skewed but only reached for huge n. n must be positive.
func (r *jrand) below(n int64) int64 {
	if n < 1<<31-1 {
		return int64(r.nextInt(int32(n)))
	}
	v := r.nextInt64() % n
	if v < 0 {
		v = -v
	}
	return v
}
