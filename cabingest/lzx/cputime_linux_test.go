package lzx

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time of the process so far, all threads: the
// encoder's match finder runs on a goroutine of its own. CPU time is
// disturbed much less than wall time by other load on a shared machine.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
