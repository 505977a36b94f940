package dirtest

import "syscall"

// sysProcAttr makes the kernel kill slapd if the test process dies without
// stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
