package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

func (c *Console) testDeviceRoutes() []route {
	return []route{
		{pattern: "GET /testdevices", h: c.testDevices},
		{pattern: "POST /testdevices/add", h: c.addTestDevice},
		{pattern: "POST /testdevices/remove", h: c.removeTestDevice},
	}
}

type testDeviceRow struct {
	firmware.TestDevice
	Key    string
	Device *store.DeviceRow // in the inventory, if it checked in
}

type testDevicesView struct {
	Rows []testDeviceRow
}

// maxTestDeviceLookups bounds the test devices whose records the page
// reads, one by one; the others are listed without.
const maxTestDeviceLookups = 100

func (c *Console) testDevices(w http.ResponseWriter, r *http.Request, rq *request) error {
	tds, err := c.svc.TestDevices(rq.ctx)
	if err != nil {
		return err
	}
	var v testDevicesView
	for i, td := range tds {
		row := testDeviceRow{TestDevice: td}
		row.Key, _ = td.Key()
		if i < maxTestDeviceLookups {
			d, err := c.svc.Device(rq.ctx, row.Key)
			switch {
			case err == nil:
				row.Device = &d
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		v.Rows = append(v.Rows, row)
	}
	c.render(w, rq, http.StatusOK, "testdevices", "Test devices", v)
	return nil
}

func (c *Console) addTestDevice(w http.ResponseWriter, r *http.Request, rq *request) error {
	td := firmware.TestDevice{MAC: strings.TrimSpace(r.PostForm.Get("mac")), Serial: strings.TrimSpace(r.PostForm.Get("serial")), Note: strings.TrimSpace(r.PostForm.Get("note"))}
	td, err := c.svc.AddTestDevice(rq.ctx, td)
	if err != nil {
		return err
	}
	key, _ := td.Key()
	return c.done(w, r, rq, back(r, "/testdevices"), fmt.Sprintf("%s is a test device: it is offered pending versions from its next check-in.", key))
}

func (c *Console) removeTestDevice(w http.ResponseWriter, r *http.Request, rq *request) error {
	key := strings.TrimSpace(r.PostForm.Get("key"))
	if err := c.svc.RemoveTestDevice(rq.ctx, key); err != nil {
		return err
	}
	return c.done(w, r, rq, back(r, "/testdevices"), fmt.Sprintf("%s is no longer a test device.", key))
}

// back is where a change sends the browser: the form's "back" field when
// it is a page of the console, else def.
func back(r *http.Request, def string) string {
	if b := r.PostForm.Get("back"); b != "" && safeNext(b) == b {
		return b
	}
	return def
}
