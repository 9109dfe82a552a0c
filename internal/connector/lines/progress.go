package lines

import "sync"

// Position is a point in a line source: everything before it has been read.
type Position struct {
	// Source names the stream: a file path, or "stdin".
	Source string
	// Line is the number of lines read, including empty and rejected ones.
	Line int64
	// Offset is the byte offset just after the last line read. For a
	// compressed file it counts uncompressed bytes.
	Offset int64
}

// Progress commits positions in order while the batches that reach them
// complete in any order: Committed is the position of the latest batch such
// that it and every batch added before it are done. It is safe for
// concurrent use. Memory grows with the number of batches in flight, which
// the pipeline's queues bound.
type Progress struct {
	mu sync.Mutex
	// base is the ticket of entries[head]; entries[head:] are the batches
	// not yet committed, oldest first.
	base      uint64
	head      int
	entries   []progressEntry
	committed Position
}

type progressEntry struct {
	pos  Position
	done bool
}

// Add registers a batch that ends at pos and returns its ticket. Batches
// must be added in source order.
func (p *Progress) Add(pos Position) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head > 0 && len(p.entries) == cap(p.entries) {
		// Slide the live entries to the front instead of growing.
		n := copy(p.entries, p.entries[p.head:])
		clear(p.entries[n:])
		p.entries = p.entries[:n]
		p.head = 0
	}
	p.entries = append(p.entries, progressEntry{pos: pos})
	return p.base + uint64(len(p.entries)-p.head-1)
}

// Done marks the batch with ticket t complete. It panics if t was never
// returned by Add or is marked twice: that is a bug in the caller.
func (p *Progress) Done(t uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := p.entries[p.head:]
	if t < p.base || t-p.base >= uint64(len(live)) || live[t-p.base].done {
		panic("lines: Progress.Done with an unknown or completed ticket")
	}
	live[t-p.base].done = true
	n := 0
	for n < len(live) && live[n].done {
		n++
	}
	if n == 0 {
		return
	}
	p.committed = live[n-1].pos
	clear(live[:n]) // drop Source strings for the collector
	p.head += n
	p.base += uint64(n)
	if p.head == len(p.entries) {
		p.entries = p.entries[:0]
		p.head = 0
	}
}

// Committed returns the latest position up to which every batch is done,
// and the zero Position if there is none.
func (p *Progress) Committed() Position {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.committed
}

// InFlight reports how many added batches are not yet committed.
func (p *Progress) InFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries) - p.head
}
