package dedup

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// TestBigTableAdvisesHugePages checks that a table past hugePageMin asks
// for huge pages (the kernel marks the mapping "hg" in VmFlags) and works
// across that memory.
func TestBigTableAdvisesHugePages(t *testing.T) {
	tab := newTable(2_000_000, 1000)
	if n := len(tab.groups) * groupBytes; n < 2*hugePageMin {
		t.Fatalf("table of %d bytes; the test needs more than %d", n, 2*hugePageMin)
	}
	for i := range uint64(200_000) {
		if held, _ := tab.put(testFP(i), 1010); held {
			t.Fatalf("id %d held before it was put", i)
		}
	}
	for i := range uint64(200_000) {
		if held, _ := tab.put(testFP(i), 1010); !held {
			t.Fatalf("id %d not held after it was put", i)
		}
	}
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skipf("a kernel without transparent huge pages: %v", err)
	}
	flags, err := vmFlagsOf(uintptr(unsafe.Pointer(&tab.groups[len(tab.groups)/2])))
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Errorf("the table's mapping has VmFlags %q, without hg (MADV_HUGEPAGE)", flags)
	}
}

// testFP spreads i over 64 bits (a fingerprint's tag must not be 0).
func testFP(i uint64) uint64 { return (i+1)*0x9e3779b97f4a7c15 | 1<<20 }

// vmFlagsOf returns the VmFlags of the mapping that holds addr.
func vmFlagsOf(addr uintptr) (string, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 && strings.Contains(line, " ") && !strings.HasSuffix(strings.Fields(line)[0], ":") {
			in = lo <= addr && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmFlags:")), nil
		}
	}
	return "", fmt.Errorf("address %#x not found", addr)
}
