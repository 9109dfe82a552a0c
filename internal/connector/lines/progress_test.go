package lines

import (
	"math/rand/v2"
	"sync"
	"testing"
)

func TestProgressOutOfOrder(t *testing.T) {
	var p Progress
	pos := func(n int64) Position { return Position{Source: "f", Line: n, Offset: 10 * n} }
	t0 := p.Add(pos(1))
	t1 := p.Add(pos(2))
	t2 := p.Add(pos(3))
	p.Done(t2)
	p.Done(t1)
	if c := p.Committed(); c != (Position{}) {
		t.Fatalf("committed %+v while the first batch is pending", c)
	}
	p.Done(t0)
	if c := p.Committed(); c != pos(3) {
		t.Fatalf("committed %+v, want %+v", c, pos(3))
	}
	if p.InFlight() != 0 {
		t.Fatalf("in flight %d", p.InFlight())
	}
	t3 := p.Add(pos(4))
	if t3 != 3 {
		t.Fatalf("ticket %d after 3 batches", t3)
	}
	p.Done(t3)
	if c := p.Committed(); c != pos(4) {
		t.Fatalf("committed %+v", c)
	}
}

func TestProgressDoneTwicePanics(t *testing.T) {
	var p Progress
	tk := p.Add(Position{Line: 1})
	p.Done(tk)
	defer func() {
		if recover() == nil {
			t.Fatal("second Done did not panic")
		}
	}()
	p.Done(tk)
}

// TestProgressRandom completes batches in random order from several
// goroutines while more are added, and checks the committed position never
// passes a pending batch.
func TestProgressRandom(t *testing.T) {
	var p Progress
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 5000
	var mu sync.Mutex
	done := make([]bool, n+1) // by line
	var pending []uint64
	lines := map[uint64]int64{}
	var wg sync.WaitGroup
	for line := int64(1); line <= n; line++ {
		tk := p.Add(Position{Line: line})
		lines[tk] = line
		pending = append(pending, tk)
		if rng.IntN(3) == 0 || line == n {
			rng.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
			batch := pending
			pending = nil
			for _, tk := range batch {
				l := lines[tk]
				wg.Go(func() {
					mu.Lock()
					done[l] = true
					mu.Unlock()
					p.Done(tk)
					c := p.Committed()
					mu.Lock()
					defer mu.Unlock()
					for i := int64(1); i <= c.Line; i++ {
						if !done[i] {
							t.Errorf("committed line %d while line %d is pending", c.Line, i)
							return
						}
					}
				})
			}
			wg.Wait()
		}
	}
	if c := p.Committed(); c.Line != n || p.InFlight() != 0 {
		t.Fatalf("committed %+v, in flight %d", c, p.InFlight())
	}
}
