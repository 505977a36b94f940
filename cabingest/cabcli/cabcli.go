// Package cabcli implements "devsvc cab", the command line for Microsoft
// cabinet files: list, extract, test and pack. It is a thin layer over
// package cab; Main is what the devsvc binary calls.
//
// Conventions: exit status 0 on success, 1 when the operation fails and 2
// for usage errors; every failure prints exactly one line,
// "devsvc cab: <reason>", on stderr. Flags may come before or after the
// positional arguments.
package cabcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/opendus/opendus/cabingest/cab"
)

const usage = `Usage: devsvc cab <command> [arguments]

Work with Microsoft cabinet (.cab) files, the container UC phones and
conference units receive firmware in.

Commands:
  list FILE [--json]        list the files: name, size, date, folder, compression
  extract FILE [-C DIR]     extract every file under DIR (default: current directory)
  test FILE [--json]        decode everything and verify checksums; write nothing
  pack -o OUT [--compression none|mszip|lzx[:WINDOW]] [--split SIZE] PATH...
                            create a cabinet from files and directories

FILE may be any cabinet of a set (disk1.cab, disk2.cab, ...): as with
cabextract, the whole set is listed, tested or extracted, its other
cabinets found by the names stored in them, in the same directory
(ignoring case). A cabinet embedded in another file (a self-extracting
.exe) is found by scanning for it; when a file holds several cabinets,
each is listed, tested or extracted in turn, as cabextract does.

Extraction never writes outside DIR: absolute names, ".." and links are
neutralised ("/etc/x" becomes "etc/x", ".." becomes "xx"), and
backslashes separate directories as on Windows.

pack stores a directory's files under names relative to that directory
and a file under its base name, with backslash separators. --compression
defaults to mszip; lzx takes a window of 15..21 bits (default 21, 2 MiB).
--split SIZE (bytes, or with K, M or G suffix, at least 64K) writes a set
OUT, OUT-2, OUT-3, ... whose files are each at most SIZE bytes.

Examples:
  devsvc cab list UCUpdates.cab
  devsvc cab list UCUpdates.cab --json | jq '.[].name'
  devsvc cab test UCUpdates.cab
  devsvc cab test disk1.cab --json | jq '.[].parts'
  devsvc cab extract UCUpdates.cab -C /srv/firmware/ucupdates
  devsvc cab extract setup.exe -C out            # cabinet inside an .exe
  devsvc cab pack -o fw.cab --compression lzx:21 build/
  devsvc cab pack -o disk.cab --split 1440K --compression mszip firmware/ notes.txt
`

// errUsage marks usage errors (exit status 2).
var errUsage = errors.New("usage")

// Main runs "devsvc cab" with args (not including "cab") and returns the
// exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := run(ctx, args, stdout)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "devsvc cab: %s (see devsvc cab --help)\n", oneLine(err))
		return 2
	}
	fmt.Fprintf(stderr, "devsvc cab: %s\n", oneLine(err))
	return 1
}

func oneLine(err error) string {
	s := strings.TrimSuffix(err.Error(), ": "+errUsage.Error())
	return strings.ReplaceAll(s, "\n", "; ")
}

func usagef(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errUsage)...)
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("missing command")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "-h", "-help", "--help", "help":
		return flag.ErrHelp
	case "list":
		return list(ctx, args, stdout)
	case "extract":
		return extract(ctx, args, stdout)
	case "test":
		return test(ctx, args, stdout)
	case "pack":
		return pack(ctx, args, stdout)
	}
	return usagef("unknown command %q", cmd)
}

// parse parses flags anywhere among the arguments and returns the
// positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// open opens the cabinets (sets) in the file at path.
func open(path string) (cabinets, error) {
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return cab.OpenAll(root, filepath.Base(path), nil)
}

// cabinets are the cabinets of one file.
type cabinets []*cab.Cabinet

func (cs cabinets) Close() {
	for _, c := range cs {
		c.Close()
	}
}

// openArg parses a command's flags and opens the cabinets of the one file
// (or first part of a set) it names.
func openArg(cmd string, fs *flag.FlagSet, args []string) (cabinets, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != 1 {
		return nil, usagef("%s takes one cabinet file, got %d arguments", cmd, len(pos))
	}
	return open(pos[0])
}

type jsonFile struct {
	Name        string    `json:"name"`
	Path        string    `json:"path"`
	Size        int64     `json:"size"`
	Modified    time.Time `json:"modified,omitzero"` // left out when the cabinet has no date
	Folder      int       `json:"folder"`
	Compression string    `json:"compression"`
	Attributes  uint16    `json:"attributes"`
	// Cabinet names the cabinet holding the file when the file holds
	// several (see cab.OpenAll).
	Cabinet string `json:"cabinet,omitempty"`
}

// options are the flags of the commands; newFlagSet registers a
// command's own.
type options struct {
	json                    bool
	dir, out, comp, splitAt string
}

func newFlagSet(cmd string, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	switch cmd {
	case "list", "test":
		fs.BoolVar(&o.json, "json", false, "print JSON")
	case "extract":
		fs.StringVar(&o.dir, "C", ".", "extract under `DIR`")
	case "pack":
		fs.StringVar(&o.out, "o", "", "write the cabinet to `OUT`")
		fs.StringVar(&o.comp, "compression", "mszip", "none, mszip or lzx[:WINDOW]")
		fs.StringVar(&o.splitAt, "split", "", "split into cabinets of at most `SIZE` bytes")
	}
	return fs
}

func list(_ context.Context, args []string, stdout io.Writer) error {
	var o options
	fs := newFlagSet("list", &o)
	asJSON := &o.json
	cs, err := openArg("list", fs, args)
	if err != nil {
		return err
	}
	defer cs.Close()
	if *asJSON {
		out := []jsonFile{}
		for _, c := range cs {
			name := ""
			if len(cs) > 1 {
				name = c.Name()
			}
			for _, f := range c.Files() {
				out = append(out, jsonFile{f.Name, f.Path(), f.Size, f.Modified, f.Folder, f.Compression.String(), f.Attrs, name})
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', tabwriter.AlignRight)
	for i, c := range cs {
		if len(cs) > 1 {
			if i > 0 {
				fmt.Fprintln(tw)
			}
			fmt.Fprintf(tw, "\t\t\t\t\t%s:\n", printable(c.Name()))
		}
		fmt.Fprintln(tw, "SIZE\tDATE\tFOLDER\tCOMPRESSION\t\tNAME")
		var total int64
		for _, f := range c.Files() {
			date := "-"
			if !f.Modified.IsZero() {
				date = f.Modified.Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t\t%s\n", f.Size, date, f.Folder, f.Compression, printable(f.Name))
			total += f.Size
		}
		fmt.Fprintf(tw, "%d\t\t\t\t\t%d files in %d folders, %s\n", total, len(c.Files()), c.Folders(), partsOf(c))
	}
	return tw.Flush()
}

func extract(ctx context.Context, args []string, stdout io.Writer) error {
	var o options
	fs := newFlagSet("extract", &o)
	dir := &o.dir
	cs, err := openArg("extract", fs, args)
	if err != nil {
		return err
	}
	defer cs.Close()
	for _, c := range cs {
		if err := c.ExtractAll(ctx, *dir); err != nil {
			return err
		}
	}
	return nil
}

// jsonTested is a cabinet (set) test --json found whole.
type jsonTested struct {
	Cabinet string `json:"cabinet"`
	Files   int    `json:"files"`
	Bytes   int64  `json:"bytes"`
	// Parts are the cabinets of a set, first to last (one for a single
	// cabinet).
	Parts []string `json:"parts"`
}

func test(ctx context.Context, args []string, stdout io.Writer) error {
	var o options
	fs := newFlagSet("test", &o)
	asJSON := &o.json
	cs, err := openArg("test", fs, args)
	if err != nil {
		return err
	}
	defer cs.Close()
	tested := []jsonTested{}
	for _, c := range cs {
		if err := c.Test(ctx); err != nil {
			return err
		}
		var total int64
		for _, f := range c.Files() {
			total += f.Size
		}
		if *asJSON {
			tested = append(tested, jsonTested{c.Name(), len(c.Files()), total, append([]string{}, c.Parts()...)})
			continue
		}
		fmt.Fprintf(stdout, "%s: OK, %d files, %d bytes", printable(c.Name()), len(c.Files()), total)
		if len(c.Parts()) > 1 {
			fmt.Fprintf(stdout, ", %s", partsOf(c))
		}
		fmt.Fprintln(stdout)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(tested)
	}
	return nil
}

// partsOf describes the cabinets of c: "1 cabinet", or "5 cabinets
// (disk1.cab to disk5.cab)" for a set, whichever of them was named.
func partsOf(c *cab.Cabinet) string {
	parts := c.Parts()
	if len(parts) == 1 {
		return "1 cabinet"
	}
	return fmt.Sprintf("%d cabinets (%s to %s)", len(parts), printable(parts[0]), printable(parts[len(parts)-1]))
}

// ParseCompression parses "none", "mszip", "lzx" or "lzx:WINDOW".
func ParseCompression(s string) (cab.Compression, error) {
	name, win, hasWin := strings.Cut(strings.ToLower(s), ":")
	switch {
	case name == "none" && !hasWin:
		return cab.Compression{Type: cab.CompressNone}, nil
	case name == "mszip" && !hasWin:
		return cab.Compression{Type: cab.CompressMSZIP}, nil
	case name == "lzx":
		w := 21
		if hasWin {
			n, err := strconv.Atoi(win)
			if err != nil || n < 15 || n > 21 {
				return cab.Compression{}, usagef("lzx window %q is not 15..21", win)
			}
			w = n
		}
		return cab.Compression{Type: cab.CompressLZX, Window: w}, nil
	}
	return cab.Compression{}, usagef("unknown compression %q (none, mszip, lzx[:15..21])", s)
}

// ParseSize parses a byte count with an optional K, M or G suffix (powers
// of 1024).
func ParseSize(s string) (int64, error) {
	mult := int64(1)
	t := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(s, "B"), "i"))
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, t[:len(t)-1]
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, t[:len(t)-1]
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<32)/mult {
		return 0, usagef("invalid size %q", s)
	}
	return n * mult, nil
}

func pack(ctx context.Context, args []string, stdout io.Writer) error {
	var o options
	fs := newFlagSet("pack", &o)
	out, compression, split := &o.out, &o.comp, &o.splitAt
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("pack needs -o OUT")
	}
	if len(pos) == 0 {
		return usagef("pack needs files or directories to pack")
	}
	comp, err := ParseCompression(*compression)
	if err != nil {
		return err
	}
	cfg := &cab.WriterConfig{Compression: comp, SetID: uint16(time.Now().Unix())}
	if *split != "" {
		if cfg.SplitSize, err = ParseSize(*split); err != nil {
			return err
		}
	}
	w, err := cab.NewWriter(cfg)
	if err != nil {
		return err
	}
	for _, p := range pos {
		if err := addPath(w, p); err != nil {
			return err
		}
	}
	root, err := os.OpenRoot(filepath.Dir(*out))
	if err != nil {
		return err
	}
	defer root.Close()
	names, err := w.Write(ctx, root, filepath.Base(*out))
	if err != nil {
		return err
	}
	if len(names) > 1 {
		fmt.Fprintf(stdout, "wrote %d cabinets: %s\n", len(names), strings.Join(names, ", "))
	}
	return nil
}

// addPath adds a file under its base name, or a directory's regular files
// under names relative to it, in sorted order. Symbolic links are not
// followed.
func addPath(w *cab.Writer, p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		return w.AddFile(filepath.Base(p), p)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a regular file or directory", p)
	}
	var files []string
	err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, q)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, q := range files {
		rel, err := filepath.Rel(p, q)
		if err != nil {
			return err
		}
		if err := w.AddFile(filepath.ToSlash(rel), q); err != nil {
			return err
		}
	}
	return nil
}

// printable escapes what a terminal would not show as it is in a name:
// control and other non-graphic characters (\t, \x1b, \u200b) and
// invalid UTF-8 (\xff). Everything else is shown as the cabinet stores
// it, a backslash as one backslash (UCPhone\CX600.nbt), so a name reads
// as Windows wrote it; the JSON of list --json is the exact form.
func printable(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == ' ' || unicode.IsGraphic(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}
