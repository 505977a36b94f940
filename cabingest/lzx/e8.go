package lzx

import (
	"bytes"
	"encoding/binary"
)

// e8Decode undoes E8 call translation on one frame b whose first byte is at
// offset curpos of the folder's output: every 0xE8 byte before the last 10
// bytes of the frame is followed by a 32-bit absolute address that is turned
// back into a relative one when it lies in [-curpos, size).
func e8Decode(b []byte, curpos int64, size int32) {
	if len(b) <= e8MinFrame {
		return
	}
	limit := len(b) - e8MinFrame
	for i := 0; i < limit; {
		j := bytes.IndexByte(b[i:limit], 0xE8)
		if j < 0 {
			return
		}
		i += j
		cur := int32(curpos + int64(i))
		abs := int32(binary.LittleEndian.Uint32(b[i+1:]))
		if abs >= -cur && abs < size {
			var rel int32
			if abs >= 0 {
				rel = abs - cur
			} else {
				rel = abs + size
			}
			binary.LittleEndian.PutUint32(b[i+1:], uint32(rel))
		}
		i += 5
	}
}

// e8Encode applies E8 call translation to one frame, the inverse of
// e8Decode: relative addresses in [-curpos, size) become absolute ones.
func e8Encode(b []byte, curpos int64, size int32) {
	if len(b) <= e8MinFrame {
		return
	}
	limit := len(b) - e8MinFrame
	for i := 0; i < limit; {
		j := bytes.IndexByte(b[i:limit], 0xE8)
		if j < 0 {
			return
		}
		i += j
		cur := int32(curpos + int64(i))
		rel := int32(binary.LittleEndian.Uint32(b[i+1:]))
		if rel >= -cur && rel < size {
			var abs int32
			if rel < size-cur {
				abs = rel + cur
			} else {
				abs = rel - size
			}
			binary.LittleEndian.PutUint32(b[i+1:], uint32(abs))
		}
		i += 5
	}
}
