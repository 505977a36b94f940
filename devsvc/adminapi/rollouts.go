package adminapi

import (
	"context"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/opendus/opendus/devsvc/adminapi/adminpb"
	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

// The admin API of sites, rollouts, alarms and the device inventory: the
// server's methods, the client's, and their conversions.

// Listing devices: a ListDevices reply carries at most maxReplyBytes of
// encoded devices (one device more if a single one is larger, which a
// device record, bounded by the check-in body, never is by much) and at
// most the request's page size, DefaultDevicesPerReply by default, so
// that no message nears a client's 4 MiB limit.
const (
	maxReplyBytes          = 1 << 20
	DefaultDevicesPerReply = 2000
	MaxDevicesPerReply     = store.MaxPageSize
)

// ListDevices implements Admin.ListDevices: it pages through the service's
// device query and sends the devices in replies bounded in count and
// bytes.
func (s *Server) ListDevices(req *pb.ListDevicesRequest, stream pb.Admin_ListDevicesServer) error {
	ctx := stream.Context()
	q := store.DeviceQuery{Model: req.GetModel(), Rule: req.GetRule(), Site: req.GetSite(), Text: req.GetText(), After: req.GetAfter(),
		State: firmware.Outcome(req.GetState())}
	if v := req.GetVersion(); v != "" {
		ver, err := firmware.ParseVersion(v)
		if err != nil {
			return fmt.Errorf("%w: version %q: %w", service.ErrInvalid, v, err)
		}
		q.Version = ver
	}
	per := int(req.GetPageSize())
	if per <= 0 {
		per = DefaultDevicesPerReply
	}
	per = min(per, MaxDevicesPerReply)
	remaining := int(req.GetLimit()) // 0: no limit
	reply := &pb.ListDevicesReply{Total: -1}
	size, first := 0, true
	send := func(next string) error {
		reply.Next = next
		if err := stream.Send(reply); err != nil {
			return err
		}
		reply, size, first = &pb.ListDevicesReply{Total: -1}, 0, false
		return nil
	}
	for {
		q.Limit = per
		if remaining > 0 {
			q.Limit = min(per, remaining)
		}
		page, err := s.svc.QueryDevices(ctx, q)
		if err != nil {
			return err
		}
		if first && q.After == "" {
			reply.Total = int64(page.Total)
		}
		for _, row := range page.Devices {
			m := deviceRowPB(row, false)
			n := proto.Size(m)
			if len(reply.Devices) > 0 && (size+n > maxReplyBytes || len(reply.Devices) >= per) {
				if err := send(reply.Devices[len(reply.Devices)-1].GetKey()); err != nil {
					return err
				}
			}
			reply.Devices = append(reply.Devices, m)
			size += n
		}
		if remaining > 0 {
			remaining -= len(page.Devices)
			if remaining <= 0 {
				return send(page.Next) // the cursor to go on, if there is more
			}
		}
		if page.Next == "" {
			return send("")
		}
		q.After = page.Next
	}
}

// GetDevice implements Admin.GetDevice.
func (s *Server) GetDevice(ctx context.Context, req *pb.GetDeviceRequest) (*pb.Device, error) {
	d, err := s.svc.Device(ctx, req.GetKey())
	if err != nil {
		return nil, err
	}
	return deviceRowPB(d, true), nil
}

// ListSites implements Admin.ListSites.
func (s *Server) ListSites(ctx context.Context, _ *pb.ListSitesRequest) (*pb.ListSitesReply, error) {
	sites, err := s.svc.Sites(ctx)
	if err != nil {
		return nil, err
	}
	r := &pb.ListSitesReply{}
	for _, site := range sites {
		m := sitePB(site.Site)
		m.Devices = int64(site.Devices)
		r.Sites = append(r.Sites, m)
	}
	return r, nil
}

// PutSite implements Admin.PutSite.
func (s *Server) PutSite(ctx context.Context, req *pb.PutSiteRequest) (*pb.Site, error) {
	site, err := siteFromPB(req.GetSite())
	if err != nil {
		return nil, err
	}
	site, err = s.svc.PutSite(ctx, site, req.GetReplace())
	if err != nil {
		return nil, err
	}
	return sitePB(site), nil
}

// RemoveSite implements Admin.RemoveSite.
func (s *Server) RemoveSite(ctx context.Context, req *pb.RemoveSiteRequest) (*pb.RemoveSiteReply, error) {
	if err := s.svc.RemoveSite(ctx, req.GetName()); err != nil {
		return nil, err
	}
	return &pb.RemoveSiteReply{}, nil
}

// StartRollout implements Admin.StartRollout.
func (s *Server) StartRollout(ctx context.Context, req *pb.StartRolloutRequest) (*pb.Rollout, error) {
	plan, err := planFromPB(req.GetPlan())
	if err != nil {
		return nil, err
	}
	return rollout(s.svc.StartRollout(ctx, req.GetRule(), plan))
}

func rollout(r firmware.Rollout, err error) (*pb.Rollout, error) {
	if err != nil {
		return nil, err
	}
	return rolloutPB(r), nil
}

// ListRollouts implements Admin.ListRollouts.
func (s *Server) ListRollouts(ctx context.Context, _ *pb.ListRolloutsRequest) (*pb.ListRolloutsReply, error) {
	rs, err := s.svc.Rollouts(ctx)
	if err != nil {
		return nil, err
	}
	r := &pb.ListRolloutsReply{}
	for _, ro := range rs {
		m := rolloutPB(ro.Rollout)
		m.Approval, m.Total = ro.Approval, statsPB(ro.Total)
		r.Rollouts = append(r.Rollouts, m)
	}
	return r, nil
}

// GetRollout implements Admin.GetRollout.
func (s *Server) GetRollout(ctx context.Context, req *pb.RuleRequest) (*pb.RolloutProgress, error) {
	pr, err := s.svc.RolloutProgress(ctx, req.GetRule())
	if err != nil {
		return nil, err
	}
	return progressPB(pr), nil
}

// PauseRollout implements Admin.PauseRollout.
func (s *Server) PauseRollout(ctx context.Context, req *pb.PauseRolloutRequest) (*pb.Rollout, error) {
	return rollout(s.svc.PauseRollout(ctx, req.GetRule(), req.GetReason()))
}

// ResumeRollout implements Admin.ResumeRollout.
func (s *Server) ResumeRollout(ctx context.Context, req *pb.RuleRequest) (*pb.Rollout, error) {
	return rollout(s.svc.ResumeRollout(ctx, req.GetRule()))
}

// StopRollout implements Admin.StopRollout.
func (s *Server) StopRollout(ctx context.Context, req *pb.RuleRequest) (*pb.Rollout, error) {
	return rollout(s.svc.StopRollout(ctx, req.GetRule()))
}

// ListAlarms implements Admin.ListAlarms.
func (s *Server) ListAlarms(ctx context.Context, req *pb.ListAlarmsRequest) (*pb.ListAlarmsReply, error) {
	as, err := s.svc.Alarms(ctx, req.GetAll())
	if err != nil {
		return nil, err
	}
	r := &pb.ListAlarmsReply{}
	for _, a := range as {
		r.Alarms = append(r.Alarms, alarmPB(a))
	}
	return r, nil
}

// The client.

// RuleInfo is a rule with its devices counted: those of its identity, and
// those running its approved and pending versions.
type RuleInfo struct {
	firmware.Rule
	Devices    int64 `json:"devices"`
	OnApproved int64 `json:"onApproved"`
	OnPending  int64 `json:"onPending"`
}

func ruleInfo(p *pb.Rule) RuleInfo {
	return RuleInfo{Rule: ruleFromPB(p), Devices: p.GetDevices(), OnApproved: p.GetOnApproved(), OnPending: p.GetOnPending()}
}

// RulesWithDevices lists the rules with their devices counted.
func (c *Client) RulesWithDevices(ctx context.Context) ([]RuleInfo, error) {
	r, err := c.c.ListRules(ctx, &pb.ListRulesRequest{})
	if err != nil {
		return nil, c.wrap(err)
	}
	return convert(r.GetRules(), ruleInfo), nil
}

// RuleWithDevices returns one rule, named by ID or identity path, with
// its devices counted.
func (c *Client) RuleWithDevices(ctx context.Context, ref string) (RuleInfo, error) {
	r, err := c.c.GetRule(ctx, &pb.RuleRequest{Rule: ref})
	if err != nil {
		return RuleInfo{}, c.wrap(err)
	}
	return ruleInfo(r), nil
}

// SiteInfo is a site with the devices whose last check-in came from it.
type SiteInfo struct {
	firmware.Site
	Devices int64 `json:"devices"`
}

// Sites lists the sites, in name order.
func (c *Client) Sites(ctx context.Context) ([]SiteInfo, error) {
	r, err := c.c.ListSites(ctx, &pb.ListSitesRequest{})
	if err != nil {
		return nil, c.wrap(err)
	}
	out := make([]SiteInfo, 0, len(r.GetSites()))
	for _, m := range r.GetSites() {
		site, err := siteFromPB(m)
		if err != nil {
			return nil, fmt.Errorf("the server sent site %q: %w", m.GetName(), err)
		}
		out = append(out, SiteInfo{Site: site, Devices: m.GetDevices()})
	}
	return out, nil
}

// PutSite adds a site, or with replace changes the one of that name.
func (c *Client) PutSite(ctx context.Context, site firmware.Site, replace bool) (firmware.Site, error) {
	r, err := c.c.PutSite(ctx, &pb.PutSiteRequest{Site: sitePB(site), Replace: replace})
	if err != nil {
		return firmware.Site{}, c.wrap(err)
	}
	return siteFromPB(r)
}

// RemoveSite removes a site.
func (c *Client) RemoveSite(ctx context.Context, name string) error {
	_, err := c.c.RemoveSite(ctx, &pb.RemoveSiteRequest{Name: name})
	return c.wrap(err)
}

// StartRollout starts a rollout of the rule's pending version under plan.
func (c *Client) StartRollout(ctx context.Context, ref string, plan firmware.Plan) (firmware.Rollout, error) {
	r, err := c.c.StartRollout(ctx, &pb.StartRolloutRequest{Rule: ref, Plan: planPB(plan)})
	if err != nil {
		return firmware.Rollout{}, c.wrap(err)
	}
	return rolloutFromPB(r), nil
}

// RolloutInfo is a rollout with its devices counted together.
type RolloutInfo struct {
	firmware.Rollout
	Approval bool               `json:"approval,omitempty"`
	Total    firmware.WaveStats `json:"total"`
}

// Rollouts lists every rule's rollout, live ones first.
func (c *Client) Rollouts(ctx context.Context) ([]RolloutInfo, error) {
	r, err := c.c.ListRollouts(ctx, &pb.ListRolloutsRequest{})
	if err != nil {
		return nil, c.wrap(err)
	}
	return convert(r.GetRollouts(), func(m *pb.Rollout) RolloutInfo {
		return RolloutInfo{Rollout: rolloutFromPB(m), Approval: m.GetApproval(), Total: statsFromPB(m.GetTotal())}
	}), nil
}

// RolloutProgress returns the rule's rollout with its devices counted per
// wave and per site.
func (c *Client) RolloutProgress(ctx context.Context, ref string) (store.RolloutProgress, error) {
	r, err := c.c.GetRollout(ctx, &pb.RuleRequest{Rule: ref})
	if err != nil {
		return store.RolloutProgress{}, c.wrap(err)
	}
	return progressFromPB(r), nil
}

// PauseRollout pauses the rule's running rollout.
func (c *Client) PauseRollout(ctx context.Context, ref, reason string) (firmware.Rollout, error) {
	r, err := c.c.PauseRollout(ctx, &pb.PauseRolloutRequest{Rule: ref, Reason: reason})
	if err != nil {
		return firmware.Rollout{}, c.wrap(err)
	}
	return rolloutFromPB(r), nil
}

// ResumeRollout resumes the rule's paused rollout.
func (c *Client) ResumeRollout(ctx context.Context, ref string) (firmware.Rollout, error) {
	r, err := c.c.ResumeRollout(ctx, &pb.RuleRequest{Rule: ref})
	if err != nil {
		return firmware.Rollout{}, c.wrap(err)
	}
	return rolloutFromPB(r), nil
}

// StopRollout stops the rule's live rollout.
func (c *Client) StopRollout(ctx context.Context, ref string) (firmware.Rollout, error) {
	r, err := c.c.StopRollout(ctx, &pb.RuleRequest{Rule: ref})
	if err != nil {
		return firmware.Rollout{}, c.wrap(err)
	}
	return rolloutFromPB(r), nil
}

// Alarms lists the open alarms, or with all every alarm.
func (c *Client) Alarms(ctx context.Context, all bool) ([]firmware.Alarm, error) {
	r, err := c.c.ListAlarms(ctx, &pb.ListAlarmsRequest{All: all})
	if err != nil {
		return nil, c.wrap(err)
	}
	return convert(r.GetAlarms(), alarmFromPB), nil
}

// DeviceFilter selects devices for ListDevices; empty fields do not
// filter (see store.DeviceQuery for what each matches).
type DeviceFilter struct {
	Model, Rule, Site, Text string
	Version                 firmware.Version
	State                   firmware.Outcome
	// After starts after this key (a listing's Next); Limit stops after
	// that many devices (0: all); PageSize bounds the devices of each
	// message (0: the server's).
	After    string
	Limit    int
	PageSize int
}

// DeviceListing is what ListDevices learnt besides the devices.
type DeviceListing struct {
	// Total counts every match when the filter had no After; else -1.
	Total int
	// Next is the key to continue after (DeviceFilter.After) when Limit
	// stopped the listing; "" when every device was listed.
	Next string
	// Messages is how many messages the server streamed.
	Messages int
}

// ListDevices streams the devices f selects, in key order, calling each
// for every one; an error from each stops the listing and is returned.
func (c *Client) ListDevices(ctx context.Context, f DeviceFilter, each func(store.DeviceRow) error) (DeviceListing, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &pb.ListDevicesRequest{Model: f.Model, Rule: f.Rule, Site: f.Site, Text: f.Text, State: string(f.State),
		After: f.After, Limit: int64(f.Limit), PageSize: int32(f.PageSize)}
	if !f.Version.IsZero() {
		req.Version = f.Version.String()
	}
	stream, err := c.c.ListDevices(ctx, req)
	if err != nil {
		return DeviceListing{}, c.wrap(err)
	}
	out := DeviceListing{Total: -1}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, c.wrap(err)
		}
		if out.Messages == 0 {
			out.Total = int(m.GetTotal())
		}
		out.Messages++
		out.Next = m.GetNext()
		for _, d := range m.GetDevices() {
			if err := each(deviceRowFromPB(d)); err != nil {
				return out, err
			}
		}
	}
}

// Device returns one device, by MAC, serial or key, with its recent
// history.
func (c *Client) Device(ctx context.Context, key string) (store.DeviceRow, error) {
	r, err := c.c.GetDevice(ctx, &pb.GetDeviceRequest{Key: key})
	if err != nil {
		return store.DeviceRow{}, c.wrap(err)
	}
	return deviceRowFromPB(r), nil
}

// Conversions.

func sitePB(s firmware.Site) *pb.Site {
	m := &pb.Site{Name: s.Name, TimeZone: s.TimeZone, Windows: s.Windows.String(), NoPeers: s.NoPeers}
	for _, p := range s.Subnets {
		m.Subnets = append(m.Subnets, p.String())
	}
	return m
}

func siteFromPB(m *pb.Site) (firmware.Site, error) {
	s := firmware.Site{Name: m.GetName(), TimeZone: m.GetTimeZone(), NoPeers: m.GetNoPeers()}
	if len(m.GetSubnets()) > 0 {
		ps, err := firmware.ParseSubnets(strings.Join(m.GetSubnets(), ","))
		if err != nil {
			return s, err
		}
		s.Subnets = ps
	}
	w, err := firmware.ParseSchedule(m.GetWindows())
	if err != nil {
		return s, err
	}
	s.Windows = w
	return s, nil
}

func planPB(p firmware.Plan) *pb.Plan {
	return &pb.Plan{Waves: p.Waves.String(), WaveWait: durationpb.New(p.WaveWait), Success: p.Success.String(),
		MaxFailures: p.MaxFailures.String(), At: ts(p.At), Window: p.Window.String(), MaxDownloads: int64(p.MaxDownloads)}
}

// planFromPB reads a plan; unset fields take firmware.DefaultPlan's.
func planFromPB(m *pb.Plan) (firmware.Plan, error) {
	p := firmware.DefaultPlan()
	if m == nil {
		return p, nil
	}
	var err error
	if m.GetWaves() != "" {
		if p.Waves, err = firmware.ParseWaves(m.GetWaves()); err != nil {
			return p, err
		}
	}
	if m.GetWaveWait() != nil {
		p.WaveWait = m.GetWaveWait().AsDuration()
	}
	if m.GetSuccess() != "" {
		if p.Success, err = firmware.ParseShare(m.GetSuccess()); err != nil {
			return p, fmt.Errorf("success: %w", err)
		}
	}
	if m.GetMaxFailures() != "" {
		if p.MaxFailures, err = firmware.ParseThreshold(m.GetMaxFailures()); err != nil {
			return p, fmt.Errorf("max failures: %w", err)
		}
	}
	p.At = fromTS(m.GetAt())
	if p.Window, err = firmware.ParseSchedule(m.GetWindow()); err != nil {
		return p, err
	}
	p.MaxDownloads = int(m.GetMaxDownloads())
	return p, nil
}

func rolloutPB(r firmware.Rollout) *pb.Rollout {
	return &pb.Rollout{
		Rule: r.Rule, Identity: identityPB(r.Identity), Version: r.Version.String(), From: r.From.String(), Plan: planPB(r.Plan),
		State: string(r.State), Wave: int32(r.Wave), WaveOpened: ts(r.WaveOpened), Tolerated: int64(r.Tolerated), Reason: r.Reason,
		PausedBy: r.PausedBy, RolledBack: r.RolledBack, By: r.By, Created: ts(r.Created), Started: ts(r.Started), Ended: ts(r.Ended),
		Updated: ts(r.Updated),
	}
}

func rolloutFromPB(m *pb.Rollout) firmware.Rollout {
	plan, _ := planFromPB(m.GetPlan()) // the server sends valid plans
	return firmware.Rollout{
		Rule: m.GetRule(), Identity: identityFromPB(m.GetIdentity()), Version: version(m.GetVersion()), From: version(m.GetFrom()),
		Plan: plan, State: firmware.RolloutState(m.GetState()), Wave: int(m.GetWave()), WaveOpened: fromTS(m.GetWaveOpened()),
		Tolerated: int(m.GetTolerated()), Reason: m.GetReason(), PausedBy: m.GetPausedBy(), RolledBack: m.GetRolledBack(), By: m.GetBy(),
		Created: fromTS(m.GetCreated()), Started: fromTS(m.GetStarted()), Ended: fromTS(m.GetEnded()), Updated: fromTS(m.GetUpdated()),
	}
}

func statsPB(s firmware.WaveStats) *pb.WaveStats {
	return &pb.WaveStats{Devices: int64(s.Devices), Waiting: int64(s.Waiting), Offered: int64(s.Offered), Downloading: int64(s.Downloading),
		Installed: int64(s.Installed), Retrying: int64(s.Retrying), Stalled: int64(s.Stalled), Failed: int64(s.Failed)}
}

func statsFromPB(m *pb.WaveStats) firmware.WaveStats {
	return firmware.WaveStats{Devices: int(m.GetDevices()), Waiting: int(m.GetWaiting()), Offered: int(m.GetOffered()),
		Downloading: int(m.GetDownloading()), Installed: int(m.GetInstalled()), Retrying: int(m.GetRetrying()),
		Stalled: int(m.GetStalled()), Failed: int(m.GetFailed())}
}

func siteStatsPB(ss []store.SiteStats) []*pb.SiteStats {
	out := make([]*pb.SiteStats, len(ss))
	for i, s := range ss {
		out[i] = &pb.SiteStats{Site: s.Site, Stats: statsPB(s.WaveStats)}
	}
	return out
}

func siteStatsFromPB(ms []*pb.SiteStats) []store.SiteStats {
	if len(ms) == 0 {
		return nil
	}
	return convert(ms, func(m *pb.SiteStats) store.SiteStats {
		return store.SiteStats{Site: m.GetSite(), WaveStats: statsFromPB(m.GetStats())}
	})
}

func countsPB(cs []store.Count) []*pb.Count {
	out := make([]*pb.Count, len(cs))
	for i, c := range cs {
		out[i] = &pb.Count{Name: c.Name, Devices: int64(c.Devices)}
	}
	return out
}

func countsFromPB(ms []*pb.Count) []store.Count {
	if len(ms) == 0 {
		return nil
	}
	return convert(ms, func(m *pb.Count) store.Count { return store.Count{Name: m.GetName(), Devices: int(m.GetDevices())} })
}

func progressPB(pr store.RolloutProgress) *pb.RolloutProgress {
	m := &pb.RolloutProgress{Rollout: rolloutPB(pr.Rollout), Total: statsPB(pr.Total), Sites: siteStatsPB(pr.Sites),
		Test: statsPB(pr.Test), Failures: countsPB(pr.Failures), Holds: countsPB(pr.Holds)}
	m.Rollout.Approval = pr.Approval
	for _, w := range pr.Waves {
		m.Waves = append(m.Waves, &pb.WaveProgress{Wave: int32(w.Wave), From: w.From.String(), To: w.To.String(), Open: w.Open,
			Opens: ts(w.Opens), Stats: statsPB(w.Stats), Sites: siteStatsPB(w.Sites), Holds: countsPB(w.Holds)})
	}
	return m
}

func progressFromPB(m *pb.RolloutProgress) store.RolloutProgress {
	pr := store.RolloutProgress{Rollout: rolloutFromPB(m.GetRollout()), Approval: m.GetRollout().GetApproval(), Total: statsFromPB(m.GetTotal()),
		Sites: siteStatsFromPB(m.GetSites()), Test: statsFromPB(m.GetTest()), Failures: countsFromPB(m.GetFailures()), Holds: countsFromPB(m.GetHolds())}
	for _, w := range m.GetWaves() {
		from, _ := firmware.ParseShare(w.GetFrom())
		to, _ := firmware.ParseShare(w.GetTo())
		pr.Waves = append(pr.Waves, store.WaveProgress{Wave: int(w.GetWave()), From: from, To: to, Open: w.GetOpen(), Opens: fromTS(w.GetOpens()),
			Stats: statsFromPB(w.GetStats()), Sites: siteStatsFromPB(w.GetSites()), Holds: countsFromPB(w.GetHolds())})
	}
	return pr
}

func alarmPB(a firmware.Alarm) *pb.Alarm {
	m := &pb.Alarm{Id: a.ID, Kind: string(a.Kind), Rule: a.Rule, Identity: identityPB(a.Identity), Version: a.Version.String(),
		Detail: a.Detail, Raised: ts(a.Raised), Cleared: ts(a.Cleared)}
	for _, s := range a.Sites {
		m.Sites = append(m.Sites, &pb.SiteProgress{Site: s.Site, Devices: int64(s.Devices), NotCheckedIn: int64(s.NotCheckedIn),
			NotOffered: int64(s.NotOffered), NotUpdated: int64(s.NotUpdated)})
	}
	return m
}

func alarmFromPB(m *pb.Alarm) firmware.Alarm {
	a := firmware.Alarm{ID: m.GetId(), Kind: firmware.AlarmKind(m.GetKind()), Rule: m.GetRule(), Identity: identityFromPB(m.GetIdentity()),
		Version: version(m.GetVersion()), Detail: m.GetDetail(), Raised: fromTS(m.GetRaised()), Cleared: fromTS(m.GetCleared())}
	for _, s := range m.GetSites() {
		a.Sites = append(a.Sites, firmware.SiteProgress{Site: s.GetSite(), Devices: int(s.GetDevices()), NotCheckedIn: int(s.GetNotCheckedIn()),
			NotOffered: int(s.GetNotOffered()), NotUpdated: int(s.GetNotUpdated())})
	}
	return a
}

func attemptPB(a firmware.Attempt) *pb.Attempt {
	if a == (firmware.Attempt{}) {
		return nil
	}
	return &pb.Attempt{Version: a.Version.String(), Offered: ts(a.Offered), Failures: int64(a.Failures), Failed: ts(a.Failed),
		State: string(a.State), Reported: ts(a.Reported)}
}

func attemptFromPB(m *pb.Attempt) firmware.Attempt {
	if m == nil {
		return firmware.Attempt{}
	}
	return firmware.Attempt{Version: version(m.GetVersion()), Offered: fromTS(m.GetOffered()), Failures: int(m.GetFailures()),
		Failed: fromTS(m.GetFailed()), State: firmware.State(m.GetState()), Reported: fromTS(m.GetReported())}
}

// deviceRowPB is a device with what the index says of it, and with
// history its recent history.
func deviceRowPB(d store.DeviceRow, history bool) *pb.Device {
	m := devicePB(d.Device)
	m.Site, m.Hold, m.Held, m.Attempt = d.Site, string(d.Hold), d.Held.String(), attemptPB(d.Attempt)
	m.Outcome, m.Cohort, m.Test = string(d.Outcome), int32(d.Cohort), d.Test
	if history {
		for _, e := range d.History {
			m.History = append(m.History, &pb.DeviceEvent{Time: ts(e.Time), Kind: string(e.Kind), Version: e.Version.String(),
				Offered: e.Offered.String(), Hold: string(e.Hold), Held: e.Held.String(), Site: e.Site, State: string(e.State),
				Detail: e.Detail, Count: int64(e.Count)})
		}
	}
	return m
}

func deviceRowFromPB(m *pb.Device) store.DeviceRow {
	d := store.DeviceRow{Device: deviceFromPB(m), Outcome: firmware.Outcome(m.GetOutcome()), Cohort: int(m.GetCohort()), Test: m.GetTest()}
	d.Site, d.Hold, d.Held, d.Attempt = m.GetSite(), firmware.Hold(m.GetHold()), version(m.GetHeld()), attemptFromPB(m.GetAttempt())
	for _, e := range m.GetHistory() {
		d.History = append(d.History, firmware.DeviceEvent{Time: fromTS(e.GetTime()), Kind: firmware.DeviceEventKind(e.GetKind()),
			Version: version(e.GetVersion()), Offered: version(e.GetOffered()), Hold: firmware.Hold(e.GetHold()), Held: version(e.GetHeld()),
			Site: e.GetSite(), State: firmware.State(e.GetState()), Detail: e.GetDetail(), Count: int(e.GetCount())})
	}
	return d
}
