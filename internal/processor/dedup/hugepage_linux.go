package dedup

import (
	"syscall"
	"unsafe"
)

// hugePageMin is the table size from which adviseHugePages asks for huge
// pages.
const hugePageMin = 4 << 20

// adviseHugePages asks the kernel to back the groups with transparent huge
// pages (madvise MADV_HUGEPAGE on the 2 MiB-aligned part). A lookup in a
// big table is one random cache line; with 4 KiB pages it is also a TLB
// miss, whose page walk costs as much again (more in a virtual machine).
// It is advice: where THP is off ("never") nothing changes, and memory
// already touched keeps its pages until the kernel collapses them. The
// memory stays in the Go heap.
func adviseHugePages(groups []group) {
	n := len(groups) * groupBytes
	if n < hugePageMin {
		return
	}
	const huge = 2 << 20
	base := unsafe.Pointer(unsafe.SliceData(groups))
	start := uintptr(base)
	lo := (start + huge - 1) &^ (huge - 1)
	hi := (start + uintptr(n)) &^ (huge - 1)
	if hi <= lo {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(base, lo-start)), hi-lo)
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
}
