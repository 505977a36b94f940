package simulator

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzReadScenario: a scenario file is read, checked and turned into a
// fleet without panicking; a scenario that reads back is valid again.
func FuzzReadScenario(f *testing.F) {
	f.Add(`{"seed": 1, "groups": [{"model": "UCPhone/Polycom/CX600/A/ENU", "count": 3, "version": "1.0.0.1", "signIn": 0.5, "testDevices": 1}]}`)
	f.Add(`{"duration": "2d", "speed": 3600, "groups": [{"model": "RoundTable/Microsoft/RoundTable/A/ENU", "count": 2, "version": "1.0.0.1", "location": "external"}], "faults": {"powerLoss": 1}}`)
	f.Add(`{"groups": [], "behaviour": {"phones": {"officeStart": 30}}}`)
	f.Add(`{"waves": "5%,25%,100%", "groups": [{"model": "UCPhone/Polycom/CX600/A/ENU", "count": 3, "version": "1.0.0.1", "site": "hq", "subnet": "127.1.0.0/16"}], "faults": {"installFails": {"2.0.0.1": 0.5}}}`)
	f.Add(`{"accounts": -1, "groups": [{"model": "x", "count": -5}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 4<<10 {
			return // bounded: longer files only make the fuzzer slow to minimize
		}
		sc, err := ReadScenario(strings.NewReader(in))
		if err != nil {
			return
		}
		total := 0
		for _, g := range sc.Groups {
			total += g.Count
		}
		if total > 2000 {
			return // valid, but too big to build in a fuzz run
		}
		fleet := sc.Fleet()
		if len(fleet) != total {
			t.Fatalf("Fleet has %d devices, the groups %d", len(fleet), total)
		}
		if err := sc.Normalize(); err != nil {
			t.Fatalf("a normalized scenario does not normalize again: %v", err)
		}
	})
}

// FuzzAnswerHeaders: what the device reads from a service's headers
// (Content-Range of a resumed transfer, Retry-After of a 503) never panics
// and stays in range.
func FuzzAnswerHeaders(f *testing.F) {
	f.Add("bytes 100-199/200", "120")
	f.Add("bytes */200", "Wed, 21 Oct 2026 07:28:00 GMT")
	f.Add("bytes -1-2/3", "-5")
	f.Add("", "99999999999999999999")
	f.Fuzz(func(t *testing.T, contentRange, ra string) {
		if len(contentRange)+len(ra) > 1<<10 {
			return
		}
		if n, ok := rangeStart(contentRange); ok && (n < 0 || !strings.HasSuffix(strings.TrimLeft(strings.TrimPrefix(strings.Split(contentRange, "-")[0], "bytes "), "0"), strings.TrimLeft(strconv.FormatInt(n, 10), "0"))) {
			t.Fatalf("rangeStart(%q) = %d", contentRange, n)
		}
		resp := &http.Response{Header: http.Header{"Retry-After": {ra}}}
		if d := retryAfter(resp, time.Minute); d < int64(time.Second) {
			t.Fatalf("retryAfter(%q) = %v, want at least a second", ra, time.Duration(d))
		}
	})
}
