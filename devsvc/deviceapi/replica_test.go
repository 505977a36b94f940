package deviceapi_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/devsvc/deviceapi"
	"github.com/opendus/opendus/firmware"
)

// TestAlternativeURLs: a replica names its primary's URLs as the
// alternatives; a primary sends a device whose site has a replica holding
// the update there, with its own URLs as the alternatives; an answer
// without an offer names no URL.
func TestAlternativeURLs(t *testing.T) {
	st := offerStore(t)
	dir := "UCPhone/Polycom/CX500/A/ENU/" + v1.String() + "/"
	const primary, primaryExt = "https://dus.contoso.com/", "https://dus-ext.contoso.com/"
	const replicaInt, replicaExt = "https://paris.contoso.com:8443/", "https://paris-ext.contoso.com/"
	var asked []string
	mirror := func(site string, loc firmware.Location, u firmware.Update) (string, string, bool) {
		asked = append(asked, site+" "+string(loc)+" "+u.Dir())
		if site == "paris" { // the replica's site
			return replicaInt, replicaExt, true
		}
		return "", "", false
	}
	paris := firmware.Site{Name: "paris", Subnets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	if _, err := st.PutSite(context.Background(), "test", paris, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                     string
		cfg                      deviceapi.Config
		remote                   string
		body                     []byte
		url, urlAlt, ext, extAlt string
	}{
		{"a replica: the primary as the alternative", deviceapi.Config{InternalURL: intURL, ExternalURL: extURL, AltInternalURL: primary, AltExternalURL: primaryExt},
			"10.0.0.1:1234", checkInBody(cx500, macDevice, v2),
			intURL + "DeviceUpdateFiles_Int/" + dir, primary + "DeviceUpdateFiles_Int/" + dir, extURL + "DeviceUpdateFiles_Ext/" + dir, primaryExt + "DeviceUpdateFiles_Ext/" + dir},
		{"a primary: a device of the replica's site goes there", deviceapi.Config{InternalURL: intURL, ExternalURL: extURL, Mirror: mirror},
			"192.0.2.1:1234", checkInBody(cx500, macDevice, v2),
			replicaInt + "DeviceUpdateFiles_Int/" + dir, intURL + "DeviceUpdateFiles_Int/" + dir, replicaExt + "DeviceUpdateFiles_Ext/" + dir, extURL + "DeviceUpdateFiles_Ext/" + dir},
		{"a primary: a device of another site stays", deviceapi.Config{InternalURL: intURL, ExternalURL: extURL, Mirror: mirror},
			"10.9.9.9:1234", checkInBody(cx500, macDevice, v2),
			intURL + "DeviceUpdateFiles_Int/" + dir, "", extURL + "DeviceUpdateFiles_Ext/" + dir, ""},
		{"a primary: a device of the replica's site behind a trusted proxy goes there", deviceapi.Config{InternalURL: intURL, ExternalURL: extURL, Mirror: mirror,
			ClientAddr: func(*http.Request) (netip.Addr, bool) { return netip.MustParseAddr("192.0.2.7"), true }},
			"10.0.0.9:1234", checkInBody(cx500, macDevice, v2),
			replicaInt + "DeviceUpdateFiles_Int/" + dir, intURL + "DeviceUpdateFiles_Int/" + dir, replicaExt + "DeviceUpdateFiles_Ext/" + dir, extURL + "DeviceUpdateFiles_Ext/" + dir},
		{"nothing offered: no URL at all", deviceapi.Config{InternalURL: intURL, AltInternalURL: primary, Mirror: mirror},
			"192.0.2.1:1234", checkInBody(cx500, macDevice, v1), "", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Now = fixedClock
			srv := deviceapi.New(st, tc.cfg)
			w := doFrom(srv.Internal(), tc.remote, "POST", deviceproto.CheckInPath, tc.body)
			a := answerOf(t, w)
			got := [4]string{a.InternalURL, a.InternalURLAlt, a.ExternalURL, a.ExternalURLAlt}
			if want := [4]string{tc.url, tc.urlAlt, tc.ext, tc.extAlt}; got != want {
				t.Errorf("URLs, alternatives:\n got %q\nwant %q", got, want)
			}
		})
	}
	if want := "paris internal " + dir[:len(dir)-1]; len(asked) == 0 || asked[0] != want {
		t.Errorf("Mirror was asked %q, want first %q: the device's site, the listener, the update", asked, want)
	}
}
