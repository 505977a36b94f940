// Package firmware is the vocabulary of the device update service: who a
// device is, what version it runs, which versions an admin has imported,
// approved or kept for rollback, and what a device is offered when it checks
// in. It imports nothing of ours and does no I/O; every other package speaks
// in its types.
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
// its own, so a restore is a downgrade that devices take.
//
// # Admin certificates
//
// AdminCert is the record of an admin client certificate the service
// issued: who holds it, with which role, until when, and whether it was
// revoked. The service keeps one per certificate and refuses every call
// made with a certificate it has no record of, or one revoked.
package firmware
