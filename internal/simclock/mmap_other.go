//go:build !unix

package simclock

import (
	"errors"
	"os"
)

func mmap(*os.File, int) ([]byte, error) {
	return nil, errors.New("a simulated clock needs a Unix system (mmap)")
}

func munmap([]byte) error { return nil }
