package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/internal/devsvctest"
	"github.com/opendus/opendus/internal/testtool"
)

// diskFS is the size of the small file system the disk-full tests serve
// from: room for the data directory and a few dozen log uploads.
const diskFS = 24 << 20

// TestDiskFull runs a real devsvc serve on a small tmpfs that anonymous
// log uploads fill, and checks in a fleet meanwhile. No check-in answered
// 200 may be lost: every one is in the inventory after a restart, and the
// others were answered 503 with Retry-After.
func TestDiskFull(t *testing.T) {
	t.Run("filled by uploads", func(t *testing.T) {
		// No floor, stored logs unbounded: the uploads fill the disk to
		// the last block, as anything else on it could.
		s, c, base := diskService(t, map[string]string{"max_log_storage": "1000000000", "min_free_space": "0"})
		fillWithUploads(t, c, base)

		codes := checkIns(t, c, base, 0, 2000)
		var ok, refused []string
		for mac, code := range codes {
			switch code {
			case http.StatusOK:
				ok = append(ok, mac)
			case http.StatusServiceUnavailable:
				refused = append(refused, mac)
			default:
				t.Errorf("check-in of %s = %d, want 200 or 503", mac, code)
			}
		}
		// Check-ins answered before the first write failed are held (and
		// must not be lost); once the store says it cannot write, every
		// check-in is refused.
		if !s.WaitForLog("the inventory cannot be written", 30*time.Second) {
			t.Fatalf("the store never said it cannot write on a full disk\n%s", s.Logs())
		}
		for mac, code := range checkIns(t, c, base, 3000, 500) {
			if code != http.StatusServiceUnavailable {
				t.Errorf("check-in of %s after the store said it cannot write = %d, want 503", mac, code)
			}
			refused = append(refused, mac)
		}
		t.Logf("disk full: %d check-ins answered 200 (held), %d answered 503", len(ok), len(refused))
		if code := get(t, c, base+"/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("/readyz on a full disk = %d, want 503", code)
		}
		if code := get(t, c, base+"/healthz"); code != http.StatusOK {
			t.Errorf("/healthz on a full disk = %d, want 200: the process is alive", code)
		}
		var st struct{ Inventory struct{ Writable bool } }
		s.JSON(t, &st, "status")
		if st.Inventory.Writable {
			t.Errorf("devsvc status --json says the inventory is writable on a full disk")
		}
		if out := s.CLI(t, "status"); !strings.Contains(out, "Inventory: CANNOT BE WRITTEN") || !strings.Contains(out, "no space left on device") {
			t.Errorf("devsvc status on a full disk does not say the inventory cannot be written, and why:\n%s", out)
		}
		if _, errOut, err := s.TryCLI("devices"); err == nil || !strings.Contains(errOut, "free space") || strings.Contains(errOut, "cannot reach") {
			t.Errorf("devsvc devices on a full disk = %v, %q; want an error saying to free space", err, errOut)
		}

		// The admin frees space: the service writes what it holds by
		// itself, and takes check-ins again.
		if err := os.RemoveAll(filepath.Join(s.Dir, datadir.DeviceLogsDir, "CELog")); err != nil {
			t.Fatal(err)
		}
		if !s.WaitForLog("inventory is written again", 30*time.Second) {
			t.Errorf("the service did not recover within 30s of space being freed\n%s", s.Logs())
		}
		if code := get(t, c, base+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz after space was freed = %d, want 200", code)
		}
		for mac, code := range checkIns(t, c, base, 5000, 1) {
			if code != http.StatusOK {
				t.Errorf("check-in of %s after space was freed = %d, want 200", mac, code)
			}
			ok = append(ok, mac)
		}

		s.Stop(t)
		s = devsvctest.Start(t, s.Bin, s.Dir)
		inv := inventory(t, s)
		lost := 0
		for _, mac := range ok {
			if _, found := inv[mac]; !found {
				lost++
			}
		}
		if lost > 0 {
			t.Errorf("%d of the %d check-ins answered 200 are not in the inventory after a restart", lost, len(ok))
		}
		for _, mac := range refused {
			if _, found := inv[mac]; found {
				t.Errorf("device %s was answered 503 but recorded", mac)
			}
		}
	})

	t.Run("the floor keeps room for the inventory", func(t *testing.T) {
		const floor = 8 << 20
		s, c, base := diskService(t, map[string]string{"max_log_storage": "1000000000", "min_free_space": fmt.Sprint(floor)})
		if code := fillWithUploads(t, c, base); code != http.StatusInsufficientStorage {
			t.Errorf("the last upload = %d, want 507", code)
		}
		var fs syscall.Statfs_t
		if err := syscall.Statfs(s.Dir, &fs); err != nil {
			t.Fatal(err)
		}
		if free := int64(fs.Bavail) * fs.Bsize; free < floor {
			t.Errorf("uploads left %d bytes free, below the floor of %d", free, floor)
		}
		codes := checkIns(t, c, base, 0, 2000)
		for mac, code := range codes {
			if code != http.StatusOK {
				t.Errorf("check-in of %s = %d, want 200: the floor keeps room for the inventory", mac, code)
			}
		}
		if code := get(t, c, base+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz = %d, want 200", code)
		}
		s.Stop(t)
		s = devsvctest.Start(t, s.Bin, s.Dir)
		if inv := inventory(t, s); len(inv) != len(codes) {
			t.Errorf("%d devices in the inventory after a restart, want %d", len(inv), len(codes))
		}
	})
}

// diskService starts devsvc serve with its data directory on a new tmpfs
// of diskFS bytes and the given settings, and returns it with a device
// client and the internal base URL.
func diskService(t *testing.T, settings map[string]string) (*devsvctest.Service, *http.Client, string) {
	t.Helper()
	dir := filepath.Join(testtool.TmpFS(t, diskFS), "data")
	bin := devsvctest.InitIn(t, dir, domain)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range settings {
			if !yield(k) {
				return
			}
		}
	}) {
		setSetting(t, dir, k, settings[k])
	}
	s := devsvctest.Start(t, bin, dir)
	c := deviceClient(t, dir, s.Run.Internal, nil)
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = checkInWorkers // keep one connection per worker
	return s, c, "https://ucupdates-r2." + domain + ":" + port(t, s.Run.Internal)
}

// fillWithUploads uploads device logs until the service takes no more,
// halving the size from max_log_file_size down to one byte, so that the
// file system is filled to its last block (or to the floor). It returns
// the status of the last refused upload.
func fillWithUploads(t *testing.T, c *http.Client, base string) int {
	t.Helper()
	last, stored := 0, 0
	for size := 1024000; size > 0; size /= 2 {
		for i := 0; ; i++ {
			url := fmt.Sprintf("%s/RequestHandler/logupload.upx?type=CELog&name=%d-%d.clg", base, size, i)
			resp, err := c.Post(url, "application/octet-stream", bytes.NewReader(make([]byte, size)))
			if err != nil {
				t.Fatalf("upload: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				last = resp.StatusCode
				break
			}
			if stored++; stored > 2*diskFS/4096 {
				t.Fatalf("%d uploads stored on a file system of %d bytes", stored, diskFS)
			}
		}
	}
	t.Logf("%d uploads stored; the last refused with %d", stored, last)
	return last
}

// checkInWorkers is how many check-ins checkIns sends at once.
const checkInWorkers = 16

// checkIns checks in n CX600 phones numbered from first, checkInWorkers at
// a time, and returns each one's status code by MAC.
func checkIns(t *testing.T, c *http.Client, base string, first, n int) map[string]int {
	t.Helper()
	var (
		mu    sync.Mutex
		codes = map[string]int{}
		errs  []error
		wg    sync.WaitGroup
		next  = make(chan int)
	)
	for range checkInWorkers {
		wg.Go(func() {
			for i := range next {
				mac := fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16&0xff, i>>8&0xff, i&0xff)
				ci := deviceproto.CheckIn{Identity: cx600, MAC: mac,
					Modules: []firmware.Module{{Name: "CX600.nbt", Version: firmware.MustParseVersion("1.0.0.1"), Timestamp: "2026-01-15T08:00:00Z"}}}
				code, err := postStatus(c, base+deviceproto.CheckInPath, ci.AppendXML(nil))
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("check-in of %s: %w", mac, err))
				} else {
					codes[mac] = code
				}
				mu.Unlock()
			}
		})
	}
	for i := first; i < first+n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	return codes
}

// postStatus posts a device message and returns the status code; a 503
// must say when to retry.
func postStatus(c *http.Client, url string, body []byte) (int, error) {
	resp, err := c.Post(url, "application/xml; charset=utf-8", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		return 0, fmt.Errorf("503 without Retry-After")
	}
	return resp.StatusCode, nil
}

// get returns the status code of a GET.
func get(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
