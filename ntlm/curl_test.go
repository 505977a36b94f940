package ntlm

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/opendus/opendus/internal/testtool"
)

// TestCurl signs in with curl's own NTLM implementation, an independent
// client. curl puts its own clock in the NTLMv2 blob, so the server runs
// on the real clock here.
func TestCurl(t *testing.T) {
	curl := testtool.Need(t, "curl")
	tests := []struct {
		name, creds string
		wantCode    string
		wantBody    string
	}{
		{"right password", "alice:correct horse", "200", secret + "alice"},
		{"domain and user", `OPENDUS\bob:hunter2`, "200", secret + "Bob"},
		{"wrong password", "alice:wrong", "401", msgSignInFailed},
		{"unknown user", "eve:correct horse", "401", msgSignInFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, Config{Now: timeNow})
			cmd := exec.CommandContext(t.Context(), curl, "--silent", "--show-error", "--insecure",
				"--ntlm", "--user", tt.creds, "--write-out", "\n%{http_code}", e.srv.URL+"/catalogue")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("curl: %v (%s)", err, out)
			}
			i := strings.LastIndex(string(out), "\n")
			if i < 0 {
				t.Fatalf("curl output %q has no status line", out)
			}
			body, code := string(out[:i]), string(out[i+1:])
			if code != tt.wantCode || body != tt.wantBody {
				t.Errorf("curl --ntlm -u %s: %s %q, want %s %q; log %v", tt.creds, code, body, tt.wantCode, tt.wantBody, e.logs.last())
			}
		})
	}
}
