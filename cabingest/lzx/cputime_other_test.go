//go:build !linux

package lzx

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
