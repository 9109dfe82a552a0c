package dedup

import (
	"math/rand/v2"
	"testing"
)

// checkTable verifies the table's invariants: every live entry is in its
// first group, or in its second with the sec bit set and counted in its
// first group's ovf; no fingerprint is held twice; the live counts per
// label add up.
func checkTable(t *testing.T, tab *table) {
	t.Helper()
	f16 := uint16(tab.floor)
	ovf := make([]uint32, len(tab.groups))
	seen := map[uint64]bool{}
	live := 0
	byLabel := map[int64]uint32{}
	for gi := range tab.groups {
		g := &tab.groups[gi]
		for i := range lanes {
			s := g.slot[i]
			sec := g.sec&(1<<i) != 0
			if s == 0 {
				if sec {
					t.Fatalf("group %d lane %d: empty slot with the sec bit", gi, i)
				}
				continue
			}
			fp := tab.fpOf(uint64(gi), s, sec)
			first := fp >> tab.shift
			if sec {
				ovf[first]++
				if tab.other(first, fp&tagMask) != uint64(gi) {
					t.Fatalf("group %d lane %d: second-group entry not in its second group", gi, i)
				}
			} else if first != uint64(gi) {
				t.Fatalf("group %d lane %d: first-group entry of group %d", gi, i, first)
			}
			if seen[fp] {
				t.Fatalf("fingerprint %x held twice", fp)
			}
			seen[fp] = true
			if alive(s, f16) {
				live++
				byLabel[tab.abs(s)]++
			}
		}
	}
	for gi := range tab.groups {
		if tab.groups[gi].ovf != ovf[gi] {
			t.Fatalf("group %d: ovf %d, want %d", gi, tab.groups[gi].ovf, ovf[gi])
		}
	}
	if live != tab.live {
		t.Fatalf("live = %d, want %d", tab.live, live)
	}
	if len(byLabel) != tab.buckets {
		t.Fatalf("buckets = %d, want %d", tab.buckets, len(byLabel))
	}
	for l, n := range byLabel {
		if tab.counts[uint16(l)] != n {
			t.Fatalf("count of label %d = %d, want %d", l, tab.counts[uint16(l)], n)
		}
	}
}

// TestTableModel runs random operations against the table and a map, with
// fingerprints drawn from a small set that crowds a few groups, so that
// second groups, relocations and growth all happen; half the seeds bound
// the live ids so that early expiry happens too.
func TestTableModel(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		tab := newTable(0, 1000)
		if seed%2 == 1 {
			tab.maxLive = 500 + rng.IntN(5000)
		}
		model := map[uint64]int64{} // fp -> label; expired when <= floor
		perLabel := map[int64]int{} // live ids by label
		floor, n := tab.floor, 0
		advance := func(f int64) {
			for l := floor + 1; l <= f; l++ {
				n -= perLabel[l]
				delete(perLabel, l)
			}
			floor = f
		}
		oldest := func() int64 {
			l := floor + 1
			for perLabel[l] == 0 {
				l++
			}
			return l
		}
		// Fingerprints whose first group is one of a few, with random tags.
		pool := make([]uint64, 30000)
		for i := range pool {
			pool[i] = uint64(rng.IntN(64))<<(64-minLog) | rng.Uint64()&tagMask | 1
		}
		for op := range 100000 {
			switch r := rng.IntN(1000); {
			case r < 5:
				advance(floor + int64(rng.IntN(40)))
				tab.advance(floor)
			default:
				fp := pool[rng.IntN(len(pool))]
				e := floor + 1 + int64(rng.IntN(300))
				old, ok := model[fp]
				want := ok && old > floor
				if !want && n >= tab.maxLive {
					advance(oldest())
					e = max(e, floor+1)
				}
				got, label := tab.put(fp, e)
				if got != want || !got && label != e || tab.floor != floor {
					t.Fatalf("seed %d op %d: put(%x) = %v, %d, floor %d; want %v, %d, floor %d",
						seed, op, fp, got, label, tab.floor, want, e, floor)
				}
				if !want {
					model[fp] = e
					perLabel[e]++
					n++
				}
			}
			if op%20000 == 0 {
				checkTable(t, tab)
			}
		}
		checkTable(t, tab)
		if n != tab.live {
			t.Fatalf("seed %d: live = %d, model %d", seed, tab.live, n)
		}
		visited := 0
		if err := tab.each(func(fp uint64, e int64) error {
			if model[fp] != e {
				t.Fatalf("each: %x label %d, model %d", fp, e, model[fp])
			}
			visited++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if visited != n {
			t.Fatalf("each visited %d entries, want %d", visited, n)
		}
	}
}

// A floor step longer than the longest span clears the table; the sweeper
// clears expired entries as the floor moves.
func TestTableAdvance(t *testing.T) {
	tab := newTable(0, 1000)
	for i := range uint64(5000) {
		tab.put(mix(i)|1, 1001+int64(i%50))
	}
	if got := tab.advance(1025); got != 2500 {
		t.Fatalf("advance expired %d ids, want 2500", got)
	}
	checkTable(t, tab)
	if tab.buckets != 25 {
		t.Fatalf("buckets = %d, want 25", tab.buckets)
	}
	// A pass completes within passMax/2 labels of floor movement, so two
	// of them clear every entry that expired before the first began.
	tab.advance(1025 + passMax/2)
	tab.advance(1025 + passMax)
	for gi := range tab.groups {
		for _, s := range tab.groups[gi].slot {
			if s != 0 {
				t.Fatalf("expired entry left after a sweep pass")
			}
		}
	}
	for i := range uint64(100) {
		tab.put(mix(i)|1, tab.floor+maxSpan)
	}
	if got := tab.advance(tab.floor + maxSpan + 1); got != 100 || tab.live != 0 || tab.buckets != 0 {
		t.Fatalf("long step: expired %d, live %d, buckets %d; want 100, 0, 0", got, tab.live, tab.buckets)
	}
	checkTable(t, tab)
}

// restore keeps the later label of an id loaded twice.
func TestTableRestore(t *testing.T) {
	tab := newTable(0, 10)
	tab.restore(42<<20|1, 20)
	tab.restore(42<<20|1, 30)
	tab.restore(42<<20|1, 25)
	if _, i, ok := tab.find(42<<20 | 1); !ok || tab.abs(tab.groups[(42<<20|1)>>tab.shift].slot[i]) != 30 {
		t.Fatalf("restored label is not the latest")
	}
	if tab.live != 1 || tab.buckets != 1 {
		t.Fatalf("live %d, buckets %d; want 1, 1", tab.live, tab.buckets)
	}
	checkTable(t, tab)
}

// The table grows when it is full, and when relocation cannot place an id
// (fingerprints crafted so that all first and second groups are among 8).
func TestTableGrowth(t *testing.T) {
	tab := newTable(0, 1000)
	n := tab.limit + 1000
	groups := len(tab.groups)
	for i := range uint64(n) {
		if held, _ := tab.put(mix(i)|1, 1001+int64(i%300)); held {
			t.Fatalf("new id %d held", i)
		}
	}
	if len(tab.groups) != 2*groups || tab.live != n {
		t.Fatalf("groups %d, live %d; want %d, %d", len(tab.groups), tab.live, 2*groups, n)
	}
	checkTable(t, tab)
	for i := range uint64(n) {
		if held, _ := tab.put(mix(i)|1, 2000); !held {
			t.Fatalf("id %d lost in growth", i)
		}
	}

	tab = newTable(0, 1000)
	var fps []uint64
	for tag := uint64(1); len(fps) < 300; tag++ {
		if tab.other(0, tag) < 8 {
			fps = append(fps, uint64(len(fps)%8)<<(64-minLog)|tag)
		}
	}
	for i, fp := range fps {
		if held, _ := tab.put(fp, 1001+int64(i%7)); held {
			t.Fatalf("new id %x held", fp)
		}
	}
	if len(tab.groups) == 1<<minLog {
		t.Fatalf("the table did not grow")
	}
	checkTable(t, tab)
	for _, fp := range fps {
		if held, _ := tab.put(fp, 1001); !held {
			t.Fatalf("id %x lost", fp)
		}
	}
}

// mix is SplitMix64's finalizer: distinct, well-spread fingerprints.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
