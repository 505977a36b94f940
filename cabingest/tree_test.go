package cabingest

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opendus/opendus/firmware"
)

func TestParseTreePath(t *testing.T) {
	tests := []struct {
		in      string
		wantErr error
	}{
		{"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt", nil},
		{"DeviceUpdateFiles/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt", nil},
		{"RoundTable/Microsoft/RoundTable/A/ENU/1.0.522.101/rt.cat", nil},
		{"UCPhone/Polycom/CX600/A/ENU/CX600.nbt", ErrLayout},
		{"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/sub/CX600.nbt", ErrLayout},
		{"UCPhone/Polycom/CX600/A/ENU/4.0/CX600.nbt", firmware.ErrVersion},
		{"Phone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt", firmware.ErrIdentity},
		{"UCPhone/../CX600/A/ENU/4.0.7577.4372/CX600.nbt", firmware.ErrIdentity},
		{"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/..", ErrLayout},
		{`UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/a\b.nbt`, ErrLayout},
		{"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/a\x00b.nbt", ErrLayout},
		{"/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/x.nbt", ErrLayout},
	}
	for _, tt := range tests {
		e, err := ParseTreePath(tt.in)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr != nil) != (err != nil) {
			t.Errorf("ParseTreePath(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && (e.Identity.Model != "CX600" && e.Identity.Model != "RoundTable" || e.Version.IsZero() || e.Name == "") {
			t.Errorf("ParseTreePath(%q) = %+v", tt.in, e)
		}
	}
}

func TestTreeUpdates(t *testing.T) {
	open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil }
	var tr Tree
	if _, err := tr.Updates(); !errors.Is(err, ErrLayout) {
		t.Errorf("empty tree: %v, want ErrLayout", err)
	}
	for _, p := range []string{
		"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt",
		"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.cat",
		"UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.xml",
		"RoundTable/Microsoft/RoundTable/A/ENU/1.0.522.101/rt.nbt",
	} {
		if err := tr.Add(p, 0, open); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Add("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/cx600.NBT", 0, open); err == nil {
		t.Errorf("a file differing only in case was accepted")
	}
	us, err := tr.Updates()
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 2 || us[0].Identity.DeviceType != firmware.RoundTable || len(us[1].Files) != 3 {
		t.Fatalf("updates = %+v", us)
	}
	roles := map[firmware.Role]int{}
	for _, f := range us[1].Files {
		roles[f.Role]++
	}
	if roles[firmware.RoleImage] != 1 || roles[firmware.RoleCatalog] != 1 || roles[firmware.RoleDescription] != 1 {
		t.Errorf("roles = %v, want one of each", roles)
	}
	if err := tr.Add("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4373/CX600.nbt", 0, open); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Updates(); err == nil || !strings.Contains(err.Error(), "two versions") {
		t.Errorf("two versions of one identity: %v", err)
	}
}
