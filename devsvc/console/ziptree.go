package console

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/opendus/opendus/cabingest"
	"github.com/opendus/opendus/devsvc/service"
)

// treeSink takes the files of an update tree; *service.Upload is one.
type treeSink interface {
	TreeFile(p string, size int64) (io.WriteCloser, error)
}

// zipReport says what unzipTree did.
type zipReport struct {
	Files   int
	Bytes   int64
	Skipped []string // entries that are no part of a tree (__MACOSX/, .DS_Store)
}

// junk reports whether a zip entry is an archiver's or a desktop's extra
// file rather than part of a tree: skipped, and listed.
func junk(name string) bool {
	base := path.Base(name)
	return strings.HasPrefix(name, "__MACOSX/") || base == ".DS_Store" || strings.EqualFold(base, "Thumbs.db") || strings.EqualFold(base, "desktop.ini")
}

// unzipTree puts the files of a zipped update tree into sink, entry by
// entry, each with the size its header states (the sink refuses more or
// fewer bytes, and archive/zip checks each entry's CRC). Names are
// checked before anything is written: a name that is absolute, has a
// backslash, a "." or ".." component, or does not fit the tree's layout
// ([DeviceUpdateFiles/]DeviceType/Vendor/Model/Revision/Locale/Version/
// file) is refused, and every such problem is listed, wrapping
// service.ErrInvalid. When every file is under one directory that is not
// part of the layout (the zip was made of a folder holding the tree), that
// directory is stripped. At most maxEntries entries are read.
func unzipTree(ctx context.Context, zr *zip.Reader, sink treeSink, maxEntries int) (zipReport, error) {
	var rep zipReport
	if len(zr.File) > maxEntries {
		return rep, fmt.Errorf("%w: the zip has %d entries, more than %d", service.ErrTooLarge, len(zr.File), maxEntries)
	}
	var files []*zip.File
	var problems []error
	for _, f := range zr.File {
		name := f.Name
		switch {
		case strings.HasSuffix(name, "/") && f.UncompressedSize64 == 0:
			continue // a directory
		case junk(name):
			rep.Skipped = append(rep.Skipped, name)
			continue
		case name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || strings.ContainsRune(name, 0):
			problems = append(problems, fmt.Errorf("%q: not a relative path with forward slashes", name))
			continue
		case !f.Mode().IsRegular():
			problems = append(problems, fmt.Errorf("%q: not a regular file (%v)", name, f.Mode().Type()))
			continue
		}
		for _, part := range strings.Split(name, "/") {
			if part == "" || part == "." || part == ".." {
				problems = append(problems, fmt.Errorf("%q: empty, . or .. in the path", name))
				break
			}
		}
		files = append(files, f)
	}
	if len(problems) > 0 {
		return rep, fmt.Errorf("%w: %w", service.ErrInvalid, errors.Join(problems...))
	}
	if len(files) == 0 {
		return rep, fmt.Errorf("%w: the zip holds no file of an update tree", service.ErrInvalid)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	names = stripFolder(names)
	for i, n := range names {
		if _, err := cabingest.ParseTreePath(n); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", files[i].Name, err))
		}
	}
	if len(problems) > 0 {
		return rep, fmt.Errorf("%w: %w", service.ErrInvalid, errors.Join(problems...))
	}
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		n, err := copyEntry(sink, names[i], f)
		rep.Bytes += n
		if err != nil {
			return rep, err
		}
		rep.Files++
	}
	return rep, nil
}

// stripFolder strips the first component of every name when they all
// share it and it is not where a tree starts (DeviceUpdateFiles, or a
// device type: a path of the layout has 7 components after it).
func stripFolder(names []string) []string {
	first, _, _ := strings.Cut(names[0], "/")
	for _, n := range names {
		f, rest, ok := strings.Cut(n, "/")
		if !ok || f != first {
			return names
		}
		if f == cabingest.TreeRoot || strings.Count(strings.TrimPrefix(rest, cabingest.TreeRoot+"/"), "/") < 6 {
			return names
		}
	}
	out := make([]string, len(names))
	for i, n := range names {
		_, out[i], _ = strings.Cut(n, "/")
	}
	return out
}

func copyEntry(sink treeSink, name string, f *zip.File) (int64, error) {
	if f.UncompressedSize64 > 1<<62 {
		return 0, fmt.Errorf("%w: %s: states %d bytes", service.ErrTooLarge, f.Name, f.UncompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", service.ErrInvalid, f.Name, err)
	}
	defer rc.Close()
	w, err := sink.TreeFile(name, int64(f.UncompressedSize64))
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(w, rc)
	if err != nil {
		w.Close()
		if errors.Is(err, zip.ErrChecksum) || errors.Is(err, zip.ErrFormat) || errors.Is(err, io.ErrUnexpectedEOF) {
			return n, fmt.Errorf("%w: %s: %v", service.ErrInvalid, f.Name, err)
		}
		return n, err
	}
	return n, w.Close()
}
