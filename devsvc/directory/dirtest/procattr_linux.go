package dirtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// sysProcAttr makes the kernel kill slapd if the test process dies without
// stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// waitStopped polls /proc until every thread of process pid is in state T
// (stopped by a signal), for at most timeout.
func waitStopped(pid int, timeout time.Duration) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(timeout)
	for {
		stopped, err := allStopped(pid)
		if err != nil || stopped {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slapd (pid %d) not stopped after %v", pid, timeout)
		}
		<-tick.C
	}
}

func allStopped(pid int) (bool, error) {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		return false, fmt.Errorf("no threads of pid %d in /proc: %v", pid, err)
	}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue // the thread has just ended
		}
		if err != nil {
			return false, err
		}
		// pid (comm) state ...: comm may contain spaces and parentheses,
		// so the state follows the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("%s: unexpected %q", p, b)
		}
		if b[i+2] != 'T' {
			return false, nil
		}
	}
	return true, nil
}
