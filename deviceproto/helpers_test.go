package deviceproto_test

import (
	"time"

	"github.com/opendus/opendus/deviceproto"
	"github.com/opendus/opendus/firmware"
)

var (
	t0     = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	cx600  = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}
	cx500  = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX500", Revision: "A", Locale: "ENU"}
	cx3000 = firmware.Identity{DeviceType: firmware.UCPhone, Vendor: "Polycom", Model: "CX3000", Revision: "A", Locale: "ENU"}
	v1     = firmware.MustParseVersion("3.5.6907.35")
	v2     = firmware.MustParseVersion("4.0.7577.4372")
)

const (
	macDevice = "00-04-F2-00-00-01"
	intURL    = "https://ucupdates-r2.contoso.com/"
	extURL    = "https://ucupdates.contoso.com:4443/"
)

// checkInBody returns a check-in body of a device of id at version v.
func checkInBody(id firmware.Identity, mac string, v firmware.Version) []byte {
	c := deviceproto.CheckIn{Identity: id, MAC: mac, User: "alice@contoso.com"}
	if !v.IsZero() {
		c.Modules = []firmware.Module{{Name: id.Model + ".nbt", Version: v, Timestamp: "2026-01-15T08:00:00Z"}}
	}
	return c.AppendXML(nil)
}

// statusBody returns a status report body.
func statusBody(mac string, state firmware.State, target firmware.Version, code string) []byte {
	s := deviceproto.Status{MAC: mac, State: state, Target: target, ErrorCode: code}
	return s.AppendXML(nil)
}
