package simulator

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/opendus/opendus/firmware"
)

// WriteFirmware writes a sample update into the update tree under dir, in
// the layout devsvc import and devsvc bundle pack read:
// dir/DeviceType/Vendor/Model/Revision/Locale/Version/ with the image
// <Model>.nbt of size bytes and its security catalog <Model>.cat. The
// content is made up but fixed by the identity and version: half of the
// image is random, half repeats, so that compression has something to do.
func WriteFirmware(dir string, id firmware.Identity, v firmware.Version, size int64) error {
	if err := id.Validate(); err != nil {
		return err
	}
	if v.IsZero() || size < 0 {
		return fmt.Errorf("sample firmware %s: want a version and a size", id)
	}
	vdir := filepath.Join(dir, filepath.FromSlash(id.Path()), v.String())
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	seed := uint64(fnv32(id.Path()))<<32 | uint64(fnv32(v.String()))
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), byte(seed >> 32), byte(seed >> 40), byte(seed >> 48), byte(seed >> 56)}))
	write := func(name string, n int64, header string) error {
		f, err := os.Create(filepath.Join(vdir, name))
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		head := []byte(header)
		for i := int64(0); i < n; i++ {
			var c byte
			switch {
			case i < int64(len(head)):
				c = head[i]
			case i%8192 < 4096:
				c = byte(r.Uint32())
			default:
				c = byte(i)
			}
			w.WriteByte(c)
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	header := fmt.Sprintf("OpenDUS sample image %s %s\n", id.Path(), v)
	if err := write(id.Model+".nbt", size, header); err != nil {
		return err
	}
	return write(id.Model+".cat", 1024, fmt.Sprintf("OpenDUS sample catalog %s %s\n", id.Path(), v))
}
