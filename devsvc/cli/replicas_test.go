package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/opendus/opendus/devsvc/replica"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/firmware"
)

// TestPrintReplication: devsvc status says how a replica follows, and
// loudly when its primary cannot be reached; on a primary, how many
// replicas are behind.
func TestPrintReplication(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		r    service.ReplicationStatus
		want []string
	}{
		{"following", service.ReplicationStatus{Follower: &replica.Status{Primary: "dus:9443", Connected: true, Since: at, LastContact: at, Position: 40, Head: 42, Outbox: 3}},
			[]string{"Replica of dus:9443: following since", "at change 40 (2 behind)", "3 check-ins and reports wait"}},
		{"cut off", service.ReplicationStatus{Follower: &replica.Status{Primary: "dus:9443", Since: at, LastError: "connection refused", Position: 40}},
			[]string{"THE PRIMARY CANNOT BE REACHED", "connection refused", "serving the site from change 40"}},
		{"a primary", service.ReplicationStatus{Head: 10, Replicas: []service.ReplicaInfo{
			{Replica: firmware.Replica{Name: "paris", Site: "paris"}, Behind: 2},
			{Replica: firmware.Replica{Name: "lyon", Site: "lyon"}},
			{Replica: firmware.Replica{Name: "old", Site: "old", Removed: at}},
		}}, []string{"Replicas: 2 (1 behind or not heard from)"}},
		{"a primary without replicas", service.ReplicationStatus{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			printReplication(&b, tc.r)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
			if tc.want == nil && b.Len() != 0 {
				t.Errorf("output %q, want nothing", b.String())
			}
		})
	}
}

// TestPrintReplicas: devsvc replicas list shows each replica's state and
// its alarms.
func TestPrintReplicas(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printReplicas(&b, []service.ReplicaInfo{
		{Replica: firmware.Replica{Name: "paris", Site: "paris", Progress: firmware.ReplicaProgress{Position: 9, LastContact: at, BytesFetched: 3 << 20, FilesFetched: 2, Reports: 17, InternalURL: "https://dus-paris/"}}},
		{Replica: firmware.Replica{Name: "lyon", Site: "lyon", Progress: firmware.ReplicaProgress{Position: 4, LastContact: at}}, Behind: 5,
			Alarms: []firmware.Alarm{{Detail: "replica lyon has not applied the release", Raised: at}}},
		{Replica: firmware.Replica{Name: "nice", Site: "nice"}},
	}, 9)
	for _, w := range []string{"This service is at change 9.", "paris", "following", "3 MiB in 2 files", "17", "https://dus-paris/", "ALARM", "never called", "ALARM since", "has not applied the release"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, b.String())
		}
	}
	b.Reset()
	printReplicas(&b, nil, 0)
	if !strings.Contains(b.String(), "devsvc replicas add") {
		t.Errorf("no replicas: %q, want how to add one", b.String())
	}
}

// TestInitReplicaFlags: --replica-of and --credentials go together.
func TestInitReplicaFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main(t.Context(), []string{"init", "--data", t.TempDir(), "--replica-of", "dus:9443"}, strings.NewReader(""), &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--credentials") {
		t.Errorf("init --replica-of without --credentials = %d, %q; want a usage error naming --credentials", code, errOut.String())
	}
}
