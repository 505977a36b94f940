package testtool

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB whose Skipf and Fatalf record the message and
// end the goroutine, as the real ones do.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// call runs f with a recorder on its own goroutine, as Skipf and Fatalf
// end it.
func call(t *testing.T, f func(tb testing.TB) string) (got string, r *recorder) {
	r = &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		got = f(r)
	}()
	<-done
	return got, r
}

func TestCorpus(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env, ci string
		want    string // the directory returned, or "" when skipped or failed
		wantMsg string // in the skip or failure message
	}{
		{"directory", dir, "", dir, ""},
		{"directory in CI", dir, "true", dir, ""},
		{"unset", "", "", "", "OPENDUS_CAB_CORPUS is not set"},
		{"unset in CI", "", "true", "", "OPENDUS_CAB_CORPUS is not set and CI=true"},
		{"missing", filepath.Join(dir, "none"), "", "", "no such file"},
		{"missing in CI", filepath.Join(dir, "none"), "true", "", "CI=true"},
		{"file", file, "", "", "not a directory"},
		{"file in CI", file, "true", "", "not a directory and CI=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(CorpusEnv, tt.env)
			t.Setenv("CI", tt.ci)
			got, r := call(t, Corpus)
			if got != tt.want {
				t.Errorf("Corpus = %q, want %q", got, tt.want)
			}
			switch {
			case tt.want != "":
				if r.skipped != "" || r.failed != "" {
					t.Errorf("Corpus skipped (%q) or failed (%q), want neither", r.skipped, r.failed)
				}
			case tt.ci == "true":
				if r.failed == "" || r.skipped != "" || !strings.Contains(r.failed, tt.wantMsg) {
					t.Errorf("Corpus failed with %q, skipped with %q; want a failure containing %q", r.failed, r.skipped, tt.wantMsg)
				}
			default:
				if r.skipped == "" || r.failed != "" || !strings.Contains(r.skipped, tt.wantMsg) {
					t.Errorf("Corpus skipped with %q, failed with %q; want a skip containing %q", r.skipped, r.failed, tt.wantMsg)
				}
			}
			if msg := r.skipped + r.failed; msg != "" && !strings.Contains(msg, "make test sets it") {
				t.Errorf("message %q does not say how to get the corpus", msg)
			}
		})
	}
}

func TestNeedMissing(t *testing.T) {
	const name = "opendus-no-such-tool"
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			got, r := call(t, func(tb testing.TB) string { return Need(tb, name) })
			if got != "" {
				t.Errorf("Need(%q) = %q, want \"\"", name, got)
			}
			if ci == "true" && (r.failed == "" || r.skipped != "") {
				t.Errorf("under CI=true: failed %q, skipped %q; want a failure", r.failed, r.skipped)
			}
			if ci == "" && (r.skipped == "" || r.failed != "") {
				t.Errorf("without CI: skipped %q, failed %q; want a skip", r.skipped, r.failed)
			}
		})
	}
}
