package quantum

import (
	"bytes"
	"fmt"
)

// A cabinet reader makes one Decoder per folder (or Resets it) and feeds it
// the folder's CFDATA blocks in order.
func ExampleDecoder() {
	text := bytes.Repeat([]byte("ring ring, firmware update! "), 3)
	blocks := encodeQuantum(text, 16, encoderConfig{}) // CFDATA payloads and sizes

	d, err := NewDecoder(16) // typeCompress 0x1002: window bits 16
	if err != nil {
		fmt.Println(err)
		return
	}
	var out []byte
	for _, b := range blocks {
		dst := make([]byte, b.size) // cbUncomp
		if err := d.Decode(dst, b.payload); err != nil {
			fmt.Println(err)
			return
		}
		out = append(out, dst...)
	}
	fmt.Printf("%d blocks, %d bytes: %.27s\n", len(blocks), len(out), out)
	// Output: 1 blocks, 84 bytes: ring ring, firmware update!
}
