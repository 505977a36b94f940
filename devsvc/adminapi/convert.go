package adminapi

import (
	"encoding/hex"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/opendus/opendus/devsvc/adminapi/adminpb"
	"github.com/opendus/opendus/firmware"
)

// The conversions between the firmware vocabulary and the wire messages, in
// both directions: the server uses the first half, the client the second.

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func fromTS(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func identityPB(id firmware.Identity) *pb.Identity {
	return &pb.Identity{DeviceType: id.DeviceType, Vendor: id.Vendor, Model: id.Model, Revision: id.Revision, Locale: id.Locale}
}

func identityFromPB(p *pb.Identity) firmware.Identity {
	return firmware.Identity{DeviceType: p.GetDeviceType(), Vendor: p.GetVendor(), Model: p.GetModel(), Revision: p.GetRevision(), Locale: p.GetLocale()}
}

// version parses a wire version; the server sends only valid ones, so a
// malformed one reads as no version.
func version(s string) firmware.Version {
	v, _ := firmware.ParseVersion(s)
	return v
}

func rulePB(r firmware.Rule) *pb.Rule {
	return &pb.Rule{
		Id: r.ID, Identity: identityPB(r.Identity), UpdateType: r.UpdateType,
		Pending: r.Pending.String(), Approved: r.Approved.String(), Restore: r.Restore.String(),
		Created: ts(r.Created), Updated: ts(r.Updated), ApproveAt: ts(r.ApproveAt),
	}
}

func ruleFromPB(p *pb.Rule) firmware.Rule {
	return firmware.Rule{
		ID: p.GetId(), Identity: identityFromPB(p.GetIdentity()), UpdateType: p.GetUpdateType(),
		Pending: version(p.GetPending()), Approved: version(p.GetApproved()), Restore: version(p.GetRestore()),
		Created: fromTS(p.GetCreated()), Updated: fromTS(p.GetUpdated()), ApproveAt: fromTS(p.GetApproveAt()),
	}
}

func filesPB(files []firmware.Image) []*pb.File {
	out := make([]*pb.File, len(files))
	for i, f := range files {
		out[i] = &pb.File{Name: f.Name, Size: f.Size, Sha256: f.SHA256Hex(), Role: string(f.Role)}
	}
	return out
}

func filesFromPB(files []*pb.File) []firmware.Image {
	out := make([]firmware.Image, len(files))
	for i, f := range files {
		out[i] = firmware.Image{Name: f.GetName(), Size: f.GetSize(), Role: firmware.Role(f.GetRole())}
		if b, err := hex.DecodeString(f.GetSha256()); err == nil && len(b) == 32 {
			copy(out[i].SHA256[:], b)
		}
	}
	return out
}

func updatePB(u firmware.Update) *pb.Update {
	return &pb.Update{Identity: identityPB(u.Identity), Version: u.Version.String(), Files: filesPB(u.Files)}
}

func updateFromPB(p *pb.Update) firmware.Update {
	return firmware.Update{Identity: identityFromPB(p.GetIdentity()), Version: version(p.GetVersion()), Files: filesFromPB(p.GetFiles())}
}

func testDevicePB(d firmware.TestDevice) *pb.TestDevice {
	return &pb.TestDevice{Mac: d.MAC, Serial: d.Serial, Note: d.Note, Added: ts(d.Added)}
}

func testDeviceFromPB(p *pb.TestDevice) firmware.TestDevice {
	return firmware.TestDevice{MAC: p.GetMac(), Serial: p.GetSerial(), Note: p.GetNote(), Added: fromTS(p.GetAdded())}
}

func accountPB(a firmware.Account) *pb.Account {
	return &pb.Account{Name: a.Name, Disabled: a.Disabled, Created: ts(a.Created), Updated: ts(a.Updated)}
}

func accountFromPB(p *pb.Account) firmware.Account {
	return firmware.Account{Name: p.GetName(), Disabled: p.GetDisabled(), Created: fromTS(p.GetCreated()), Updated: fromTS(p.GetUpdated())}
}

func devicePB(d firmware.Device) *pb.Device {
	mods := make([]*pb.Module, len(d.Modules))
	for i, m := range d.Modules {
		mods[i] = &pb.Module{Name: m.Name, Version: m.Version.String(), Timestamp: m.Timestamp}
	}
	return &pb.Device{
		Key: d.Key, Mac: d.MAC, Serial: d.Serial, Identity: identityPB(d.Identity), Version: d.Version.String(),
		Modules: mods, User: d.User, Location: string(d.Location), Address: d.Address,
		LastCheckIn: ts(d.LastCheckIn), Offered: d.Offered.String(), State: string(d.State),
		Target: d.Target.String(), Error: d.Error, LastReport: ts(d.LastReport), LastUpdate: ts(d.LastUpdate),
	}
}

func deviceFromPB(p *pb.Device) firmware.Device {
	mods := make([]firmware.Module, len(p.GetModules()))
	for i, m := range p.GetModules() {
		mods[i] = firmware.Module{Name: m.GetName(), Version: version(m.GetVersion()), Timestamp: m.GetTimestamp()}
	}
	return firmware.Device{
		Key: p.GetKey(), MAC: p.GetMac(), Serial: p.GetSerial(), Identity: identityFromPB(p.GetIdentity()),
		Version: version(p.GetVersion()), Modules: mods, User: p.GetUser(), Location: firmware.Location(p.GetLocation()),
		Address: p.GetAddress(), LastCheckIn: fromTS(p.GetLastCheckIn()), Offered: version(p.GetOffered()),
		State: firmware.State(p.GetState()), Target: version(p.GetTarget()), Error: p.GetError(),
		LastReport: fromTS(p.GetLastReport()), LastUpdate: fromTS(p.GetLastUpdate()),
	}
}

func eventPB(e firmware.Event) *pb.Event {
	return &pb.Event{Seq: e.Seq, Time: ts(e.Time), Actor: e.Actor, Action: e.Action, Rule: e.Rule, Subject: e.Subject, Version: e.Version.String(), Detail: e.Detail}
}

func eventFromPB(p *pb.Event) firmware.Event {
	return firmware.Event{Seq: p.GetSeq(), Time: fromTS(p.GetTime()), Actor: p.GetActor(), Action: p.GetAction(), Rule: p.GetRule(), Subject: p.GetSubject(), Version: version(p.GetVersion()), Detail: p.GetDetail()}
}

func adminCertPB(c firmware.AdminCert) *pb.AdminCertificate {
	return &pb.AdminCertificate{Serial: c.Serial, Name: c.Name, Role: c.Role, Sha256: c.SHA256, Issued: ts(c.Issued),
		Expires: ts(c.Expires), IssuedBy: c.IssuedBy, Revoked: ts(c.Revoked), RevokedBy: c.RevokedBy, Reason: c.Reason}
}

func adminCertFromPB(p *pb.AdminCertificate) firmware.AdminCert {
	return firmware.AdminCert{Serial: p.GetSerial(), Name: p.GetName(), Role: p.GetRole(), SHA256: p.GetSha256(),
		Issued: fromTS(p.GetIssued()), Expires: fromTS(p.GetExpires()), IssuedBy: p.GetIssuedBy(),
		Revoked: fromTS(p.GetRevoked()), RevokedBy: p.GetRevokedBy(), Reason: p.GetReason()}
}
