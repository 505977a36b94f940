package cab

import (
	"os"
	"testing"

	"github.com/opendus/opendus/cabingest/cabtest"
)

func TestProfGen(t *testing.T) {
	if os.Getenv("PROFGEN") == "" {
		t.Skip()
	}
	os.WriteFile("/tmp/prof/src/fw.bin", cabtest.FirmwareLike(1, 64<<20), 0o644)
}

func BenchmarkProfExtract(b *testing.B) {
	root, _ := os.OpenRoot("/tmp/prof")
	for b.Loop() {
		c, err := OpenSet(root, "g.cab", nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.ExtractAll(b.Context(), "/tmp/prof/out"); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
