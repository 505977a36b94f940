//go:build !linux

package dirtest

import (
	"syscall"
	"time"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// waitStopped cannot tell without /proc; Pause is then best effort.
func waitStopped(int, time.Duration) error { return nil }
