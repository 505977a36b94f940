package provisioning_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/opendus/opendus/ntlm"
	"github.com/opendus/opendus/provisioning"
)

// ExampleNewHandler wires the sign-in handler to local accounts through
// NTHashAuthenticator and signs a device in with Basic credentials.
func ExampleNewHandler() {
	accounts := map[string][16]byte{"alice": ntlm.NTHash("Passw0rd!")}
	auth := provisioning.NTHashAuthenticator{Lookup: func(_ context.Context, user string) (ntlm.Account, error) {
		h, ok := accounts[user]
		if !ok {
			return ntlm.Account{}, ntlm.ErrUnknownUser
		}
		return ntlm.Account{User: user, Domain: "CONTOSO", NTHash: h}, nil
	}}
	h := provisioning.NewHandler(provisioning.Config{
		InternalURL: "https://ucupdates-r2.contoso.com/",
		ExternalURL: "https://ucupdates.contoso.com/",
		Enabled:     true,
		Auth:        auth,
	})

	for _, password := range []string{"Passw0rd!", "guess"} {
		req := httptest.NewRequest(http.MethodPost, provisioning.Path, nil)
		req.TLS = &tls.ConnectionState{} // as on the internal HTTPS listener
		req.SetBasicAuth("alice", password)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
			continue
		}
		doc, err := provisioning.ParseDocument(rec.Body.Bytes())
		if err != nil {
			panic(err)
		}
		fmt.Println(rec.Code, doc.InternalURL, doc.ExternalURL, doc.Enabled, doc.CheckInterval)
	}
	// Output:
	// 200 https://ucupdates-r2.contoso.com/RequestHandler/ucdevice.upx https://ucupdates.contoso.com/RequestHandlerExt/ucdevice.upx true 24h0m0s
	// 401 Basic realm="OpenDUS", charset="UTF-8"
}

// ExampleRecords prints the DNS records of a deployment.
func ExampleRecords() {
	recs, err := provisioning.Records(provisioning.Plan{
		Domain:        "contoso.com",
		InternalName:  "ucupdates-r2.contoso.com",
		InternalAddrs: []netip.Addr{netip.MustParseAddr("10.0.0.5")},
	})
	if err != nil {
		panic(err)
	}
	for _, r := range recs {
		fmt.Println(r.ZoneLine())
		fmt.Println(r.PowerShell())
	}
	// Output:
	// ucupdates-r2.contoso.com.	3600	IN	A	10.0.0.5
	// Add-DnsServerResourceRecordA -ZoneName "contoso.com" -Name "ucupdates-r2" -IPv4Address "10.0.0.5" -TimeToLive 01:00:00
}
