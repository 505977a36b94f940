package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opendus/opendus/firmware"
)

func (c *Console) deviceRoutes() []route {
	return []route{
		{pattern: "GET /devices", h: c.devices},
		{pattern: "GET /devices/{key}", h: c.device},
	}
}

// pageSize is the rows of a page of devices.
const pageSize = 50

// deviceFilter is the devices page's query.
type deviceFilter struct {
	Model   string // identity path
	Version string
	State   string // a firmware.State, or "idle"
	Text    string
	Page    int
}

func filterOf(q url.Values) deviceFilter {
	f := deviceFilter{Model: q.Get("model"), Version: q.Get("version"), State: q.Get("state"), Text: strings.TrimSpace(q.Get("q"))}
	f.Page, _ = strconv.Atoi(q.Get("page"))
	f.Page = max(f.Page, 1)
	if len(f.Text) > 100 {
		f.Text = f.Text[:100]
	}
	return f
}

// query returns the filter's query string for page.
func (f deviceFilter) query(page int) string {
	q := url.Values{}
	for k, v := range map[string]string{"model": f.Model, "version": f.Version, "state": f.State, "q": f.Text} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if page > 1 {
		q.Set("page", strconv.Itoa(page))
	}
	if len(q) == 0 {
		return "/devices"
	}
	return "/devices?" + q.Encode()
}

// matcher is a filter made ready for one pass over the snapshot: the
// model and version parsed once, the text lower-cased.
type matcher struct {
	id      *firmware.Identity
	version *firmware.Version
	state   *firmware.State
	text    string
	nothing bool // a model or version that cannot match
}

func (df deviceFilter) matcher() matcher {
	m := matcher{text: strings.ToLower(df.Text)}
	if df.Model != "" {
		id, err := firmware.ParseIdentity(df.Model)
		m.id, m.nothing = &id, err != nil
	}
	if df.Version != "" {
		v, err := firmware.ParseVersion(df.Version)
		m.version, m.nothing = &v, m.nothing || err != nil
	}
	if df.State != "" {
		st := firmware.State(df.State)
		if df.State == "idle" {
			st = firmware.StateIdle
		}
		m.state = &st
	}
	return m
}

// match reports whether device i of f passes the filter.
func (m *matcher) match(f *fleet, i int) bool {
	d := &f.devices[i]
	switch {
	case m.nothing,
		m.id != nil && d.Identity != *m.id,
		m.version != nil && d.Version != *m.version,
		m.state != nil && d.State != *m.state,
		m.text != "" && !strings.Contains(f.text[i], m.text):
		return false
	}
	return true
}

// states are the device states the filter offers.
var states = []string{"idle", string(firmware.StateDownloading), string(firmware.StateDownloaded), string(firmware.StateInstalling),
	string(firmware.StateRebooting), string(firmware.StateSuccess), string(firmware.StateFailure)}

type devicesView struct {
	Filter     deviceFilter
	Devices    []firmware.Device
	Tests      firmware.TestDevices
	Matched    int
	Total      int
	Page       int
	Pages      int
	Prev, Next string
	Taken      time.Time
	Models     []string
	Versions   []string
	States     []string
}

// devices lists the inventory, filtered, a page at a time. It filters the
// snapshot of the inventory (see fleet), one pass over it.
func (c *Console) devices(w http.ResponseWriter, r *http.Request, rq *request) error {
	f, err := c.fleet.get(rq.ctx)
	if err != nil {
		return err
	}
	tds, err := c.svc.TestDevices(rq.ctx)
	if err != nil {
		return err
	}
	df := filterOf(r.URL.Query())
	v := devicesView{Filter: df, Total: len(f.devices), Taken: f.taken, States: states, Tests: firmware.TestDevices{}}
	for _, td := range tds {
		v.Tests.Add(td)
	}
	m := df.matcher()
	first := (df.Page - 1) * pageSize
	for i := range f.devices {
		if !m.match(f, i) {
			continue
		}
		if v.Matched >= first && v.Matched < first+pageSize {
			v.Devices = append(v.Devices, f.devices[i])
		}
		v.Matched++
	}
	v.Pages = max(1, (v.Matched+pageSize-1)/pageSize)
	v.Page = min(df.Page, v.Pages)
	if v.Page > 1 {
		v.Prev = df.query(v.Page - 1)
	}
	if v.Page < v.Pages {
		v.Next = df.query(v.Page + 1)
	}
	for _, id := range f.identities {
		v.Models = append(v.Models, id.Path())
	}
	for _, ver := range slices.Backward(f.versions) {
		v.Versions = append(v.Versions, ver.String())
	}
	c.render(w, rq, http.StatusOK, "devices", "Devices", v)
	return nil
}

type deviceView struct {
	Device firmware.Device
	Test   bool
	Rule   *firmware.Rule
	Events []firmware.Event
	Taken  time.Time
}

// device shows one device: its record, the rule of its identity, whether
// it is a test device, and the history's events about it.
func (c *Console) device(w http.ResponseWriter, r *http.Request, rq *request) error {
	key := r.PathValue("key")
	f, err := c.fleet.get(rq.ctx)
	if err != nil {
		return err
	}
	i, ok := slices.BinarySearchFunc(f.devices, key, func(d firmware.Device, k string) int { return strings.Compare(d.Key, k) })
	if !ok {
		return fmt.Errorf("%w: no device %s in the inventory (as of %s)", errNoPage, key, when(f.taken))
	}
	v := deviceView{Device: f.devices[i], Taken: f.taken}
	tds, err := c.svc.TestDevices(rq.ctx)
	if err != nil {
		return err
	}
	set := firmware.TestDevices{}
	for _, td := range tds {
		set.Add(td)
	}
	v.Test = set.Contains(v.Device.MAC, v.Device.Serial)
	if rl, err := c.svc.Rule(rq.ctx, v.Device.Identity.Path()); err == nil {
		v.Rule = &rl
	}
	v.Events, err = c.historyAbout(rq, v.Device)
	if err != nil {
		return err
	}
	c.render(w, rq, http.StatusOK, "device", "Device "+key, v)
	return nil
}

// historyAbout returns the newest history events about a device (marked
// or unmarked as a test device), at most 20.
func (c *Console) historyAbout(rq *request, d firmware.Device) ([]firmware.Event, error) {
	return c.searchHistory(rq, 20, 0, func(e firmware.Event) bool {
		return e.Subject != "" && (e.Subject == d.Key || e.Subject == d.MAC || (d.Serial != "" && e.Subject == d.Serial))
	})
}
