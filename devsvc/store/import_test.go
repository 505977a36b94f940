package store

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

func TestImport(t *testing.T) {
	off := false
	tests := []struct {
		name        string
		opts        *Options
		before      []firmware.ImportUpdate // imported first
		bundle      []firmware.ImportUpdate
		wantErr     error
		wantRule    firmware.Rule // versions only
		wantDeploy  bool
		wantSame    bool
		wantActions []string // actions the bundle added to the history
	}{
		{
			name:        "new phone version is pending",
			bundle:      []firmware.ImportUpdate{update(phone, v1)},
			wantRule:    firmware.Rule{Pending: v1},
			wantActions: []string{ActionImport},
		},
		{
			name:        "RoundTable deploys on import",
			bundle:      []firmware.ImportUpdate{update(table, v1)},
			wantRule:    firmware.Rule{Approved: v1},
			wantDeploy:  true,
			wantActions: []string{ActionImport, ActionApprove},
		},
		{
			name:        "RoundTable deployment turned off",
			opts:        &Options{DeployRoundTable: &off},
			bundle:      []firmware.ImportUpdate{update(table, v1)},
			wantRule:    firmware.Rule{Pending: v1},
			wantActions: []string{ActionImport},
		},
		{
			name:        "newer version refreshes pending",
			before:      []firmware.ImportUpdate{update(phone, v1)},
			bundle:      []firmware.ImportUpdate{update(phone, v2)},
			wantRule:    firmware.Rule{Pending: v2},
			wantActions: []string{ActionImport},
		},
		{
			name:     "same version again is unchanged",
			before:   []firmware.ImportUpdate{update(phone, v1)},
			bundle:   []firmware.ImportUpdate{update(phone, v1)},
			wantRule: firmware.Rule{Pending: v1},
			wantSame: true,
		},
		{
			name:   "same content without digests is unchanged",
			before: []firmware.ImportUpdate{update(phone, v1)},
			bundle: []firmware.ImportUpdate{{Identity: phone, Version: v1, Files: []firmware.ImportFile{
				unknownFile("CX600.nbt", content("nbt", v1, 3000)),
				unknownFile("CX600.cat", content("cat", v1, 200)),
				unknownFile("CX600.xml", content("xml", v1, 100)),
			}}},
			wantRule: firmware.Rule{Pending: v1},
			wantSame: true,
		},
		{
			name:     "approved RoundTable version again is unchanged",
			before:   []firmware.ImportUpdate{update(table, v1)},
			bundle:   []firmware.ImportUpdate{update(table, v1)},
			wantRule: firmware.Rule{Approved: v1},
			wantSame: true,
		},
		{
			name:   "same version with other content is a conflict",
			before: []firmware.ImportUpdate{update(phone, v1)},
			bundle: []firmware.ImportUpdate{{Identity: phone, Version: v1, Files: []firmware.ImportFile{
				file("CX600.nbt", content("other", v1, 3000)),
				file("CX600.cat", content("cat", v1, 200)),
				file("CX600.xml", content("xml", v1, 100)),
			}}},
			wantErr: ErrConflict,
		},
		{
			name:   "same version with other unknown content is a conflict",
			before: []firmware.ImportUpdate{update(phone, v1)},
			bundle: []firmware.ImportUpdate{{Identity: phone, Version: v1, Files: []firmware.ImportFile{
				unknownFile("CX600.nbt", content("other", v1, 3000)),
				unknownFile("CX600.cat", content("cat", v1, 200)),
				unknownFile("CX600.xml", content("xml", v1, 100)),
			}}},
			wantErr: ErrConflict,
		},
		{
			name:   "same version with other files is a conflict",
			before: []firmware.ImportUpdate{update(phone, v1)},
			bundle: []firmware.ImportUpdate{{Identity: phone, Version: v1, Files: []firmware.ImportFile{
				file("CX600.nbt", content("nbt", v1, 3000)),
			}}},
			wantErr: ErrConflict,
		},
		{
			// A plain tree (no description), then the bundle packed from
			// it: the description is metadata, the images are the same.
			name:     "same images with a description added is unchanged",
			before:   []firmware.ImportUpdate{withoutDescription(update(phone, v1))},
			bundle:   []firmware.ImportUpdate{update(phone, v1)},
			wantRule: firmware.Rule{Pending: v1},
			wantSame: true,
		},
		{
			name:     "same images without the description is unchanged",
			before:   []firmware.ImportUpdate{update(phone, v1)},
			bundle:   []firmware.ImportUpdate{withoutDescription(update(phone, v1))},
			wantRule: firmware.Rule{Pending: v1},
			wantSame: true,
		},
		{
			name:   "same images with another description is unchanged",
			before: []firmware.ImportUpdate{update(phone, v1)},
			bundle: []firmware.ImportUpdate{{Identity: phone, Version: v1, Files: []firmware.ImportFile{
				file("CX600.nbt", content("nbt", v1, 3000)),
				file("CX600.cat", content("cat", v1, 200)),
				unknownFile("Other.xml", content("other description", v1, 120)),
			}}},
			wantRule: firmware.Rule{Pending: v1},
			wantSame: true,
		},
		{
			name:   "other images with a description added is a conflict",
			before: []firmware.ImportUpdate{withoutDescription(update(phone, v1))},
			bundle: []firmware.ImportUpdate{{Identity: phone, Version: v1, Files: []firmware.ImportFile{
				file("CX600.nbt", content("other", v1, 3000)),
				file("CX600.cat", content("cat", v1, 200)),
				file("CX600.xml", content("xml", v1, 100)),
			}}},
			wantErr: ErrConflict,
		},
		{
			name: "wrong digest",
			bundle: []firmware.ImportUpdate{func() firmware.ImportUpdate {
				u := update(phone, v1)
				u.Files[1].SHA256 = &[32]byte{1}
				return u
			}()},
			wantErr: ErrIntegrity,
		},
		{
			name: "too short",
			bundle: []firmware.ImportUpdate{func() firmware.ImportUpdate {
				u := update(phone, v1)
				u.Files[0].Size++
				return u
			}()},
			wantErr: ErrIntegrity,
		},
		{
			name: "too long",
			bundle: []firmware.ImportUpdate{func() firmware.ImportUpdate {
				u := update(phone, v1)
				u.Files[0].Size--
				return u
			}()},
			wantErr: ErrIntegrity,
		},
		{
			name:    "invalid identity",
			bundle:  []firmware.ImportUpdate{update(firmware.Identity{DeviceType: "Toaster", Vendor: "a", Model: "b", Revision: "c", Locale: "d"}, v1)},
			wantErr: firmware.ErrIdentity,
		},
		{
			name:    "identity that climbs out",
			bundle:  []firmware.ImportUpdate{update(firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "..", Model: "..", Revision: "..", Locale: ".."}, v1)},
			wantErr: firmware.ErrIdentity,
		},
		{
			name:    "no version",
			bundle:  []firmware.ImportUpdate{update(phone, firmware.Version{})},
			wantErr: firmware.ErrVersion,
		},
		{
			name: "file name with a slash",
			bundle: []firmware.ImportUpdate{func() firmware.ImportUpdate {
				u := update(phone, v1)
				u.Files[0].Name = "../../x.nbt"
				return u
			}()},
			wantErr: errAny,
		},
		{
			name:    "no files",
			bundle:  []firmware.ImportUpdate{{Identity: phone, Version: v1}},
			wantErr: errAny,
		},
		{
			name:    "update twice in a bundle",
			bundle:  []firmware.ImportUpdate{update(phone, v1), update(phone, v1)},
			wantErr: errAny,
		},
		{
			name: "content that cannot be opened",
			bundle: []firmware.ImportUpdate{func() firmware.ImportUpdate {
				u := update(phone, v1)
				u.Files[2].Open = func() (io.ReadCloser, error) { return nil, os.ErrPermission }
				return u
			}()},
			wantErr: os.ErrPermission,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, tt.opts)
			ctx := context.Background()
			if tt.before != nil {
				mustImport(t, s, tt.before...)
			}
			seq := s.Catalog().Seq()
			files := diskFiles(t, s.Dir())
			res, err := s.Import(ctx, "alice", tt.bundle, ImportOptions{})
			if tt.wantErr != nil {
				if err == nil || (tt.wantErr != errAny && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("Import = %v, want %v", err, tt.wantErr)
				}
				if got := s.Catalog().Seq(); got != seq {
					t.Errorf("after a refused import, Seq = %d, want %d", got, seq)
				}
				if diff := cmp.Diff(files, diskFiles(t, s.Dir())); diff != "" {
					t.Errorf("a refused import changed the disk (-before +after):\n%s", diff)
				}
				checkConsistent(t, s)
				return
			}
			if err != nil {
				t.Fatalf("Import = %v", err)
			}
			r := res[0].Rule
			if got := (firmware.Rule{Pending: r.Pending, Approved: r.Approved, Restore: r.Restore}); got != tt.wantRule {
				t.Errorf("rule versions = %+v, want %+v", got, tt.wantRule)
			}
			if res[0].Deployed != tt.wantDeploy || res[0].Unchanged != tt.wantSame {
				t.Errorf("Deployed, Unchanged = %v, %v; want %v, %v", res[0].Deployed, res[0].Unchanged, tt.wantDeploy, tt.wantSame)
			}
			if tt.wantSame {
				if diff := cmp.Diff(files, diskFiles(t, s.Dir())); diff != "" {
					t.Errorf("an unchanged import changed the disk (-before +after):\n%s", diff)
				}
			}
			snap, ok := s.Catalog().Rule(r.Identity)
			if !ok || !cmp.Equal(snap, r) {
				t.Errorf("Catalog().Rule = %+v, %v; want %+v", snap, ok, r)
			}
			es, err := s.History(ctx, seq, 0)
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range es {
				actions = append(actions, e.Action)
				if e.Actor != "alice" || e.Rule != r.ID || e.Version != tt.bundle[0].Version {
					t.Errorf("event %+v: want actor alice, rule %s, version %s", e, r.ID, tt.bundle[0].Version)
				}
			}
			if diff := cmp.Diff(tt.wantActions, actions); diff != "" {
				t.Errorf("history actions (-want +got):\n%s", diff)
			}
			u, ok := s.Catalog().Update(r.Identity, tt.bundle[0].Version)
			if !ok {
				t.Fatalf("Catalog().Update(%s, %s) not found", r.Identity, tt.bundle[0].Version)
			}
			if !cmp.Equal(u, res[0].Update) {
				t.Errorf("Catalog().Update = %+v, want %+v", u, res[0].Update)
			}
			for _, f := range u.Files {
				if want := firmware.RoleOf(f.Name); f.Role != want {
					t.Errorf("file %s role %q, want %q", f.Name, f.Role, want)
				}
			}
			checkConsistent(t, s)
		})
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

// TestImportBundleAtomic imports a bundle whose last file has a wrong
// digest: nothing of it may remain, in the database or on disk.
func TestImportBundleAtomic(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	mustImport(t, s, update(phone, v1))
	rulesBefore := s.Catalog().Rules()
	files := diskFiles(t, s.Dir())
	stats, _ := s.Stats(ctx)

	bad := update(table, v1)
	sum := *bad.Files[2].SHA256
	sum[0] ^= 1
	bad.Files[2].SHA256 = &sum
	_, err := s.Import(ctx, "admin", []firmware.ImportUpdate{update(phone, v2), update(phone2, v1), bad}, ImportOptions{})
	if !errors.Is(err, ErrIntegrity) {
		t.Fatalf("Import(bundle with a bad digest) = %v, want ErrIntegrity", err)
	}
	if !strings.Contains(err.Error(), "CX600.xml") {
		t.Errorf("error %q does not name the file", err)
	}
	if diff := cmp.Diff(rulesBefore, s.Catalog().Rules()); diff != "" {
		t.Errorf("rules changed (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(files, diskFiles(t, s.Dir())); diff != "" {
		t.Errorf("disk changed (-before +after):\n%s", diff)
	}
	if got, _ := s.Stats(ctx); got != stats {
		t.Errorf("Stats = %+v, want %+v", got, stats)
	}
	if _, _, err := s.OpenFile(phone, v2, "CX600.nbt"); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenFile of the refused update = %v, want ErrNotFound", err)
	}
	checkConsistent(t, s)
}

func TestImportCancelled(t *testing.T) {
	s := openTest(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	u := update(phone, v1)
	u.Files[1].Open = func() (io.ReadCloser, error) {
		cancel()
		return io.NopCloser(strings.NewReader(string(content("cat", v1, 200)))), nil
	}
	if _, err := s.Import(ctx, "admin", []firmware.ImportUpdate{u}, ImportOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Import with ctx cancelled midway = %v, want context.Canceled", err)
	}
	if files := diskFiles(t, s.Dir()); len(files) != 0 {
		t.Errorf("files after a cancelled import: %v", files)
	}
	checkConsistent(t, s)
}

func TestImportProgress(t *testing.T) {
	s := openTest(t, nil)
	big := content("big", v1, 5<<20+123)
	u := firmware.ImportUpdate{Identity: phone, Version: v1, Files: []firmware.ImportFile{file("CX600.nbt", big), unknownFile("CX600.xml", []byte("<x/>"))}}
	var calls [][2]int64
	_, err := s.Import(context.Background(), "admin", []firmware.ImportUpdate{u}, ImportOptions{Progress: func(done, total int64) {
		calls = append(calls, [2]int64{done, total})
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) < 5 {
		t.Errorf("%d progress calls for 5 MB, want one at least every MB: %v", len(calls), calls)
	}
	var last int64
	for _, c := range calls {
		if c[1] != int64(len(big)) {
			t.Errorf("progress total = %d, want %d (known sizes)", c[1], len(big))
		}
		if c[0] < last || c[0]-last > 2<<20 {
			t.Errorf("progress went from %d to %d", last, c[0])
		}
		last = c[0]
	}
	if want := int64(len(big) + 4); last != want {
		t.Errorf("last progress done = %d, want %d", last, want)
	}
}

func TestOpenFile(t *testing.T) {
	s := openTest(t, nil)
	u := update(phone, v1)
	mustImport(t, s, u)
	for _, tt := range []struct {
		id      firmware.Identity
		v       firmware.Version
		name    string
		want    []byte
		wantErr error
	}{
		{phone, v1, "CX600.nbt", content("nbt", v1, 3000), nil},
		{phone, v1, "CX600.xml", content("xml", v1, 100), nil},
		{phone, v1, "CX600.bin", nil, ErrNotFound},
		{phone, v1, "../../../../../../../opendus.db", nil, ErrNotFound},
		{phone, v2, "CX600.nbt", nil, ErrNotFound},
		{phone2, v1, "CX600.nbt", nil, ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, im, err := s.OpenFile(tt.id, tt.v, tt.name)
			if !isErr(err, tt.wantErr) {
				t.Fatalf("OpenFile(%s, %s, %q) = %v, want %v", tt.id, tt.v, tt.name, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer f.Close()
			got, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			if !cmp.Equal(got, tt.want) || im.Size != int64(len(tt.want)) || im.Name != tt.name {
				t.Errorf("OpenFile(%q): %d bytes, image %+v; want %d bytes", tt.name, len(got), im, len(tt.want))
			}
			if _, err := f.Write([]byte("x")); err == nil {
				t.Errorf("OpenFile returned a writable file")
			}
		})
	}
}

// withoutDescription returns u without its description, as a plain tree
// brings it.
func withoutDescription(u firmware.ImportUpdate) firmware.ImportUpdate {
	u.Files = slices.DeleteFunc(slices.Clone(u.Files), func(f firmware.ImportFile) bool {
		return firmware.RoleOf(f.Name) == firmware.RoleDescription
	})
	return u
}
