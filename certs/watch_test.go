package certs

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestWatch runs Watch in a synctest bubble: the clock and the ticker are
// fake, the files and the certificates real.
func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.WarnBefore = 800 * 24 * time.Hour // the admin certificate (730 days) is "expiring"
		s := bootstrap(t, cfg)
		cli, err := Open(s.Dir(), Config{}) // the CLI in another process
		if err != nil {
			t.Fatal(err)
		}
		var logs syncBuffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			s.Watch(ctx, time.Minute, logger)
			close(done)
		}()
		synctest.Wait()

		if got := strings.Count(logs.String(), "certificate expires soon"); got != 1 {
			t.Errorf("after start: %d expiry warnings, want 1 (admin):\n%s", got, logs.String())
		}
		if !strings.Contains(logs.String(), "cert=admin") {
			t.Errorf("expiry warning does not name the admin certificate:\n%s", logs.String())
		}

		info, err := cli.RenewServer(RenewOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.ServerCertificate().SerialNumber.Text(16) == info.Serial {
			t.Fatalf("server certificate swapped before Watch ran")
		}
		time.Sleep(time.Minute) // fake time: one tick
		synctest.Wait()
		if got := s.ServerCertificate().SerialNumber.Text(16); got != info.Serial {
			t.Errorf("after one tick: serial %s, want the renewed %s", got, info.Serial)
		}
		if !strings.Contains(logs.String(), "server certificate reloaded") {
			t.Errorf("no reload logged:\n%s", logs.String())
		}

		// A day later the warning repeats, once.
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		if got := strings.Count(logs.String(), "certificate expires soon"); got != 2 {
			t.Errorf("after a day: %d expiry warnings, want 2:\n%s", got, logs.String())
		}

		cancel()
		<-done
	})
}

// TestWatchRetriesHalfWritten checks that a pair that does not match is
// logged at debug level first and as a warning only when it persists.
func TestWatchRetriesHalfWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := bootstrap(t, testConfig())
		certPEM, _, err := issueServer(s.ca, s.caKey, []string{"x.contoso.com"}, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var logs syncBuffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			s.Watch(ctx, time.Minute, logger)
			close(done)
		}()
		if err := writeFile(s.Dir(), ServerCertFile, certPEM, 0o644, true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "level=DEBUG") {
			t.Errorf("first failed reload: want a debug line and no warning:\n%s", logs.String())
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if !strings.Contains(logs.String(), "level=WARN msg=\"server certificate reload failed\"") {
			t.Errorf("second failed reload: want a warning:\n%s", logs.String())
		}
		cancel()
		<-done
	})
}
