package lzx

import (
	"syscall"
	"time"
)

// threadCPU returns the CPU time of the calling OS thread (the caller
// locks its goroutine to the thread), which the load on a shared machine
// disturbs much less than wall time.
func threadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
