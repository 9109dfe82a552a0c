package testkit

// DiffLines compares two multisets of lines: missing are the lines of want
// (as often as they are there) that got lacks, extra the lines of got
// beyond those of want. Order is not compared; missing comes in no
// particular order.
func DiffLines(want, got []string) (missing, extra []string) {
	w := map[string]int{}
	for _, l := range want {
		w[l]++
	}
	for _, l := range got {
		if w[l] > 0 {
			w[l]--
		} else {
			extra = append(extra, l)
		}
	}
	for l, n := range w {
		for range n {
			missing = append(missing, l)
		}
	}
	return missing, extra
}
