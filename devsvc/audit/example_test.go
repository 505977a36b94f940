package audit_test

import (
	"fmt"
	"time"

	"github.com/opendus/opendus/devsvc/audit"
)

// A line of an external check-in, and what a hostile path becomes.
func ExampleAppendLine() {
	e := audit.Entry{
		Time:     time.Date(2026, 11, 21, 22, 25, 50, 123e6, time.UTC),
		Remote:   "203.0.113.7:51234",
		Listener: audit.External,
		User:     `CONTOSO\alice`,
		Method:   "POST",
		Path:     "/RequestHandlerExt/ucdevice.upx",
		Status:   200,
		Bytes:    412,
		Duration: 1830 * time.Microsecond,
		Device:   "0004f2123456",
	}
	fmt.Print(string(audit.AppendLine(nil, &e)))
	e.User, e.Path = "", "/x 200\n2026-11-21T00:00:00.000Z forged"
	fmt.Print(string(audit.AppendLine(nil, &e)))
	// Output:
	// 2026-11-21T22:25:50.123Z 203.0.113.7:51234 external CONTOSO\alice POST /RequestHandlerExt/ucdevice.upx 200 412 1830 0004f2123456
	// 2026-11-21T22:25:50.123Z 203.0.113.7:51234 external - POST /x%20200%0A2026-11-21T00:00:00.000Z%20forged 200 412 1830 0004f2123456
}
