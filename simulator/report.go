package simulator

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opendus/opendus/firmware"
)

// Report is the outcome of a run, for a person (WriteText) or a script
// (JSON). It holds only what the scenario and the service decide, nothing
// of the real time it took, so the same seed against the same service
// state gives the same report.
type Report struct {
	Seed    uint64    `json:"seed"`
	Devices int       `json:"devices"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"` // the simulated time the run reached
	// Models are the versions before and after, by model.
	Models []ModelReport `json:"models"`
	// Updates is how many installs succeeded, by UpdatedDevices devices.
	Updates        int64 `json:"updates"`
	UpdatedDevices int   `json:"updatedDevices"`
	// TestDevicesUpdated is how many of the test devices updated.
	TestDevicesUpdated int `json:"testDevicesUpdated"`
	TestDevices        int `json:"testDevices"`
	// Converge says when the updated devices finished their last update,
	// after the start: the median, the 90th percentile and the last.
	Converge Converge `json:"converge"`
	// Still shows the devices that were not running at the end.
	Downloading int `json:"downloading,omitempty"`
	WaitingIdle int `json:"waitingIdle,omitempty"`
	Rebooting   int `json:"rebooting,omitempty"`
	// What the devices asked of the service.
	CheckIns         int64 `json:"checkIns"`
	CheckInsInternal int64 `json:"checkInsInternal"`
	CheckInsExternal int64 `json:"checkInsExternal"`
	CheckedIn        int   `json:"checkedIn"` // devices that checked in at least once
	SignIns          int64 `json:"signIns"`
	DNSLookups       int64 `json:"dnsLookups"`
	StatusReports    int64 `json:"statusReports"`
	LostReports      int64 `json:"lostReports,omitempty"`
	Busy             int64 `json:"busy,omitempty"` // 503 answers, retried after Retry-After
	// BytesServed is what the devices downloaded, broken transfers
	// included; ResumedDownloads how many transfers resumed with Range.
	BytesServed      int64 `json:"bytesServed"`
	ResumedDownloads int64 `json:"resumedDownloads"`
	// Moved is how many devices stored a new service address.
	Moved int `json:"moved"`
	// Refusals and Failures, with their reasons.
	Refusals       []Count `json:"refusals"`
	RefusedDevices int     `json:"refusedDevices"`
	Failures       []Count `json:"failures"`
	// FailedDevices are the devices whose last update attempt failed.
	FailedDevices int `json:"failedDevices"`
	// Signed update metadata: check-ins whose metadata and offer
	// verified, the bytes of metadata fetched, the refusals by reason
	// (updatemeta.Reason: meta-expired, offer-hash, ...), and the devices
	// that refused something at least once (a file that is not the signed
	// one counts there too, its refusal among Failures as a checksum).
	VerifiedCheckIns int64 `json:"verifiedCheckIns"`
	// MetadataCurrent counts the verified check-ins that fetched no
	// metadata: the answer named the timestamp the device trusted.
	MetadataCurrent int64 `json:"metadataCurrent"`
	// MetadataStapled counts the verified check-ins whose answer stapled
	// a newer timestamp; MetadataRequests the requests for metadata and
	// piece lists.
	MetadataStapled      int64   `json:"metadataStapled"`
	MetadataRequests     int64   `json:"metadataRequests"`
	MetadataBytes        int64   `json:"metadataBytes"`
	VerifyRefusals       []Count `json:"verifyRefusals"`
	VerifyRefusedDevices int     `json:"verifyRefusedDevices"`
	// Missed is how many installs the devices dropped because the offer's
	// InstallBy (the close of their windows) came before they could
	// install.
	Missed int64 `json:"missed,omitempty"`
	// Sites are what the devices of each site (Group.Site) did, when the
	// groups name sites.
	Sites []SiteReport `json:"sites,omitempty"`
	// Offers are the versions the service offered during the run, per
	// model, with what became of them, and per wave (Scenario.Waves).
	Offers []OfferReport `json:"offers,omitempty"`
	// Subnets are the bytes each peer subnet (the /24 an internal group's
	// devices come from) fetched across the WAN (the primary service),
	// from replicas and from peers, and when its updates ended.
	Subnets []SubnetReport `json:"subnets,omitempty"`
	// PeerWaits counts the waits for a piece a peer had not got yet;
	// BadPieces the pieces from peers that did not match the piece list
	// (the peer avoided from then on); PeerFailures the peers given up on
	// otherwise (unreachable, too slow, an error).
	PeerDevices  int   `json:"peerDevices,omitempty"` // peer-capable devices
	PeerWaits    int64 `json:"peerWaits,omitempty"`
	BadPieces    int64 `json:"badPieces,omitempty"`
	PeerFailures int64 `json:"peerFailures,omitempty"`
	// PeerFailureReasons counts PeerFailures by kind.
	PeerFailureReasons []Count `json:"peerFailureReasons,omitempty"`
}

// SiteReport is what the devices of one site did.
type SiteReport struct {
	Site string `json:"site"` // "" for devices of no site
	// Devices, CheckedIn, Updated (installed a version), FailedDevices
	// (their last attempt failed) count devices.
	Devices       int `json:"devices"`
	CheckedIn     int `json:"checkedIn"`
	Updated       int `json:"updated"`
	FailedDevices int `json:"failedDevices"`
	// Failures counts failed attempts (downloads, installs), Missed the
	// installs dropped at InstallBy.
	Failures int64 `json:"failures"`
	Missed   int64 `json:"missed"`
	// FirstUpdate and LastUpdate are when the first and the last install
	// ended, after the start (zero: none).
	FirstUpdate Duration `json:"firstUpdate,omitzero"`
	LastUpdate  Duration `json:"lastUpdate,omitzero"`
	// Replica is the site's replica's URL; empty when it has none.
	Replica string `json:"replica,omitempty"`
	// BytesPrimary and BytesReplica are the file bytes the site's
	// devices fetched from the primary (across the WAN) and from a
	// replica (a file URL on any other host: the site's replica, or
	// Service.RelayURL's); Fallbacks counts the files fetched from the
	// alternative URL after the first failed.
	BytesPrimary int64 `json:"bytesPrimary"`
	BytesReplica int64 `json:"bytesReplica"`
	Fallbacks    int64 `json:"fallbacks,omitempty"`
}

// OfferReport is what became of a version the service offered a model's
// devices during the run.
type OfferReport struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	// Offered devices were offered it (test devices among them);
	// Installed installed it; Failed tried and never installed it.
	Offered     int `json:"offered"`
	TestDevices int `json:"testDevices"`
	Installed   int `json:"installed"`
	Failed      int `json:"failed"`
	// Failures counts the failed attempts at it, Missed the installs
	// dropped at InstallBy.
	Failures int64 `json:"failures"`
	Missed   int64 `json:"missed"`
	// FirstOffer is when it was first offered, LastOffer when the last
	// device was first offered it, after the start: offers that stop
	// well before the end while devices wait for it are a rollout that
	// paused (or a wave that waits).
	FirstOffer Duration `json:"firstOffer"`
	LastOffer  Duration `json:"lastOffer"`
	// Waves are the same per wave of Scenario.Waves, test devices apart.
	Waves []WaveReport `json:"waves,omitempty"`
}

// WaveReport is what one wave's devices (the model's devices, test devices
// apart, whose cohort falls in the wave) did with an offered version.
type WaveReport struct {
	Wave      int    `json:"wave"`  // from 1
	Share     string `json:"share"` // "5%-25%"
	Devices   int    `json:"devices"`
	Offered   int    `json:"offered"`
	Installed int    `json:"installed"`
	Failed    int    `json:"failed"`
	// FirstOffer is when a device of the wave was first offered the
	// version, after the start: about when the wave opened.
	FirstOffer Duration `json:"firstOffer,omitzero"`
}

// ModelReport counts a model's devices by version before and after.
type ModelReport struct {
	Model   string         `json:"model"`
	Devices int            `json:"devices"`
	Before  []VersionCount `json:"before"`
	After   []VersionCount `json:"after"`
}

// VersionCount is how many devices run a version.
type VersionCount struct {
	Version string `json:"version"`
	Devices int    `json:"devices"`
}

// Count is how often something happened, and why.
type Count struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// Converge is when the fleet's updates finished, after the start.
type Converge struct {
	Half Duration `json:"half"`
	P90  Duration `json:"p90"`
	All  Duration `json:"all"`
}

// Report returns the report of the run so far. Call it between runs.
func (s *Sim) Report() Report {
	var t tally
	for _, w := range s.workers {
		t.add(&w.t)
	}
	r := Report{
		Seed: s.sc.Seed, Devices: len(s.devs), Start: s.sc.Start, End: s.Now(),
		Updates: t.updates, CheckIns: t.checkIns[0] + t.checkIns[1], CheckInsInternal: t.checkIns[0], CheckInsExternal: t.checkIns[1],
		SignIns: t.signIns, DNSLookups: t.lookups, StatusReports: t.reports, LostReports: t.lost, Busy: t.busy,
		BytesServed: t.bytes, ResumedDownloads: t.resumed,
		Downloading: s.phases[phaseDownloading], WaitingIdle: s.phases[phaseWaitingIdle], Rebooting: s.phases[phaseRebooting],
		CheckedIn: s.checkedIn, UpdatedDevices: s.updated, FailedDevices: s.failed, RefusedDevices: s.refused,
		Refusals: []Count{}, Failures: []Count{},
		VerifiedCheckIns: t.verified, MetadataCurrent: t.metaSkipped, MetadataBytes: t.metaBytes,
		MetadataStapled: t.metaStapled, MetadataRequests: t.metaRequests, VerifyRefusals: []Count{},
	}
	for i, rs := range verifyReasons {
		if n := t.verify[i]; n > 0 {
			r.VerifyRefusals = append(r.VerifyRefusals, Count{string(rs), n})
		}
	}
	after := map[[2]string]int{}
	devices := map[string]int{}
	var done []int64
	for i := range s.devs {
		d := &s.devs[i]
		model := s.groups[d.group].id.Path()
		after[[2]string{model, d.version.String()}]++
		devices[model]++
		if d.moved {
			r.Moved++
		}
		if d.peerCapable {
			r.PeerDevices++
		}
		if d.refusedMeta {
			r.VerifyRefusedDevices++
		}
		if d.test {
			r.TestDevices++
			if d.updates > 0 {
				r.TestDevicesUpdated++
			}
		}
		if d.lastUpdate != never {
			done = append(done, d.lastUpdate)
		}
	}
	for model, n := range devices {
		r.Models = append(r.Models, ModelReport{Model: model, Devices: n, Before: versions(s.before, model), After: versions(after, model)})
	}
	r.Missed = t.missed
	r.Sites = s.siteReports()
	r.Offers = s.offerReports()
	r.Subnets = s.subnetReports()
	r.PeerWaits, r.BadPieces = t.peerWaits, t.badPieces
	for i, n := range t.peerFailed {
		r.PeerFailures += n
		if n > 0 {
			r.PeerFailureReasons = append(r.PeerFailureReasons, Count{peerFailureText[i], n})
		}
	}
	slices.SortFunc(r.Models, func(a, b ModelReport) int { return cmp.Compare(a.Model, b.Model) })
	if len(done) > 0 {
		slices.Sort(done)
		at := func(q float64) Duration { return Duration(done[int(q*float64(len(done)-1))]) }
		r.Converge = Converge{Half: at(0.5), P90: at(0.9), All: at(1)}
	}
	for i := reason(1); i < numReasons; i++ {
		if n := t.refusals[i]; n > 0 {
			r.Refusals = append(r.Refusals, Count{reasonText[i], n})
		}
		if n := t.failures[i]; n > 0 {
			r.Failures = append(r.Failures, Count{reasonText[i], n})
		}
	}
	return r
}

// siteReports counts the devices by their group's site, when a group
// names one.
func (s *Sim) siteReports() []SiteReport {
	named := false
	for i := range s.groups {
		named = named || s.groups[i].site != ""
	}
	if !named {
		return nil
	}
	bySite := map[string]*SiteReport{}
	for i := range s.devs {
		d := &s.devs[i]
		site := s.groups[d.group].site
		if site == "" && s.groups[d.group].loc == firmware.External {
			site = firmware.RemoteSite // as the service sees them
		}
		sr := bySite[site]
		if sr == nil {
			sr = &SiteReport{Site: site, Replica: s.sc.Replicas[site]}
			bySite[site] = sr
		}
		sr.Devices++
		sr.BytesPrimary += d.fromPrimary
		sr.BytesReplica += d.fromReplica
		sr.Fallbacks += int64(d.fallbacks)
		if d.checkedIn {
			sr.CheckedIn++
		}
		if d.updates > 0 {
			sr.Updated++
		}
		if d.failed {
			sr.FailedDevices++
		}
		for _, tr := range d.tries {
			sr.Failures += int64(tr.failures)
			sr.Missed += int64(tr.missed)
		}
		d.updateSpan(&sr.FirstUpdate, &sr.LastUpdate)
	}
	out := make([]SiteReport, 0, len(bySite))
	for _, sr := range bySite {
		out = append(out, *sr)
	}
	slices.SortFunc(out, func(a, b SiteReport) int { return cmp.Compare(a.Site, b.Site) })
	return out
}

// offerReports gathers the devices' tries by model and version, and by
// wave of Scenario.Waves.
func (s *Sim) offerReports() []OfferReport {
	waves, _ := firmware.ParseWaves(s.sc.Waves) // checked by Normalize
	type key struct {
		model int32 // a group of the model
		v     firmware.Version
	}
	models := map[firmware.Identity]int32{} // the first group of each model
	for i := range s.groups {
		if _, ok := models[s.groups[i].id]; !ok {
			models[s.groups[i].id] = int32(i)
		}
	}
	byOffer := map[key]*OfferReport{}
	var order []key
	// perWave[model group] counts each wave's devices.
	perWave := map[int32][]int{}
	for i := range s.devs {
		d := &s.devs[i]
		m := models[s.groups[d.group].id]
		wave := -1
		if len(waves) > 0 && !d.test {
			wave = waves.Wave(firmware.Cohort(d.mac))
			if perWave[m] == nil {
				perWave[m] = make([]int, len(waves))
			}
			perWave[m][wave]++
		}
		for _, tr := range d.tries {
			k := key{m, tr.version}
			o := byOffer[k]
			if o == nil {
				o = &OfferReport{Model: s.groups[m].id.Path(), Version: tr.version.String(), FirstOffer: Duration(tr.offered)}
				if len(waves) > 0 {
					o.Waves = make([]WaveReport, len(waves))
				}
				byOffer[k] = o
				order = append(order, k)
			}
			o.Offered++
			o.FirstOffer = min(o.FirstOffer, Duration(tr.offered))
			o.LastOffer = max(o.LastOffer, Duration(tr.offered))
			o.Failures += int64(tr.failures)
			o.Missed += int64(tr.missed)
			failed := tr.failures > 0 && !tr.installed
			switch {
			case tr.installed:
				o.Installed++
			case failed:
				o.Failed++
			}
			if d.test {
				o.TestDevices++
			}
			if wave < 0 {
				continue
			}
			w := &o.Waves[wave]
			if w.Offered == 0 || Duration(tr.offered) < w.FirstOffer {
				w.FirstOffer = Duration(tr.offered)
			}
			w.Offered++
			if tr.installed {
				w.Installed++
			}
			if failed {
				w.Failed++
			}
		}
	}
	out := make([]OfferReport, 0, len(order))
	for _, k := range order {
		o := byOffer[k]
		for i := range o.Waves {
			lo, hi := waves.Bounds(i)
			o.Waves[i].Wave, o.Waves[i].Share = i+1, firmware.Share(lo).String()+"-"+firmware.Share(hi).String()
			o.Waves[i].Devices = perWave[k.model][i]
		}
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b OfferReport) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.FirstOffer, b.FirstOffer), cmp.Compare(a.Version, b.Version))
	})
	return out
}

func versions(m map[[2]string]int, model string) []VersionCount {
	var out []VersionCount
	for k, n := range m {
		if k[0] == model {
			out = append(out, VersionCount{k[1], n})
		}
	}
	// Most devices first, then by version.
	slices.SortFunc(out, func(a, b VersionCount) int {
		if c := cmp.Compare(b.Devices, a.Devices); c != 0 {
			return c
		}
		return cmp.Compare(a.Version, b.Version)
	})
	return out
}

// WriteText writes the report for a person: a dozen lines and a table of
// models, fit for one screen.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	span := r.End.Sub(r.Start)
	fmt.Fprintf(&b, "%d devices, seed %d, %s simulated from %s\n\n", r.Devices, r.Seed, human(span), r.Start.Format("Mon 2 Jan 15:04 MST"))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tDEVICES\tBEFORE\tAFTER")
	for _, m := range r.Models {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", m.Model, m.Devices, versionList(m.Before), versionList(m.After))
	}
	tw.Flush()
	b.WriteByte('\n')
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-17s"+format+"\n", append([]any{label}, args...)...)
	}
	line("Updates done", "%d on %d devices (test devices: %d of %d updated)", r.Updates, r.UpdatedDevices, r.TestDevicesUpdated, r.TestDevices)
	if r.Updates > 0 {
		line("Time to converge", "half %s, 90%% %s, all %s after the start", human(time.Duration(r.Converge.Half)), human(time.Duration(r.Converge.P90)), human(time.Duration(r.Converge.All)))
	} else {
		line("Time to converge", "no device updated")
	}
	if n := r.Downloading + r.WaitingIdle + r.Rebooting; n > 0 {
		line("Still updating", "%d (downloading %d, waiting for idle %d, rebooting %d)", n, r.Downloading, r.WaitingIdle, r.Rebooting)
	}
	line("Check-ins", "%d (LAN %d, edge %d) from %d devices; %d sign-ins, %d DNS lookups", r.CheckIns, r.CheckInsInternal, r.CheckInsExternal, r.CheckedIn, r.SignIns, r.DNSLookups)
	line("Status reports", "%d%s", r.StatusReports, cond(r.LostReports > 0, fmt.Sprintf(" (%d not taken)", r.LostReports)))
	line("Bytes served", "%s (%d transfers resumed)", bytesHuman(r.BytesServed), r.ResumedDownloads)
	if r.Moved > 0 || r.Busy > 0 {
		line("Moved / busy", "%d devices moved to a new address; %d answers 503 (retried)", r.Moved, r.Busy)
	}
	counts := func(label string, cs []Count, devices int, what string) {
		if len(cs) == 0 {
			line(label, "none")
			return
		}
		var total int64
		for _, c := range cs {
			total += c.Count
		}
		line(label, "%d (%d devices %s)", total, devices, what)
		for _, c := range cs {
			fmt.Fprintf(&b, "  %8d  %s\n", c.Count, c.Reason)
		}
	}
	counts("Refusals", r.Refusals, r.RefusedDevices, "refused at least once")
	counts("Failures", r.Failures, r.FailedDevices, "whose last attempt failed")
	if r.VerifiedCheckIns > 0 || len(r.VerifyRefusals) > 0 {
		line("Signed metadata", "%d check-ins verified (%d current by the answer, %d with a newer timestamp stapled to it), %d requests, %s of metadata",
			r.VerifiedCheckIns, r.MetadataCurrent, r.MetadataStapled, r.MetadataRequests, bytesHuman(r.MetadataBytes))
		counts("Verification", r.VerifyRefusals, r.VerifyRefusedDevices, "refused metadata, an offer or a file and went to the service")
	}
	if r.Missed > 0 {
		line("Missed windows", "%d installs dropped: InstallBy came before the device could install", r.Missed)
	}
	if r.PeerDevices > 0 {
		b.WriteByte('\n')
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SUBNET\tDEVICES\tWAN\tREPLICAS\tPEERS\tPIECE LISTS\tFIRST UPDATE\tLAST UPDATE")
		for _, s := range r.Subnets {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", s.Subnet, s.Devices, s.WANBytes, s.ReplicaBytes, s.PeerBytes, s.ListBytes, after(s.FirstUpdate), after(s.LastUpdate))
		}
		tw.Flush()
		line("Peers", "%d peer-capable devices; %d waits for a piece not there yet, %d bad pieces detected, %d peers given up on", r.PeerDevices, r.PeerWaits, r.BadPieces, r.PeerFailures)
		for _, c := range r.PeerFailureReasons {
			fmt.Fprintf(&b, "  %8d  %s\n", c.Count, c.Reason)
		}
	}
	if len(r.Sites) > 0 {
		b.WriteByte('\n')
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SITE\tDEVICES\tCHECKED IN\tUPDATED\tFAILED\tFAILURES\tMISSED\tFIRST UPDATE\tLAST UPDATE\tFROM THE PRIMARY (WAN)\tFROM THE REPLICA\tFALLBACKS")
		for _, s := range r.Sites {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\n", cmpOr(s.Site, "(no site)"), s.Devices, s.CheckedIn, s.Updated, s.FailedDevices,
				s.Failures, s.Missed, after(s.FirstUpdate), after(s.LastUpdate), bytesHuman(s.BytesPrimary), bytesHuman(s.BytesReplica), s.Fallbacks)
		}
		tw.Flush()
	}
	for _, o := range r.Offers {
		fmt.Fprintf(&b, "\n%s %s: offered to %d devices (%d test devices) from %s, the last first offered at %s; %d installed, %d failed (%d failed attempts, %d missed windows)\n",
			o.Model, o.Version, o.Offered, o.TestDevices, "+"+human(time.Duration(o.FirstOffer)), "+"+human(time.Duration(o.LastOffer)), o.Installed, o.Failed, o.Failures, o.Missed)
		if len(o.Waves) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  WAVE\tSHARE\tDEVICES\tOFFERED\tINSTALLED\tFAILED\tFIRST OFFER")
		for _, w := range o.Waves {
			first := "-"
			if w.Offered > 0 {
				first = after(w.FirstOffer)
			}
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%d\t%d\t%d\t%s\n", w.Wave, w.Share, w.Devices, w.Offered, w.Installed, w.Failed, first)
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// after writes a time after the start as +1d02h05m; "-" for none.
func after(d Duration) string {
	if d == 0 {
		return "-"
	}
	return "+" + human(time.Duration(d))
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func cond(ok bool, s string) string {
	if ok {
		return s
	}
	return ""
}

func versionList(vs []VersionCount) string {
	parts := make([]string, 0, len(vs))
	for i, v := range vs {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("+%d more", len(vs)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", v.Version, v.Devices))
	}
	return strings.Join(parts, ", ")
}

// human prints a duration as 1d02h05m, 3h10m, 4m30s.
func human(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	days, h, m := d/(24*time.Hour), d%(24*time.Hour)/time.Hour, d%time.Hour/time.Minute
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%02dh%02dm", days, h, m)
	case h > 0:
		return fmt.Sprintf("%dh%02dm", h, m)
	}
	return fmt.Sprintf("%dm", m)
}

func bytesHuman(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// updateSpan widens first and last (zero: none yet) to the ends of d's
// installs that succeeded.
func (d *device) updateSpan(first, last *Duration) {
	for _, in := range d.installs {
		if in.failed {
			continue
		}
		if *first == 0 || Duration(in.ended) < *first {
			*first = Duration(in.ended)
		}
		*last = max(*last, Duration(in.ended))
	}
}
