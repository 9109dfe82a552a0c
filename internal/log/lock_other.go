//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package log

import "os"

// tryLock is not enforced on this platform: the single-writer rule is the
// caller's to keep.
func tryLock(*os.File) (held bool, err error) { return false, nil }
