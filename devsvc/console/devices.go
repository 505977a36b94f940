package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
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

// deviceFilter is the devices page's query: the store's filters, the
// cursor of the page, and the page's number (for the reader only: the
// cursor says where the page starts).
type deviceFilter struct {
	Model   string // a model name or identity path
	Version string
	State   string // a firmware.Outcome
	Site    string
	Rule    string // a rule ID
	Text    string
	After   string // the key the page starts after
	Page    int
}

func filterOf(q url.Values) deviceFilter {
	f := deviceFilter{Model: q.Get("model"), Version: strings.TrimSpace(q.Get("version")), State: q.Get("state"),
		Site: q.Get("site"), Rule: q.Get("rule"), Text: strings.TrimSpace(q.Get("q")), After: q.Get("after")}
	f.Page, _ = strconv.Atoi(q.Get("page"))
	f.Page = max(f.Page, 1)
	if f.After == "" {
		f.Page = 1
	}
	if len(f.Text) > 100 {
		f.Text = f.Text[:100]
	}
	return f
}

// query returns the filter's URL for the page starting after the key
// after, numbered page.
func (f deviceFilter) query(after string, page int) string {
	q := url.Values{}
	for k, v := range map[string]string{"model": f.Model, "version": f.Version, "state": f.State, "site": f.Site, "rule": f.Rule, "q": f.Text} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if after != "" {
		q.Set("after", after)
		q.Set("page", strconv.Itoa(page))
	}
	if len(q) == 0 {
		return "/devices"
	}
	return "/devices?" + q.Encode()
}

// storeQuery is the store's query of the filter, or an error that says
// which filter cannot be read.
func (f deviceFilter) storeQuery() (store.DeviceQuery, error) {
	q := store.DeviceQuery{Model: f.Model, Site: f.Site, Rule: f.Rule, Text: f.Text, After: f.After, Limit: pageSize}
	var errs []error
	if f.Version != "" {
		v, err := firmware.ParseVersion(f.Version)
		if err != nil {
			errs = append(errs, fmt.Errorf("version: %w", err))
		}
		q.Version = v
	}
	if f.State != "" {
		st, err := store.ParseOutcome(f.State)
		if err != nil {
			errs = append(errs, err)
		}
		q.State = st
	}
	if f.Site != "" {
		if err := firmware.ValidSiteName(f.Site); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return q, fmt.Errorf("%w: %w", service.ErrInvalid, err)
	}
	return q, nil
}

// sortVersionsDesc sorts versions, the newest first.
func sortVersionsDesc(vs []firmware.Version) {
	slices.SortFunc(vs, func(a, b firmware.Version) int { return b.Compare(a) })
}

// outcomes are the states the filter offers: where devices stand with
// their rule's rollout (an approve is one).
var outcomes = []string{string(firmware.OutcomeWaiting), string(firmware.OutcomeOffered), string(firmware.OutcomeDownloading),
	string(firmware.OutcomeInstalled), string(firmware.OutcomeRetrying), string(firmware.OutcomeStalled), string(firmware.OutcomeFailed)}

// option is a choice of a filter's select.
type option struct{ Value, Label string }

type devicesView struct {
	Filter deviceFilter
	Error  string // a filter that cannot be read
	Rows   []store.DeviceRow
	// Matched counts the matches of every page; only the first page
	// counts them (-1 on the others).
	Matched int
	Total   int // devices in the inventory
	Page    int
	// First and Next are the links to the first and the next page ("":
	// none).
	First, Next string
	Models      []string
	Versions    []string
	States      []string
	Sites       []string
	Rules       []option
}

// devices lists the inventory through the store's indexed query,
// filtered, a page at a time from a cursor (the key the page starts
// after).
func (c *Console) devices(w http.ResponseWriter, r *http.Request, rq *request) error {
	df := filterOf(r.URL.Query())
	v := devicesView{Filter: df, Page: df.Page, States: outcomes, Matched: -1}
	summary, err := c.svc.FleetSummary(rq.ctx)
	if err != nil {
		return err
	}
	models, versions := map[string]bool{}, map[firmware.Version]bool{}
	var vs []firmware.Version
	for _, mv := range summary {
		v.Total += mv.Devices
		if p := mv.Identity.Path(); !models[p] {
			models[p] = true
			v.Models = append(v.Models, p)
		}
		if !versions[mv.Version] && !mv.Version.IsZero() {
			versions[mv.Version] = true
			vs = append(vs, mv.Version)
		}
	}
	sortVersionsDesc(vs)
	for _, ver := range vs {
		v.Versions = append(v.Versions, ver.String())
	}
	sites, err := c.svc.Sites(rq.ctx)
	if err != nil {
		return err
	}
	for _, s := range sites {
		v.Sites = append(v.Sites, s.Name)
	}
	rules, err := c.svc.Rules(rq.ctx)
	if err != nil {
		return err
	}
	for _, rl := range rules {
		v.Rules = append(v.Rules, option{rl.ID, rl.Identity.Path()})
	}
	q, err := df.storeQuery()
	if err == nil {
		var page store.DevicePage
		page, err = c.svc.QueryDevices(rq.ctx, q)
		if err == nil {
			v.Rows, v.Matched = page.Devices, page.Total
			if page.Next != "" {
				v.Next = df.query(page.Next, df.Page+1)
			}
		}
	}
	switch {
	case err == nil:
	case statusOf(err) == http.StatusBadRequest, statusOf(err) == http.StatusNotFound:
		// A filter that cannot be read, or a rule that is not there: the
		// page says so and keeps the filter, to be corrected.
		v.Error = err.Error()
	default:
		return err
	}
	if df.After != "" {
		v.First = df.query("", 1)
	}
	c.render(w, rq, http.StatusOK, "devices", "Devices", v)
	return nil
}

type deviceView struct {
	Device store.DeviceRow
	Rule   *firmware.Rule
	// Rollout is the rule's rollout, if it has one.
	Rollout *firmware.Rollout
	// Events are the history's changes about the device (marked a test
	// device, ...), newest first.
	Events []firmware.Event
}

// device shows one device: its record, where it stands with its rule's
// rollout, its recent check-ins, offers and reports, and the history's
// changes about it.
func (c *Console) device(w http.ResponseWriter, r *http.Request, rq *request) error {
	key := r.PathValue("key")
	d, err := c.svc.Device(rq.ctx, key)
	if err != nil {
		return err
	}
	v := deviceView{Device: d}
	if rl, err := c.svc.Rule(rq.ctx, d.Identity.Path()); err == nil {
		v.Rule = &rl
		if pr, err := c.svc.RolloutProgress(rq.ctx, rl.ID); err == nil {
			v.Rollout = &pr.Rollout
		}
	}
	v.Events, err = c.historyAbout(rq, d.Device)
	if err != nil {
		return err
	}
	c.render(w, rq, http.StatusOK, "device", "Device "+d.Key, v)
	return nil
}

// historyAbout returns the newest history events about a device (marked
// or unmarked as a test device), at most 20.
func (c *Console) historyAbout(rq *request, d firmware.Device) ([]firmware.Event, error) {
	return c.searchHistory(rq, 20, 0, func(e firmware.Event) bool {
		return e.Subject != "" && (e.Subject == d.Key || e.Subject == d.MAC || (d.Serial != "" && e.Subject == d.Serial))
	})
}
