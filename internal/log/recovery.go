package log

// Recovery reports what Open found and repaired.
type Recovery struct {
	// Segments is the number of segment files opened.
	Segments int
	// TornTails counts torn tails truncated (0 or 1 per Open).
	TornTails int
	// TruncatedBytes is the size of the truncated tail.
	TruncatedBytes int64
	// TruncatedAt is the segment position where the tail was cut, -1 if none.
	TruncatedAt int64
	// IndexesRebuilt counts index files rebuilt from their segment (the
	// last segment's always is).
	IndexesRebuilt int
}
