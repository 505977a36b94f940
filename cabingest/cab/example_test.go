package cab_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/opendus/opendus/cabingest/cab"
)

// Write a small MSZIP cabinet to memory, then list and read it back.
func Example() {
	ctx := context.Background()
	w, err := cab.NewWriter(&cab.WriterConfig{Compression: cab.Compression{Type: cab.CompressMSZIP}})
	if err != nil {
		panic(err)
	}
	mod := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for name, body := range map[string]string{"fw/boot.img": strings.Repeat("boot", 1000)} {
		w.Add(name, int64(len(body)), mod, cab.AttrArchive, func() (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(body)), nil
		})
	}
	var buf bytes.Buffer
	if err := w.WriteTo(ctx, &buf); err != nil {
		panic(err)
	}

	c, err := cab.Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "example.cab", nil)
	if err != nil {
		panic(err)
	}
	err = c.Extract(ctx, func(f *cab.File, r io.Reader) error {
		data, err := io.ReadAll(r)
		fmt.Printf("%s -> %s: %d bytes, %v, %s\n", f.Name, f.Path(), len(data), f.Compression, f.Modified.Format(time.DateOnly))
		return err
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// fw\boot.img -> fw/boot.img: 4000 bytes, mszip, 2024-03-01
}
