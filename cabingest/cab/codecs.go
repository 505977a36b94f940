package cab

import (
	"fmt"

	"github.com/opendus/opendus/cabingest/lzx"
	"github.com/opendus/opendus/cabingest/quantum"
)

// newLZXDecoder returns an LZX decoder for the window size in bits.
func newLZXDecoder(window int) (decoder, error) {
	if window < 15 || window > 21 {
		return nil, fmt.Errorf("lzx window of %d bits: %w", window, ErrFormat)
	}
	d, err := lzx.NewDecoder(window)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return d, nil
}

// newQuantumDecoder returns a Quantum decoder for the window size in bits.
func newQuantumDecoder(window int) (decoder, error) {
	if window < 10 || window > 21 {
		return nil, fmt.Errorf("quantum window of %d bits: %w", window, ErrFormat)
	}
	d, err := quantum.NewDecoder(window)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return d, nil
}

// newLZXEncoder returns an LZX encoder for the window size in bits.
func newLZXEncoder(window int) (encoder, error) {
	e, err := lzx.NewEncoder(window)
	if err != nil {
		return nil, fmt.Errorf("lzx window %d: %w: %w", window, ErrUnsupported, err)
	}
	return e, nil
}
