//go:build !linux

package freespace

import "errors"

// Stat is not implemented on this system: the service runs on Linux.
func Stat(dir string) (Usage, error) {
	return Usage{}, errors.ErrUnsupported
}
