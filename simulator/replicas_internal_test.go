package simulator

import "testing"

// TestSourceOf: an offer's file URL is the primary's when its host:port
// is one of the primary service's, a replica's on any other (the site's
// replica, a relay, another port of the same address): the one rule the
// site report, the subnet report and the WAN link follow.
func TestSourceOf(t *testing.T) {
	svc := Service{InternalURL: "https://127.0.0.1:8443/", ExternalURL: "https://Updates.Contoso.com/", Domain: "contoso.com"}
	s := &Sim{primaryHosts: svc.primaryHosts()}
	for _, tc := range []struct {
		url         string
		wantReplica bool
	}{
		{"https://127.0.0.1:8443/Files/", false},
		{"https://updates.contoso.com/Files/", false},
		{"https://updates.contoso.com:443/Files/", false},
		{"https://UCUPDATES-R2.contoso.com:8443/Files/", false},
		{"https://127.0.0.1:9443/Files/", true},
		{"https://127.0.0.5:8443/Files/", true},
		{"https://paris.contoso.com/Files/", true},
		{"https://ucupdates-r2.contoso.com/Files/", true},
	} {
		if got := s.sourceOf(tc.url); got.url != tc.url || got.replica != tc.wantReplica {
			t.Errorf("sourceOf(%q) = %+v, want replica %v", tc.url, got, tc.wantReplica)
		}
	}
	if got := s.sourceOf(""); got != (source{}) {
		t.Errorf(`sourceOf("") = %+v, want none`, got)
	}
}
