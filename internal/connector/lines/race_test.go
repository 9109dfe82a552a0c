//go:build race

package lines

// raceEnabled reports a -race build, under which allocation counts are not
// meaningful.
const raceEnabled = true
