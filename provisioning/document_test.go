package provisioning_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendus/opendus/provisioning"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func TestDocumentRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		doc  provisioning.Document
	}{
		{"full", provisioning.Document{User: "alice", Issued: t0, InternalURL: intURL, ExternalURL: extURL, Enabled: true, CheckInterval: 24 * time.Hour}},
		{"disabled, internal only", provisioning.Document{InternalURL: intURL}},
		{"user to escape", provisioning.Document{User: `CONTOSO\a"l<i>c&e'`, Enabled: true, CheckInterval: time.Second}},
		{"URL with a query-free path to escape", provisioning.Document{ExternalURL: "https://[2001:db8::1]:4443/a&b/RequestHandlerExt/ucdevice.upx", Enabled: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.doc.AppendXML(nil)
			got, err := provisioning.ParseDocument(data)
			if err != nil {
				t.Fatalf("ParseDocument(AppendXML) = %v\n%s", err, data)
			}
			if diff := cmp.Diff(tt.doc, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDocumentCheckIntervalRounding(t *testing.T) {
	tests := []struct{ in, want time.Duration }{
		{90 * time.Minute, 90 * time.Minute},
		{1500 * time.Millisecond, 2 * time.Second},
		{time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		d := provisioning.Document{Enabled: true, CheckInterval: tt.in}
		got, err := provisioning.ParseDocument(d.AppendXML(nil))
		if err != nil || got.CheckInterval != tt.want {
			t.Errorf("interval %v: round trip = %v, %v; want %v", tt.in, got.CheckInterval, err, tt.want)
		}
	}
}

func TestParseDocumentRefuses(t *testing.T) {
	wrap := func(props string) string {
		return `<provisionGroupList protocol="1"><provisionGroup name="ServerConfiguration"><propertyEntryList>` + props + `</propertyEntryList></provisionGroup></provisionGroupList>`
	}
	enabled := `<property name="updatesServerEnabled">true</property>`
	tests := []struct{ name, doc string }{
		{"empty", ""},
		{"not XML", "hello"},
		{"other root", `<provisionGroups protocol="1"/>`},
		{"no protocol", `<provisionGroupList><provisionGroup name="ServerConfiguration"><propertyEntryList>` + enabled + `</propertyEntryList></provisionGroup></provisionGroupList>`},
		{"future protocol", strings.Replace(wrap(enabled), `protocol="1"`, `protocol="2"`, 1)},
		{"no group", `<provisionGroupList protocol="1"/>`},
		{"two groups", `<provisionGroupList protocol="1"><provisionGroup name="ServerConfiguration"/><provisionGroup name="ServerConfiguration"/></provisionGroupList>`},
		{"no enabled", wrap(`<property name="updatesServerInternalUrl">` + intURL + `</property>`)},
		{"enabled twice", wrap(enabled + enabled)},
		{"enabled yes", wrap(`<property name="updatesServerEnabled">yes</property>`)},
		{"http URL", wrap(enabled + `<property name="updatesServerInternalUrl">http://ucupdates-r2.contoso.com/</property>`)},
		{"relative URL", wrap(enabled + `<property name="updatesServerInternalUrl">/RequestHandler/ucdevice.upx</property>`)},
		{"URL with user", wrap(enabled + `<property name="updatesServerExternalUrl">https://eve@ucupdates.contoso.com/</property>`)},
		{"URL without host", wrap(enabled + `<property name="updatesServerExternalUrl">https:///x</property>`)},
		{"URL with fragment", wrap(enabled + `<property name="updatesServerExternalUrl">https://a.example/#x</property>`)},
		{"interval zero", wrap(enabled + `<property name="updatesServerCheckInterval">0</property>`)},
		{"interval negative", wrap(enabled + `<property name="updatesServerCheckInterval">-5</property>`)},
		{"interval too long", wrap(enabled + `<property name="updatesServerCheckInterval">31536001</property>`)},
		{"interval not a number", wrap(enabled + `<property name="updatesServerCheckInterval">1d</property>`)},
		{"issued not a time", strings.Replace(wrap(enabled), `protocol="1"`, `protocol="1" issued="yesterday"`, 1)},
		{"too large", wrap(enabled + strings.Repeat(" ", provisioning.MaxDocumentBytes))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := provisioning.ParseDocument([]byte(tt.doc))
			if !errors.Is(err, provisioning.ErrMalformed) {
				t.Errorf("ParseDocument = %+v, %v; want ErrMalformed", d, err)
			}
		})
	}
}

// TestParseDocumentIgnoresUnknown: later versions may add groups and
// properties; a device reads what it knows.
func TestParseDocumentIgnoresUnknown(t *testing.T) {
	doc := `<?xml version="1.0"?>
<provisionGroupList xmlns="http://schemas.microsoft.com/2006/09/sip/provisiongrouplist-notification" protocol="1">
  <provisionGroup name="userSetting"><propertyEntryList><property name="updatesServerEnabled">maybe</property></propertyEntryList></provisionGroup>
  <provisionGroup name="ServerConfiguration">
    <propertyEntryList>
      <property name="updatesServerEnabled"> true </property>
      <property name="absSearchUrl">https://abs.contoso.com/</property>
      <property name="updatesServerInternalUrl">` + intURL + `</property>
    </propertyEntryList>
    <somethingElse/>
  </provisionGroup>
</provisionGroupList>`
	got, err := provisioning.ParseDocument([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := provisioning.Document{InternalURL: intURL, Enabled: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseDocument (-want +got):\n%s", diff)
	}
}

// TestProtocolExamples generates the sign-in exchanges that
// docs/protocol.md shows (testdata/*.txt; rewrite them with -update) and
// checks that the document's Provisioning section shows them unchanged.
func TestProtocolExamples(t *testing.T) {
	h := provisioning.NewHandler(testConfig(directory{users: testUsers}.authenticator(), io.Discard))
	tests := []struct{ file, user, password string }{
		{"signin-ok.txt", "alice", "Passw0rd!"},
		{"signin-refused.txt", "alice", "wrong"},
	}
	var examples []string
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "https://ucupdates-r2.contoso.com"+provisioning.Path, nil)
			req.SetBasicAuth(tt.user, tt.password)
			req.Header.Set("User-Agent", "UCPhone/4.0.7577.4372")
			req.RequestURI = provisioning.Path // as a device sends it
			dump, err := httputil.DumpRequest(req, false)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			resp := rec.Result()
			var b strings.Builder
			b.WriteString(strings.ReplaceAll(string(dump), "\r\n", "\n"))
			b.WriteString("HTTP/1.1 " + resp.Status + "\n")
			keys := make([]string, 0, len(resp.Header))
			for k := range resp.Header {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				for _, v := range resp.Header[k] {
					b.WriteString(k + ": " + v + "\n")
				}
			}
			b.WriteString("\n" + rec.Body.String())
			got := b.String()
			golden(t, filepath.Join("testdata", tt.file), got)
			examples = append(examples, got)
		})
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "protocol.md"))
	if err != nil {
		t.Fatalf("docs/protocol.md: %v", err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Provisioning\n")
	if !ok {
		t.Fatalf("docs/protocol.md has no \"## Provisioning\" section")
	}
	for _, ex := range examples {
		if !strings.Contains(section, "```http\n"+ex+"```\n") {
			t.Errorf("docs/protocol.md, Provisioning: the example is missing or differs; it should show\n```http\n%s```", ex)
		}
	}
}

// golden compares got with the file, or rewrites the file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(name, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", name, diff)
	}
}

// TestDocumentRootMetadata: the root of the signed update metadata goes
// through the document as base64, and ParseDocument refuses one that is
// not base64 or too large.
func TestDocumentRootMetadata(t *testing.T) {
	root := []byte(`{"signed":{"_type":"root","version":1},"signatures":[]}`)
	d := provisioning.Document{Enabled: true, RootMetadata: root}
	got, err := provisioning.ParseDocument(d.AppendXML(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.RootMetadata, root) {
		t.Errorf("RootMetadata = %q, want %q", got.RootMetadata, root)
	}
	for _, tt := range []struct{ name, value string }{
		{"not base64", "not base64!"},
		{"empty", ""},
		{"too large", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), provisioning.MaxRootMetadataBytes+1))},
	} {
		doc := `<provisionGroupList protocol="1"><provisionGroup name="ServerConfiguration"><propertyEntryList><property name="updatesServerEnabled">true</property><property name="updatesServerRootMetadata">` + tt.value + `</property></propertyEntryList></provisionGroup></provisionGroupList>`
		if _, err := provisioning.ParseDocument([]byte(doc)); !errors.Is(err, provisioning.ErrMalformed) {
			t.Errorf("%s: ParseDocument = %v, want ErrMalformed", tt.name, err)
		}
	}
}
