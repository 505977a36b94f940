// Package cabtest provides deterministic test data for the cabinet
// packages (cab, mszip, lzx, quantum) and their command line.
//
// Everything here is a pure function of its seed: the same seed and size
// always give the same bytes on every platform and Go version, because the
// generator is a small fixed PRNG (splitmix64) rather than math/rand, whose
// streams are not promised to stay stable. Tests can therefore print a seed
// on failure and reproduce the input exactly.
//
// FirmwareLike produces data whose compression behaviour resembles real
// firmware images for desk phones: instruction-like code sections with x86
// CALL (E8) opcodes and relative targets (what LZX's E8 translation is
// for), repeated patterns and tables, string tables, long runs of 0x00 and
// 0xFF padding, and high-entropy regions (already compressed or encrypted
// payloads) that no codec can shrink. RandomTree lays out a directory of
// such files with the awkward shapes extractors get wrong: empty files,
// tiny files, deep directories and Unicode names.
package cabtest

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Rand is a small deterministic pseudo-random generator (splitmix64). Its
// output for a given seed never changes. The zero value is usable.
type Rand struct{ s uint64 }

// NewRand returns a generator seeded with seed.
func NewRand(seed int64) *Rand { return &Rand{s: uint64(seed)} }

// Uint64 returns the next 64 pseudo-random bits.
func (r *Rand) Uint64() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Intn returns a value in [0, n). It returns 0 when n <= 0.
func (r *Rand) Intn(n int) int {
	if n <= 0 {
		return 0
	}
	return int(r.Uint64() % uint64(n))
}

// Fill fills p with pseudo-random bytes.
func (r *Rand) Fill(p []byte) {
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, r.Uint64())
		p = p[8:]
	}
	if len(p) > 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		copy(p, b[:])
	}
}

// words feed the string tables: the vocabulary of phone firmware.
var words = []string{
	"SIP", "REGISTER", "INVITE", "ACK", "BYE", "OPTIONS", "codec", "G.711",
	"G.722", "Opus", "provisioning", "server", "firmware", "version",
	"update", "failed", "success", "handset", "speaker", "headset", "line",
	"account", "proxy", "outbound", "timeout", "retry", "TLS", "certificate",
	"DHCP", "VLAN", "LLDP", "CDP", "NTP", "locale", "en-US", "de-DE",
	"error", "warning", "debug", "config", "/etc/", "/usr/lib/", ".so",
	"http://", "https://", "%s", "%d", "0x%08x", "\n", ": ", "=",
}

// FirmwareLike returns size deterministic bytes shaped like a firmware
// image. Different seeds give different images with the same statistical
// shape; a typical image compresses to roughly half its size with deflate.
func FirmwareLike(seed int64, size int) []byte {
	if size <= 0 {
		return []byte{}
	}
	r := NewRand(seed)
	out := make([]byte, 0, size)
	// A small "library" of code fragments reused across the image, as
	// compilers and linkers repeat prologues, epilogues and idioms.
	frags := make([][]byte, 64)
	for i := range frags {
		f := make([]byte, 8+r.Intn(56))
		for j := range f {
			// Bias towards a small set of opcode-like bytes.
			f[j] = opcodes[r.Intn(len(opcodes))]
		}
		frags[i] = f
	}
	// Header: magic, version, table of section offsets.
	out = append(out, "OPDUSFW\x00"...)
	for len(out) < size && len(out) < 256 {
		out = binary.LittleEndian.AppendUint32(out, uint32(r.Intn(1<<20)))
	}
	for len(out) < size {
		remain := size - len(out)
		n := 4096 + r.Intn(60*1024)
		if n > remain {
			n = remain
		}
		switch k := r.Intn(20); {
		case k < 10:
			out = appendCode(out, r, frags, n)
		case k < 13:
			out = appendStrings(out, r, n)
		case k < 15:
			out = appendPadding(out, r, n)
		case k < 17:
			out = appendTable(out, r, n)
		default:
			start := len(out)
			out = out[:start+n]
			r.Fill(out[start:])
		}
	}
	return out[:size]
}

var opcodes = []byte{
	0x55, 0x89, 0xe5, 0x8b, 0x45, 0x08, 0x83, 0xec, 0x10, 0xc3, 0x5d, 0x48,
	0x8d, 0x74, 0x75, 0xeb, 0x31, 0xc0, 0x85, 0xff, 0x0f, 0x84, 0x01, 0x00,
	0x24, 0x04, 0x50, 0x53, 0x56, 0x57, 0x5b, 0x5e, 0x5f, 0x90, 0xb8, 0x39,
}

// appendCode appends n bytes of instruction-like data: reused fragments,
// CALL rel32 (E8) instructions whose targets cluster around a few
// functions, and immediate constants.
func appendCode(out []byte, r *Rand, frags [][]byte, n int) []byte {
	end := len(out) + n
	funcs := make([]int, 16)
	for i := range funcs {
		funcs[i] = r.Intn(8 << 20)
	}
	for len(out) < end {
		switch k := r.Intn(10); {
		case k < 5:
			out = append(out, frags[r.Intn(len(frags))]...)
		case k < 8:
			// CALL to an absolute target: the relative displacement changes
			// with the position, which LZX's E8 translation undoes.
			target := funcs[r.Intn(len(funcs))]
			rel := int32(target - (len(out) + 5))
			out = append(out, 0xe8)
			out = binary.LittleEndian.AppendUint32(out, uint32(rel))
		case k < 9:
			out = append(out, 0xb8)
			out = binary.LittleEndian.AppendUint32(out, uint32(r.Intn(4096)))
		default:
			out = append(out, opcodes[r.Intn(len(opcodes))], byte(r.Intn(256)))
		}
	}
	return out[:end]
}

// appendStrings appends n bytes of NUL-terminated messages built from the
// firmware vocabulary.
func appendStrings(out []byte, r *Rand, n int) []byte {
	end := len(out) + n
	for len(out) < end {
		m := 1 + r.Intn(8)
		for i := 0; i < m; i++ {
			if i > 0 {
				out = append(out, ' ')
			}
			out = append(out, words[r.Intn(len(words))]...)
		}
		out = append(out, 0)
	}
	return out[:end]
}

// appendPadding appends n bytes of 0x00 or 0xFF fill, as between sections
// and at the end of flash images.
func appendPadding(out []byte, r *Rand, n int) []byte {
	b := byte(0)
	if r.Intn(2) == 1 {
		b = 0xff
	}
	for i := 0; i < n; i++ {
		out = append(out, b)
	}
	return out
}

// appendTable appends n bytes of a structured table: fixed-size records of
// slowly increasing little-endian integers.
func appendTable(out []byte, r *Rand, n int) []byte {
	end := len(out) + n
	v := uint32(r.Intn(1 << 16))
	stride := uint32(1 + r.Intn(64))
	for len(out) < end {
		v += stride
		out = binary.LittleEndian.AppendUint32(out, v)
		out = binary.LittleEndian.AppendUint16(out, uint16(r.Intn(8)))
		out = append(out, 0, 0)
	}
	return out[:end]
}

// TreeFile is one regular file of a tree made by RandomTree.
type TreeFile struct {
	Name string // slash-separated, relative to the tree's root
	Data []byte
}

// TreeConfig shapes RandomTree. The zero value gives a small tree of a few
// dozen files, mostly small, with Unicode names and a few deep directories.
type TreeConfig struct {
	// Files is the number of files; 0 means 24.
	Files int
	// MaxSize bounds the size of ordinary files; 0 means 64 KiB.
	MaxSize int
	// Big, when positive, adds one firmware-like file of this size.
	Big int
	// MaxDepth bounds the directory depth; 0 means 6.
	MaxDepth int
	// ASCII restricts names to ASCII (for tools that mangle others).
	ASCII bool
}

var nameParts = []string{
	"fw", "boot", "app", "lang", "ring", "tones", "cfg", "img", "lib",
	"données", "grüße", "日本語", "звонок", "ÆØÅ", "emoji😀", "space name",
}

// RandomTree returns a deterministic set of files with distinct names,
// sorted by name: always at least one empty file and one one-byte file,
// then files of random sizes (up to cfg.MaxSize) in nested directories.
func RandomTree(seed int64, cfg TreeConfig) []TreeFile {
	if cfg.Files <= 0 {
		cfg.Files = 24
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = 64 << 10
	}
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = 6
	}
	r := NewRand(seed)
	seen := map[string]bool{}
	var files []TreeFile
	add := func(name string, data []byte) {
		// A name must not be both a file and a directory.
		for p := name; ; {
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p = p[:i]
			if seen[p] {
				return
			}
		}
		for s := range seen {
			if strings.HasPrefix(s, name+"/") {
				return
			}
		}
		if seen[name] {
			return
		}
		seen[name] = true
		files = append(files, TreeFile{Name: name, Data: data})
	}
	part := func() string {
		p := nameParts[r.Intn(len(nameParts))]
		if cfg.ASCII && !isASCII(p) {
			p = "x"
		}
		return p
	}
	add("empty.bin", []byte{})
	add("one.bin", []byte{byte(r.Intn(256))})
	if cfg.Big > 0 {
		add("big/firmware.img", FirmwareLike(int64(r.Uint64()), cfg.Big))
	}
	for i := 0; len(files) < cfg.Files && i < cfg.Files*4; i++ {
		depth := r.Intn(cfg.MaxDepth + 1)
		var parts []string
		for d := 0; d < depth; d++ {
			parts = append(parts, part())
		}
		parts = append(parts, fmt.Sprintf("%s-%d.dat", part(), i))
		size := r.Intn(cfg.MaxSize + 1)
		if r.Intn(4) == 0 {
			size = r.Intn(64)
		}
		add(strings.Join(parts, "/"), FirmwareLike(int64(r.Uint64()), size))
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// WriteTree writes files under dir, creating directories as needed.
func WriteTree(dir string, files []TreeFile) error {
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("cabtest: %w", err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return fmt.Errorf("cabtest: %w", err)
		}
	}
	return nil
}

// ReadTree reads every regular file under dir and returns them with
// slash-separated names relative to dir, sorted by name.
func ReadTree(dir string) ([]TreeFile, error) {
	var files []TreeFile
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, TreeFile{Name: filepath.ToSlash(rel), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cabtest: read tree: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}
