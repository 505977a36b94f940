// Package deviceproto is the device update protocol as devices and the
// service speak it: the endpoint paths, the three messages (a device's
// check-in, the service's answer, a device's status report), and a reader
// and writer of the XML subset they use. It imports only firmware and the
// standard library, so a device (the simulator, device-sim, a vendor's
// test tool) speaks the protocol without linking the service.
// docs/protocol.md describes the exchanges with examples generated from the
// service's handlers.
//
// # Messages
//
//   - CheckIn (DeviceUpdateRequest): the device's identity (DeviceType,
//     Vendor, Model, Revision, Locale), MAC and/or serial number, the
//     signed-in user, and its modules (file name, version, timestamp). The
//     device's version is that of its first image module.
//   - Answer (DeviceUpdateResponse): either downloads="0", or per image of
//     the offered update its file name, size and SHA-256 and those of its
//     security catalog (.cat), with the internal and external base URLs of
//     the update's directory and, when another service holds the same
//     files, their alternative URLs (InternalURLAlt, ExternalURLAlt: a
//     replica and its primary); by when it must be installed (InstallBy,
//     the close of the maintenance windows the offer was made in); when to
//     check next; and, when the service has moved, its new URLs.
//   - Status (DeviceStatusReport): a state (downloading, downloaded,
//     installing, rebooting, success, failure), the target version and an
//     error code.
//
// Every Parse function returns an error wrapping ErrMalformed, saying why,
// for anything that is not a message of the expected shape with valid
// fields; every AppendXML output parses back to the same message.
//
// # Limits
//
// Bodies are at most MaxBodyBytes (64 KiB); messages at most 512 elements
// nested 8 deep with 2 KiB of text per element and 32 modules. Messages are
// read in one pass by a parser of a strict subset of XML 1.0 (no DOCTYPE,
// hence no entities to expand), five to nine times faster than
// encoding/xml; every document it accepts, encoding/xml reads the same way
// (FuzzParseTree checks it).
package deviceproto
