//go:build !linux

package dirtest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
