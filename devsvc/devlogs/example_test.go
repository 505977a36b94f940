package devlogs_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opendus/opendus/devsvc/devlogs"
)

// A phone uploads its CE log; the answer names the stored file.
func Example() {
	dir, _ := os.MkdirTemp("", "devlogs")
	defer os.RemoveAll(dir)
	h, err := devlogs.NewHandler(devlogs.Config{
		Dir: filepath.Join(dir, "Logs", "Client"),
		Now: func() time.Time { return time.Date(2026, 11, 21, 22, 25, 50, 123e6, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()

	for _, query := range []string{
		"type=CELog&name=phone.clg&mac=00-04-F2-12-34-56",
		"type=CELog&name=../../etc/passwd",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", devlogs.Path+"?"+query, strings.NewReader("log")))
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output:
	// 201 CELog/0004f2123456-20261121T222550.123Z-phone.clg
	// 400 file extension not accepted: "passwd"; accepted: .dmp .clg .clg2 .bak .kdmp .dat .bin .cat .xml .txt .hex
}
