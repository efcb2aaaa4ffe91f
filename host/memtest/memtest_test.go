package memtest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestCountFindsEveryCopy plants a run-time canary in an anonymous mapping
// of this process: at its start, across a chunk boundary and at its end.
// Count finds each once, and none once they are cleared.
func TestCountFindsEveryCopy(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	raw := make([]byte, 8)
	_, _ = rand.Read(raw)
	canary := []byte("memtest-" + hex.EncodeToString(raw))
	region, err := unix.Mmap(-1, 0, 3*chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Munmap(region) }()
	at := []int{0, chunk - len(canary)/2, 3*chunk - len(canary)}
	for _, a := range at {
		copy(region[a:], canary)
	}
	regions, err := Find(os.Getpid(), canary)
	if err != nil {
		t.Fatal(err)
	}
	var inRegion []uint64
	for _, r := range regions {
		if uintptr(r.Start) <= unsafePointer(region) && unsafePointer(region) < uintptr(r.End) {
			base := uint64(unsafePointer(region)) - r.Start
			for _, o := range r.Offsets {
				if o >= base && o < base+3*chunk {
					inRegion = append(inRegion, o-base)
				}
			}
		}
	}
	if len(inRegion) != 3 || inRegion[0] != 0 || inRegion[1] != uint64(at[1]) || inRegion[2] != uint64(at[2]) {
		t.Errorf("found the canary in the planted mapping at %v, want %v", inRegion, at)
	}
	before, _ := Count(os.Getpid(), canary)
	for _, a := range at {
		clear(region[a : a+len(canary)])
	}
	after, err := Count(os.Getpid(), canary)
	if err != nil || before-after != 3 {
		t.Errorf("Count went from %d to %d (%v) when 3 planted copies were cleared", before, after, err)
	}
}

func unsafePointer(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
