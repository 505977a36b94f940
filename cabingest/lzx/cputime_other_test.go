//go:build !linux

package lzx

import "time"

func threadCPU() (time.Duration, bool) { return 0, false }
