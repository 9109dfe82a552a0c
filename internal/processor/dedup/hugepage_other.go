//go:build !linux

package dedup

// adviseHugePages does nothing outside Linux.
func adviseHugePages([]group) {}
