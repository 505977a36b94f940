// Package firmware is the vocabulary of the device update service: who a
// device is, what version it runs, which versions an admin has imported,
// approved or kept for rollback, and what a device is offered when it checks
// in. It imports nothing of ours and does no I/O (but for the time zones
// NewSiteTable loads, through the loader it is given); time comes in as
// arguments; every other package speaks in its types.
//
// # Identities and rules
//
// A device identity is five names: DeviceType (UCPhone or RoundTable),
// Vendor, Model, Revision (the hardware letter) and Locale (three letters),
// written as a path, UCPhone/Polycom/CX600/A/ENU. An update rule exists per
// identity and holds up to three versions:
//
//	Pending   imported, offered to test devices only
//	Approved  offered to every device whose version differs
//	Restore   the previous approved version, the target of a rollback
//
// The transitions (see Rule):
//
//	import    Pending = v (creates the rule or refreshes its pending version)
//	approve   Restore = Approved; Approved = Pending; Pending = none
//	reject    Pending = none (only a pending version can be rejected)
//	restore   Approved = Restore; Restore = none; with no Restore version it
//	          is refused (ErrNothingToRestore) and nothing changes
//	withdraw  Approved = none: nothing is offered (only an approved version
//	          can be withdrawn)
//	remove    the rule is deleted (the store's job)
//
// RoundTable units deploy on import, as the original service does: an import
// for a RoundTable identity is approved at once unless the admin turned the
// DeployRoundTableOnImport setting off (see DeploysOnImport).
//
// # The offer
//
// Offer is the decision the service makes at every check-in, a pure function
// of the rule, the device's current version and whether it is a test device:
// a test device gets the pending version if there is one, else the approved
// one; every other device gets the approved version whenever it differs from
// its own, so a restore is a downgrade that devices take. With rollouts,
// sites and windows, Decide extends it (below); without them it is Offer.
//
// # Admin certificates
//
// AdminCert is the record of an admin client certificate the service
// issued: who holds it, with which role, until when, and whether it was
// revoked. The service keeps one per certificate and refuses every call
// made with a certificate it has no record of, or one revoked.
//
// # Sites and maintenance windows
//
// A Site names a place by its subnets and gives its devices an IANA time
// zone and maintenance windows, a weekly Schedule such as
// "Mon-Fri 22:00-05:00; Sat,Sun 00:00-24:00" read in that zone (see
// Schedule for the syntax and what happens when the clocks change). A
// SiteTable, built once from every site, finds a device's site by the
// longest subnet containing its address; devices through the edge belong
// to RemoteSite. CheckWindows says whether an offer may be made now under
// one or more schedules, and if not when it may.
//
// # Rollouts
//
// A Rollout approves a rule's pending version in waves. Its Plan gives
// Waves, cumulative shares of the identity's devices (1%,10%,50%,100%); a
// device belongs to the first wave whose share exceeds its Cohort, a
// stable hash of its key into [0, 10000), so it keeps its wave and new
// devices join the right one. Test devices get the version first, in every
// state, as they get any pending version. The life of a rollout:
//
//	StartRollout   scheduled (Plan.At ahead) or running, wave 0 open
//	Step           the service calls it with the current wave's WaveStats:
//	               the scheduled start; a pause when the wave's failed
//	               devices reach MaxFailures; the next wave when the wave has
//	               run WaveWait and its installed devices reach Success;
//	               completed after the last (the store then approves the rule)
//	Pause, Resume  by an admin; Resume accepts the failures that paused it
//	Stop           for good: reached devices keep the version, others From
//	Rollback       a restore during the rollout: reached devices get From
//
// While a rollout is live the rule keeps Pending = Version and Approved =
// From; every transition returns RolloutEvents for the history.
//
// A device's progress with a version is an Attempt the store keeps and
// judges by a RetryPolicy: a failure is retried after a back-off doubling
// up to a cap, and after Retries more counts as failed; a device offered a
// version and silent for ReportTimeout is stalled, and after StallTimeout
// more counts as failed. Each device's Outcome adds to its wave's
// WaveStats. Alarms report what an admin must see: a rollout that paused
// itself (Rollout.PauseAlarm), and the patent's overdue release, whose
// devices at a site have not come once it is past (CheckOverdue).
//
// # At a check-in
//
// The check-in handler looks up the device's site (SiteTable.Lookup, or
// Remote through the edge), hashes its cohort, and calls Decide, which
// allocates nothing and takes well under 2 µs (BenchmarkCheckInDecision).
// The Decision says what the device is told:
//
//   - Version: the version to offer, or none (downloads="0"): the
//     rollout's version to test devices and to the open waves, the approved
//     version (From) to other devices that run another one, nothing to a
//     device that already runs the rollout's version while it is live.
//   - Hold and Held: which version was held back and why (its wave, the
//     schedule, a pause, back-off after failures, the downloads cap, the
//     windows), for the device's history and for counting it as waiting.
//   - ComeBack: when the answer may change: the expected opening of the
//     device's wave (the current wave's opening plus WaveWait per wave
//     ahead, or At), the end of its back-off, or the next opening of its
//     windows after that. The handler sets NextCheck to it (with the
//     jitter it applies) when it comes before the device's normal
//     interval, never later; for a scheduled rollout this is the patent's
//     pull of the next check forward to the release time.
//   - InstallBy: for an offer made inside windows, when they close. An offer
//     is made only when the windows stay open for at least MinOpen; the
//     device is told InstallBy and must not install after it.
package firmware
