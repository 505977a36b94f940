package cabcli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opendus/opendus/cabingest/cab"
	"github.com/opendus/opendus/cabingest/cabtest"
	"github.com/opendus/opendus/internal/testtool"
)

// childEnv makes the test binary run Main with the JSON-encoded arguments
// and exit: benchmarks re-execute themselves this way to measure the peak
// RSS of an extraction in a process of its own, as for cabextract.
const childEnv = "OPENDUS_CABCLI_CHILD"

// spawnEnv makes the test binary run the JSON-encoded command line and
// write the command's peak RSS (Rusage.Maxrss, KiB) to the file named by
// spawnOutEnv. The spawner exists because Go starts processes with
// vfork: Linux then records the parent's high-water RSS as the child's
// starting ru_maxrss, so a child of the (large) benchmark process would
// report the benchmark's RSS. A freshly executed spawner is small, so its
// children's figures are their own (plus the spawner's few MiB floor,
// reported as the "floor" benchmark).
const (
	spawnEnv    = "OPENDUS_CABCLI_SPAWN"
	spawnOutEnv = "OPENDUS_CABCLI_SPAWN_OUT"
)

func TestMain(m *testing.M) {
	if args := os.Getenv(spawnEnv); args != "" {
		os.Exit(spawn(args))
	}
	if args := os.Getenv(childEnv); args != "" {
		var a []string
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(Main(context.Background(), a, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func spawn(args string) int {
	var a []string
	if err := json.Unmarshal([]byte(args), &a); err != nil || len(a) == 0 {
		fmt.Fprintln(os.Stderr, "bad spawn arguments", err)
		return 2
	}
	cmd := exec.Command(a[0], a[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, spawnEnv+"=") && !strings.HasPrefix(kv, spawnOutEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	err := cmd.Run()
	if cmd.ProcessState != nil {
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
		os.WriteFile(os.Getenv(spawnOutEnv), []byte(strconv.FormatInt(rss, 10)), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// benchSize is the size of the benchmark data: $OPENDUS_CAB_BENCH_MB
// MiB, 200 by default.
func benchSize(b *testing.B) int {
	mb := 200
	if s := os.Getenv("OPENDUS_CAB_BENCH_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("OPENDUS_CAB_BENCH_MB=%q", s)
		}
		mb = n
	}
	return mb << 20
}

// benchTree writes firmware-like files of size bytes in total under a
// new directory and returns it with the relative file names.
func benchTree(b *testing.B, size int) (string, []string) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "src")
	var names []string
	const n = 4
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("fw/image%d.bin", i)
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, cabtest.FirmwareLike(int64(i), size/n), 0o644); err != nil {
			b.Fatal(err)
		}
		names = append(names, name)
	}
	return dir, names
}

// runCmd runs a command through a spawner and returns its peak RSS in
// bytes.
func runCmd(b *testing.B, cmd *exec.Cmd) int64 {
	b.Helper()
	argv, _ := json.Marshal(cmd.Args)
	out := filepath.Join(b.TempDir(), "rss")
	sp := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	sp.Dir = cmd.Dir
	sp.Env = append(append(os.Environ(), cmd.Env...), spawnEnv+"="+string(argv), spawnOutEnv+"="+out)
	if msg, err := sp.CombinedOutput(); err != nil {
		b.Fatalf("%v: %v\n%s", cmd.Args, err, msg)
	}
	kib, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := strconv.ParseInt(string(kib), 10, 64)
	return n * 1024
}

// childCmd returns a command running Main(args) in a child process.
func childCmd(args ...string) *exec.Cmd {
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = []string{childEnv + "=" + string(a)}
	return cmd
}

// benchExtract times extracting cabinet to a fresh temp directory by us
// (a child process running "devsvc cab extract") and by cabextract, and
// reports both peak RSS figures.
func benchExtract(b *testing.B, cabinet string, size int) {
	cabextract := testtool.Need(b, "cabextract")
	b.Run("ours", func(b *testing.B) {
		b.SetBytes(int64(size))
		var peak int64
		for b.Loop() {
			out := b.TempDir()
			peak = max(peak, runCmd(b, childCmd("extract", cabinet, "-C", out)))
			os.RemoveAll(out)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peakRSS-MiB")
	})
	b.Run("cabextract", func(b *testing.B) {
		b.SetBytes(int64(size))
		var peak int64
		for b.Loop() {
			out := b.TempDir()
			peak = max(peak, runCmd(b, exec.Command(cabextract, "-q", "-d", out, cabinet)))
			os.RemoveAll(out)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peakRSS-MiB")
	})
}

// BenchmarkSpawnFloor reports the peak RSS measured for /bin/true: the
// floor that every peakRSS-MiB figure includes.
func BenchmarkSpawnFloor(b *testing.B) {
	var peak int64
	for b.Loop() {
		peak = max(peak, runCmd(b, exec.Command("/bin/true")))
	}
	b.ReportMetric(float64(peak)/(1<<20), "peakRSS-MiB")
}

// BenchmarkExtractMSZIP extracts a firmware-like MSZIP cabinet made by
// gcab -cz (200 MiB by default).
func BenchmarkExtractMSZIP(b *testing.B) {
	gcab := testtool.Need(b, "gcab")
	size := benchSize(b)
	src, names := benchTree(b, size)
	cabinet := filepath.Join(b.TempDir(), "mszip.cab")
	cmd := exec.Command(gcab, append([]string{"-cz", cabinet}, names...)...)
	cmd.Dir = src
	runCmd(b, cmd)
	benchExtract(b, cabinet, size)
}

// BenchmarkExtractLZX21 extracts an LZX:21 cabinet of the same data
// written by our writer.
func BenchmarkExtractLZX21(b *testing.B) {
	size := benchSize(b)
	src, _ := benchTree(b, size)
	cabinet := filepath.Join(b.TempDir(), "lzx21.cab")
	runCmd(b, childCmd("pack", "-o", cabinet, "--compression", "lzx:21", src))
	benchExtract(b, cabinet, size)
}

// BenchmarkPackLZX21 measures our LZX:21 writer's speed and its output
// size against gcab -cz's MSZIP cabinet of the same data (ratio-vs-mszip
// below 0.9 means at least 10% smaller).
func BenchmarkPackLZX21(b *testing.B) {
	gcab := testtool.Need(b, "gcab")
	size := benchSize(b)
	src, names := benchTree(b, size)
	tmp := b.TempDir()
	mszipCab := filepath.Join(tmp, "mszip.cab")
	cmd := exec.Command(gcab, append([]string{"-cz", mszipCab}, names...)...)
	cmd.Dir = src
	runCmd(b, cmd)
	fi, err := os.Stat(mszipCab)
	if err != nil {
		b.Fatal(err)
	}
	mszipSize := fi.Size()
	root, err := os.OpenRoot(tmp)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	b.SetBytes(int64(size))
	var lzxSize int64
	var elapsed time.Duration
	for b.Loop() {
		w, err := cab.NewWriter(&cab.WriterConfig{Compression: cab.Compression{Type: cab.CompressLZX, Window: 21}, TempDir: tmp})
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range names {
			if err := w.AddFile(n, filepath.Join(src, n)); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		if _, err := w.Write(context.Background(), root, "lzx21.cab"); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		fi, err := os.Stat(filepath.Join(tmp, "lzx21.cab"))
		if err != nil {
			b.Fatal(err)
		}
		lzxSize = fi.Size()
	}
	b.ReportMetric(float64(lzxSize)/float64(size), "ratio-lzx21")
	b.ReportMetric(float64(mszipSize)/float64(size), "ratio-gcab-mszip")
	b.ReportMetric(float64(lzxSize)/float64(mszipSize), "ratio-vs-mszip")
}
