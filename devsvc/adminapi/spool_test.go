package adminapi

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	pb "github.com/opendus/opendus/devsvc/adminapi/adminpb"
	"github.com/opendus/opendus/internal/testtool"
)

// TestImportClosesSpoolFiles runs imports that fail at every stage, with
// the spool on a small file system that the last one fills: once the
// server has finished them, no file under the spool is open any more, the
// spool is empty and its space is free again. An open, removed spool file
// would keep its space until the garbage collector closed it.
func TestImportClosesSpoolFiles(t *testing.T) {
	const spoolSize = 512 << 10
	spool := testtool.TmpFS(t, spoolSize)
	h := newHarnessSpool(t, nil, spool)
	const dir = "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/"
	cabinet := &pb.ImportRequest{Part: &pb.ImportRequest_Header{Header: &pb.ImportHeader{Kind: pb.ImportHeader_CABINET, Name: "c.cab"}}}
	big := strings.Repeat("x", 256<<10)
	tests := []struct {
		name   string
		msgs   []*pb.ImportRequest
		cancel bool // the client goes away after sending msgs
	}{
		{"bad path after an open file", []*pb.ImportRequest{hdr(), file(dir+"a.nbt", 1), data("x"), file("../x", 1)}, false},
		{"file longer than said", []*pb.ImportRequest{hdr(), file(dir+"a.nbt", 1), data("xx")}, false},
		{"last file shorter than said", []*pb.ImportRequest{hdr(), file(dir+"a.nbt", 5), data("xx")}, false},
		{"too many bytes", []*pb.ImportRequest{hdr(), file(dir+"a.nbt", 2<<20), data(big), data(big), data(big), data(big), data(big)}, false},
		{"not a bundle", []*pb.ImportRequest{hdr(), file(dir+"a.txt", 3), data("abc"), file("UCPhone/x/y", 1), data("x")}, false},
		{"client gone mid-file", []*pb.ImportRequest{hdr(), file(dir+"a.nbt", 100), data("x")}, true},
		{"not a cabinet", []*pb.ImportRequest{cabinet, data("MSCF not really")}, false},
		{"client gone mid-cabinet", []*pb.ImportRequest{cabinet, data("MSCF")}, true},
		// 768 KiB, within max_import_bytes, on a spool of 512 KiB.
		{"spool disk full", []*pb.ImportRequest{hdr(), file(dir+"a.nbt", 3*int64(len(big))), data(big), data(big), data(big)}, false},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithCancel(ctx(t))
		stream, err := h.client.c.Import(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range tt.msgs {
			if err := stream.Send(m); err != nil {
				break
			}
		}
		if tt.cancel {
			cancel()
			continue
		}
		if _, err := stream.CloseAndRecv(); err == nil {
			t.Errorf("%s: import succeeded, want it refused", tt.name)
		}
		cancel()
	}
	h.grpc.GracefulStop() // every handler has returned

	if open := openUnder(t, spool); len(open) > 0 {
		t.Errorf("spool files still open after the imports ended: %q", open)
	}
	if entries, err := os.ReadDir(spool); err != nil || len(entries) > 0 {
		t.Errorf("spool after the imports ended: %v, %v; want empty", entries, err)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(spool, &fs); err != nil {
		t.Fatal(err)
	}
	if free := int64(fs.Bavail) * fs.Bsize; free != spoolSize {
		t.Errorf("%d of %d bytes of the spool free after the imports ended, want all: a removed file is still open", free, spoolSize)
	}
}

// openUnder lists this process's open files under dir, from /proc/self/fd.
func openUnder(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var open []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") {
			open = append(open, target)
		}
	}
	return open
}
