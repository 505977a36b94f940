package cabingest

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/firmware"
)

const sumA = "8d5e957f297893487bd98fa830fa6413c5b2b1ca1b2d0f1f3f1c0c9e8a7b6c5d"

// descDoc builds a description document around body (the elements inside
// UpdateDescription).
func descDoc(body string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<UpdateDescription xmlns="urn:opendus:update-description:1" schemaVersion="1">` + body + `</UpdateDescription>`
}

const goodBody = `
  <Identity>
    <DeviceType>UCPhone</DeviceType><Vendor>Polycom</Vendor><Model>CX600</Model>
    <Revision>A</Revision><Locale>ENU</Locale>
  </Identity>
  <Version>4.0.7577.4372</Version>
  <UpdateType>Firmware</UpdateType>
  <File name="CX600.nbt" size="10" sha256="` + sumA + `"/>
  <File name="CX600.cat" role="catalog" size="0" sha256="` + sumA + `"/>
`

func TestParseDescription(t *testing.T) {
	var sum [32]byte
	copy(sum[:], mustHex(t, sumA))
	want := &Description{
		Identity:   firmware.Identity{DeviceType: "UCPhone", Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"},
		Version:    firmware.MustParseVersion("4.0.7577.4372"),
		UpdateType: "Firmware",
		Files: []DescribedFile{
			{Name: "CX600.nbt", Role: firmware.RoleImage, Size: 10, SHA256: sum},
			{Name: "CX600.cat", Role: firmware.RoleCatalog, Size: 0, SHA256: sum},
		},
	}
	good := []struct{ name, doc string }{
		{"plain", descDoc(goodBody)},
		{"comments and prefix", prefixed(descDoc("<!-- vendor note -->" + goodBody))},
		{"extension elements", descDoc(goodBody + `<x:Notes xmlns:x="urn:vendor"><x:Line>hello</x:Line></x:Notes>`)},
		{"extension attributes", strings.Replace(descDoc(goodBody), `<File name="CX600.nbt"`, `<File xmlns:x="urn:vendor" x:build="77" name="CX600.nbt"`, 1)},
		{"upper-case digest", strings.Replace(descDoc(goodBody), sumA, strings.ToUpper(sumA), -1)},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDescription([]byte(tc.doc))
			if err != nil {
				t.Fatalf("ParseDescription: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParseDescription (-want +got):\n%s", diff)
			}
		})
	}

	bad := []struct{ name, doc, wantErr string }{
		{"not xml", "hello", "document element"},
		{"empty", "", "EOF"},
		{"wrong root", `<Update xmlns="urn:opendus:update-description:1" schemaVersion="1"/>`, "document element must be UpdateDescription"},
		{"no namespace", strings.Replace(descDoc(goodBody), ` xmlns="urn:opendus:update-description:1"`, "", 1), "namespace"},
		{"other major", strings.Replace(descDoc(goodBody), "description:1", "description:2", 1), "namespace"},
		{"schema version", strings.Replace(descDoc(goodBody), `schemaVersion="1"`, `schemaVersion="2"`, 1), "schemaVersion"},
		{"no schema version", strings.Replace(descDoc(goodBody), ` schemaVersion="1"`, "", 1), "schemaVersion"},
		{"doctype", `<!DOCTYPE x [<!ENTITY a "b">]>` + descDoc(goodBody), "DOCTYPE"},
		{"entity", strings.Replace(descDoc(goodBody), "Polycom", "&a;", 1), "entity"},
		{"unknown element", descDoc(goodBody + "<Extra/>"), "unknown element Extra"},
		{"unknown attribute", strings.Replace(descDoc(goodBody), `<File name="CX600.nbt"`, `<File mode="x" name="CX600.nbt"`, 1), "unknown attribute mode"},
		{"two versions", descDoc(goodBody + "<Version>4.0.7577.4372</Version>"), "Version appears twice"},
		{"no version", descDoc(strings.Replace(goodBody, "<Version>4.0.7577.4372</Version>", "", 1)), "no Version"},
		{"bad version", descDoc(strings.Replace(goodBody, "4.0.7577.4372", "4.0.7577", 1)), "invalid version"},
		{"no update type", descDoc(strings.Replace(goodBody, "<UpdateType>Firmware</UpdateType>", "", 1)), "no UpdateType"},
		{"bad update type", descDoc(strings.Replace(goodBody, ">Firmware<", ">Firm ware<", 1)), "UpdateType"},
		{"no locale", descDoc(strings.Replace(goodBody, "<Locale>ENU</Locale>", "", 1)), "no Locale"},
		{"bad device type", descDoc(strings.Replace(goodBody, ">UCPhone<", ">Toaster<", 1)), "invalid device identity"},
		{"path in name", descDoc(strings.Replace(goodBody, `name="CX600.nbt"`, `name="../CX600.nbt"`, 1)), "file name"},
		{"duplicate file", descDoc(strings.Replace(goodBody, `name="CX600.cat" role="catalog"`, `name="cx600.NBT" role="image"`, 1)), "listed twice"},
		{"no image", descDoc(strings.Replace(goodBody, `<File name="CX600.nbt" size="10" sha256="`+sumA+`"/>`, "", 1)), "no image"},
		{"no files", descDoc(strings.Split(goodBody, "<File")[0]), "lists no file"},
		{"lists a description", descDoc(goodBody + `<File name="other.xml" role="image" size="1" sha256="` + sumA + `"/>`), "does not list descriptions"},
		{"bad role", strings.Replace(descDoc(goodBody), `role="catalog"`, `role="description"`, 1), "role"},
		{"negative size", strings.Replace(descDoc(goodBody), `size="10"`, `size="-10"`, 1), "size"},
		{"signed size", strings.Replace(descDoc(goodBody), `size="10"`, `size="+10"`, 1), "size"},
		{"leading zero", strings.Replace(descDoc(goodBody), `size="10"`, `size="010"`, 1), "size"},
		{"huge size", strings.Replace(descDoc(goodBody), `size="10"`, `size="99999999999999999999"`, 1), "size"},
		{"short digest", strings.Replace(descDoc(goodBody), sumA, sumA[:62], 1), "sha256"},
		{"no digest", strings.Replace(descDoc(goodBody), ` sha256="`+sumA+`"/>`, `/>`, 1), "no sha256"},
		{"text in file", strings.Replace(descDoc(goodBody), `sha256="`+sumA+`"/>`, `sha256="`+sumA+`">x</File>`, 1), "holds text"},
		{"child in version", descDoc(strings.Replace(goodBody, "<Version>4.0.7577.4372", "<Version><b/>4.0.7577.4372", 1)), "text only"},
		{"trailing element", descDoc(goodBody) + "<More/>", ""},
		{"too large", descDoc(goodBody + strings.Repeat(" ", MaxDescriptionSize)), "more than"},
		{"too many files", descDoc(goodBody + strings.Repeat(`<File name="a.nbt" size="1" sha256="`+sumA+`"/>`, MaxDescribedFiles)), "File elements"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDescription([]byte(tc.doc))
			if err == nil {
				t.Fatalf("ParseDescription = nil error, want one containing %q", tc.wantErr)
			}
			if !errors.Is(err, ErrDescription) {
				t.Errorf("ParseDescription error %v does not match ErrDescription", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseDescription error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// prefixed rewrites a description with the namespace bound to a prefix.
func prefixed(doc string) string {
	doc = strings.NewReplacer("</", "</d:", "<!", "<!", "<?", "<?", "<", "<d:").Replace(doc)
	return strings.Replace(doc, ` xmlns=`, ` xmlns:d=`, 1)
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMarshalDescriptionRoundTrip(t *testing.T) {
	d := &Description{
		Identity:   firmware.Identity{DeviceType: "RoundTable", Vendor: "Microsoft", Model: "RoundTable", Revision: "A", Locale: "ENU"},
		Version:    firmware.MustParseVersion("1.0.522.101"),
		UpdateType: "Firmware",
		Files: []DescribedFile{
			{Name: "RoundTable.nbt", Role: firmware.RoleImage, Size: 1 << 30, SHA256: [32]byte{1, 2, 3}},
			{Name: "RoundTable.cat", Role: firmware.RoleCatalog, Size: 7, SHA256: [32]byte{0xff}},
		},
	}
	data, err := MarshalDescription(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDescription(data)
	if err != nil {
		t.Fatalf("ParseDescription(MarshalDescription(d)): %v\n%s", err, data)
	}
	if diff := cmp.Diff(d, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	d.Files = nil
	if _, err := MarshalDescription(d); !errors.Is(err, ErrDescription) {
		t.Errorf("MarshalDescription with no files = %v, want ErrDescription", err)
	}
}

// FuzzParseDescription checks that ParseDescription never panics, and that
// whatever it accepts survives a round trip through MarshalDescription.
func FuzzParseDescription(f *testing.F) {
	f.Add([]byte(descDoc(goodBody)))
	f.Add([]byte(descDoc(goodBody + `<x:Notes xmlns:x="urn:vendor"><x:Line>hello</x:Line></x:Notes>`)))
	f.Add([]byte(`<d:UpdateDescription xmlns:d="urn:opendus:update-description:1" schemaVersion="1"><d:Version>1.2.3.4</d:Version></d:UpdateDescription>`))
	f.Add([]byte(`<!DOCTYPE x><a/>`))
	f.Add([]byte(descDoc(strings.Replace(goodBody, "<Version>", "<Version><!-- c -->", 1))))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDescription(data)
		if err != nil {
			if !errors.Is(err, ErrDescription) {
				t.Fatalf("error %v does not match ErrDescription", err)
			}
			return
		}
		out, err := MarshalDescription(d)
		if err != nil {
			t.Fatalf("MarshalDescription of an accepted description: %v", err)
		}
		again, err := ParseDescription(out)
		if err != nil {
			t.Fatalf("ParseDescription(MarshalDescription(d)): %v\n%s", err, out)
		}
		if diff := cmp.Diff(d, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
