package provisioning_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opendus/opendus/provisioning"
)

// FuzzParseBasic: ParseBasic never panics, and what it accepts is within
// the limits and reads back the same once encoded again.
func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{
		"Basic YWxpY2U6UGFzc3cwcmQh",
		"basic   YWxpY2U6UGFzc3cwcmQh",
		"Basic " + base64.StdEncoding.EncodeToString([]byte(`CONTOSO\alice:a:b`)),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("Zoë:pässwörd")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte(":")),
		"Basic YWxpY2U6UGFzc3cwcmQh=",
		"Basic !!!",
		"NTLM TlRMTVNTUAABAAAA",
		"Basic " + strings.Repeat("QUFB", 200),
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		if len(header) > 64<<10 {
			return
		}
		user, password, err := provisioning.ParseBasic(header)
		if err != nil {
			return
		}
		if user == "" || strings.Contains(user, ":") || len(user) > provisioning.MaxCredentialBytes || len(password) > provisioning.MaxCredentialBytes {
			t.Fatalf("ParseBasic(%q) accepted user %q, password %q", header, user, password)
		}
		again := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
		u2, p2, err := provisioning.ParseBasic(again)
		if err != nil || u2 != user || p2 != password {
			t.Fatalf("ParseBasic(%q) = %q, %q, %v; want %q, %q", again, u2, p2, err, user, password)
		}
	})
}

// FuzzParseDocument: ParseDocument never panics, and a document it accepts
// survives AppendXML and ParseDocument unchanged.
func FuzzParseDocument(f *testing.F) {
	for _, name := range []string{"signin-ok.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		_, body, _ := strings.Cut(string(data), "\n\n") // the request
		_, body, _ = strings.Cut(body, "\n\n")          // the response headers
		f.Add([]byte(body))
	}
	f.Add([]byte(`<provisionGroupList protocol="1" user="a&amp;b" issued="2026-11-21T10:00:00+01:00"><provisionGroup name="ServerConfiguration"><propertyEntryList><property name="updatesServerEnabled">false</property><property name="updatesServerCheckInterval">60</property></propertyEntryList></provisionGroup></provisionGroupList>`))
	f.Add([]byte(`<provisionGroupList protocol="1"><provisionGroup name="ServerConfiguration"/></provisionGroupList>`))
	f.Add([]byte(`<provisionGroupList protocol="1"><provisionGroup name="ServerConfiguration"><propertyEntryList><property name="updatesServerEnabled">true</property><property name="updatesServerRootMetadata">eyJzaWduZWQiOnt9fQ==</property></propertyEntryList></provisionGroup></provisionGroupList>`))
	f.Add([]byte(`<x/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := provisioning.ParseDocument(data)
		if err != nil {
			return
		}
		again := d.AppendXML(nil)
		d2, err := provisioning.ParseDocument(again)
		if err != nil {
			t.Fatalf("ParseDocument(AppendXML(%+v)) = %v\n%s", d, err, again)
		}
		if d2.User != d.User || !d2.Issued.Equal(d.Issued) || d2.InternalURL != d.InternalURL || d2.ExternalURL != d.ExternalURL || d2.Enabled != d.Enabled || d2.CheckInterval != d.CheckInterval ||
			!bytes.Equal(d2.RootMetadata, d.RootMetadata) {
			t.Fatalf("round trip: %+v became %+v", d, d2)
		}
	})
}
