package ntlm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// MaxTokenSize is the largest NTLM message the acceptor parses. Real
// NEGOTIATE and AUTHENTICATE messages are a few hundred bytes; anything
// bigger is refused before it is looked at.
const MaxTokenSize = 4096

// ErrMalformed is returned when an NTLM message is truncated, too large, has
// an offset or length that points outside the message, or is otherwise not
// what [MS-NLMP] section 2.2 describes.
var ErrMalformed = errors.New("ntlm: malformed message")

// signature starts every NTLM message ([MS-NLMP] 2.2.1).
var signature = [8]byte{'N', 'T', 'L', 'M', 'S', 'S', 'P', 0}

// Message types.
const (
	typeNegotiate    = 1
	typeChallenge    = 2
	typeAuthenticate = 3
)

// Negotiate flags ([MS-NLMP] 2.2.2.5) the acceptor reads or sets.
const (
	flagUnicode                 = 1 << 0  // A
	flagOEM                     = 1 << 1  // B
	flagRequestTarget           = 1 << 2  // C
	flagSign                    = 1 << 4  // D
	flagSeal                    = 1 << 5  // E
	flagLMKey                   = 1 << 7  // G
	flagNTLM                    = 1 << 9  // H
	flagAnonymous               = 1 << 11 // J
	flagAlwaysSign              = 1 << 15 // M
	flagTargetTypeDomain        = 1 << 16 // N
	flagExtendedSessionSecurity = 1 << 19 // P
	flagTargetInfo              = 1 << 23 // S
	flagVersion                 = 1 << 25 // T
	flag128                     = 1 << 29 // U
	flagKeyExch                 = 1 << 30 // V
	flag56                      = 1 << 31 // W
)

// AV pair identifiers ([MS-NLMP] 2.2.2.1).
const (
	avEOL             = 0
	avNbComputerName  = 1
	avNbDomainName    = 2
	avDNSComputerName = 3
	avDNSDomainName   = 4
	avFlags           = 6
	avTimestamp       = 7
)

// avFlagMIC is the MsvAvFlags bit saying the AUTHENTICATE message carries a
// MIC.
const avFlagMIC = 0x2

// Fixed layout of the AUTHENTICATE message ([MS-NLMP] 2.2.1.3).
const (
	authHeaderLen = 64 // up to and including NegotiateFlags
	micOffset     = 72 // after the 8-byte Version
	micEnd        = micOffset + 16
)

// header checks the signature and message type and the size limit.
func header(b []byte, typ uint32, minLen int) error {
	if len(b) > MaxTokenSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), MaxTokenSize)
	}
	if len(b) < minLen {
		return fmt.Errorf("%w: %d bytes, need at least %d", ErrMalformed, len(b), minLen)
	}
	if !bytes.Equal(b[:8], signature[:]) {
		return fmt.Errorf("%w: no NTLMSSP signature", ErrMalformed)
	}
	if got := binary.LittleEndian.Uint32(b[8:]); got != typ {
		return fmt.Errorf("%w: message type %d, want %d", ErrMalformed, got, typ)
	}
	return nil
}

// messageType returns the type of an NTLM message, or 0 when b does not
// start like one.
func messageType(b []byte) uint32 {
	if len(b) < 12 || !bytes.Equal(b[:8], signature[:]) {
		return 0
	}
	return binary.LittleEndian.Uint32(b[8:])
}

// field reads the (Len, MaxLen, BufferOffset) descriptor at b[at:] and
// returns the bytes it points to, checked against the message. An empty
// field is returned as nil whatever its offset says.
func field(b []byte, at int, name string) ([]byte, error) {
	if at+8 > len(b) {
		return nil, fmt.Errorf("%w: %s descriptor truncated", ErrMalformed, name)
	}
	n := int(binary.LittleEndian.Uint16(b[at:]))
	if n == 0 {
		return nil, nil
	}
	off := binary.LittleEndian.Uint32(b[at+4:])
	if uint64(off) > uint64(len(b)) || n > len(b)-int(off) {
		return nil, fmt.Errorf("%w: %s (offset %d, length %d) outside the %d-byte message", ErrMalformed, name, off, n, len(b))
	}
	return b[off : int(off)+n], nil
}

// negotiateMessage is what the acceptor needs from a NEGOTIATE_MESSAGE
// ([MS-NLMP] 2.2.1.1): the client's flags. The domain and workstation the
// client may supply are checked for bounds and otherwise ignored.
type negotiateMessage struct {
	flags uint32
}

// parseNegotiate parses a NEGOTIATE_MESSAGE. It accepts the short 16- and
// 32-byte forms old clients send (no payload descriptors, or no Version).
func parseNegotiate(b []byte) (negotiateMessage, error) {
	if err := header(b, typeNegotiate, 16); err != nil {
		return negotiateMessage{}, err
	}
	m := negotiateMessage{flags: binary.LittleEndian.Uint32(b[12:])}
	if len(b) >= 32 {
		if _, err := field(b, 16, "DomainName"); err != nil {
			return negotiateMessage{}, err
		}
		if _, err := field(b, 24, "Workstation"); err != nil {
			return negotiateMessage{}, err
		}
	}
	return m, nil
}

// authenticateMessage is a parsed AUTHENTICATE_MESSAGE ([MS-NLMP] 2.2.1.3).
// Slices point into raw.
type authenticateMessage struct {
	raw         []byte
	flags       uint32
	lmResponse  []byte
	ntResponse  []byte
	domain      string
	user        string
	workstation string
	encKey      []byte // EncryptedRandomSessionKey
}

// parseAuthenticate parses an AUTHENTICATE_MESSAGE. Only Unicode messages
// are accepted: the acceptor always selects NTLMSSP_NEGOTIATE_UNICODE.
func parseAuthenticate(b []byte) (authenticateMessage, error) {
	if err := header(b, typeAuthenticate, authHeaderLen); err != nil {
		return authenticateMessage{}, err
	}
	m := authenticateMessage{raw: b, flags: binary.LittleEndian.Uint32(b[60:])}
	var err error
	if m.lmResponse, err = field(b, 12, "LmChallengeResponse"); err != nil {
		return authenticateMessage{}, err
	}
	if m.ntResponse, err = field(b, 20, "NtChallengeResponse"); err != nil {
		return authenticateMessage{}, err
	}
	strs := []struct {
		at   int
		name string
		dst  *string
	}{{28, "DomainName", &m.domain}, {36, "UserName", &m.user}, {44, "Workstation", &m.workstation}}
	for _, s := range strs {
		raw, err := field(b, s.at, s.name)
		if err != nil {
			return authenticateMessage{}, err
		}
		if m.flags&flagUnicode == 0 {
			if len(raw) > 0 {
				return authenticateMessage{}, fmt.Errorf("%w: %s is not Unicode", ErrMalformed, s.name)
			}
			continue
		}
		str, ok := fromUTF16LE(raw)
		if !ok {
			return authenticateMessage{}, fmt.Errorf("%w: %s has an odd UTF-16 length", ErrMalformed, s.name)
		}
		*s.dst = str
	}
	if m.encKey, err = field(b, 52, "EncryptedRandomSessionKey"); err != nil {
		return authenticateMessage{}, err
	}
	return m, nil
}

// ntlmV2Response is a parsed NTLMv2_RESPONSE ([MS-NLMP] 2.2.2.8): the
// NTProofStr and the NTLMv2_CLIENT_CHALLENGE ("blob", 2.2.2.7) it signs.
type ntlmV2Response struct {
	proof           []byte // NTProofStr, 16 bytes
	blob            []byte // the whole NTLMv2_CLIENT_CHALLENGE, signed by proof
	timestamp       uint64 // FILETIME
	clientChallenge []byte // 8 bytes
	avPairs         avPairs
}

// blobHeaderLen is the fixed part of NTLMv2_CLIENT_CHALLENGE: RespType,
// HiRespType, two reserved fields, TimeStamp, ChallengeFromClient and a
// third reserved field, before the AV pairs.
const blobHeaderLen = 28

// ntlmV1ResponseLen is the length of an NTLMv1 (and NTLM2 session)
// NtChallengeResponse.
const ntlmV1ResponseLen = 24

// parseNTLMv2Response parses an NtChallengeResponse as NTLMv2.
func parseNTLMv2Response(b []byte) (ntlmV2Response, error) {
	if len(b) < 16+blobHeaderLen+4 {
		return ntlmV2Response{}, fmt.Errorf("%w: NTLMv2 response of %d bytes is too short", ErrMalformed, len(b))
	}
	r := ntlmV2Response{proof: b[:16], blob: b[16:]}
	if r.blob[0] != 1 || r.blob[1] != 1 {
		return ntlmV2Response{}, fmt.Errorf("%w: NTLMv2 response type %d.%d, want 1.1", ErrMalformed, r.blob[0], r.blob[1])
	}
	r.timestamp = binary.LittleEndian.Uint64(r.blob[8:])
	r.clientChallenge = r.blob[16:24]
	var err error
	if r.avPairs, err = parseAVPairs(r.blob[blobHeaderLen:]); err != nil {
		return ntlmV2Response{}, err
	}
	return r, nil
}

// avPair is one attribute-value pair of a TargetInfo list.
type avPair struct {
	id    uint16
	value []byte
}

// avPairs is a TargetInfo list in message order, without the MsvAvEOL.
type avPairs []avPair

// get returns the value of the first pair with the given id.
func (ps avPairs) get(id uint16) ([]byte, bool) {
	for _, p := range ps {
		if p.id == id {
			return p.value, true
		}
	}
	return nil, false
}

// flags returns the MsvAvFlags value, 0 when absent.
func (ps avPairs) flags() (uint32, error) {
	v, ok := ps.get(avFlags)
	if !ok {
		return 0, nil
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("%w: MsvAvFlags of %d bytes", ErrMalformed, len(v))
	}
	return binary.LittleEndian.Uint32(v), nil
}

// parseAVPairs parses an AV_PAIR list ([MS-NLMP] 2.2.2.1) up to its
// MsvAvEOL; bytes after the terminator are ignored (clients pad the blob).
func parseAVPairs(b []byte) (avPairs, error) {
	var ps avPairs
	for {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: AV pair list without MsvAvEOL", ErrMalformed)
		}
		id := binary.LittleEndian.Uint16(b)
		n := int(binary.LittleEndian.Uint16(b[2:]))
		b = b[4:]
		if id == avEOL {
			return ps, nil
		}
		if n > len(b) {
			return nil, fmt.Errorf("%w: AV pair %d of %d bytes overruns the list", ErrMalformed, id, n)
		}
		ps = append(ps, avPair{id: id, value: b[:n]})
		b = b[n:]
	}
}

// appendAVPair appends one AV pair to b.
func appendAVPair(b []byte, id uint16, value []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, id)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

// Windows FILETIME: 100 ns ticks since 1601-01-01 UTC.
const filetimeUnixOffset = 116444736000000000

// toFiletime converts t to a FILETIME.
func toFiletime(t time.Time) uint64 {
	return uint64(t.UnixNano()/100) + filetimeUnixOffset
}

// fromFiletime converts a FILETIME to a time; ok is false before 1970.
func fromFiletime(ft uint64) (t time.Time, ok bool) {
	if ft < filetimeUnixOffset {
		return time.Time{}, false
	}
	d := ft - filetimeUnixOffset
	return time.Unix(int64(d/1e7), int64(d%1e7)*100).UTC(), true
}

// challengeMessage builds a CHALLENGE_MESSAGE ([MS-NLMP] 2.2.1.2) with the
// given flags, server challenge, TargetName and TargetInfo. The Version
// field is left zero (NTLMSSP_NEGOTIATE_VERSION is never selected).
func challengeMessage(flags uint32, serverChallenge [8]byte, targetName string, targetInfo []byte) []byte {
	const headerLen = 56
	name := utf16LE(targetName)
	b := make([]byte, headerLen, headerLen+len(name)+len(targetInfo))
	copy(b, signature[:])
	binary.LittleEndian.PutUint32(b[8:], typeChallenge)
	putField(b[12:], len(name), headerLen)
	binary.LittleEndian.PutUint32(b[20:], flags)
	copy(b[24:], serverChallenge[:])
	putField(b[40:], len(targetInfo), headerLen+len(name))
	b = append(b, name...)
	return append(b, targetInfo...)
}

// putField writes a (Len, MaxLen, BufferOffset) descriptor.
func putField(b []byte, n, off int) {
	binary.LittleEndian.PutUint16(b, uint16(n))
	binary.LittleEndian.PutUint16(b[2:], uint16(n))
	binary.LittleEndian.PutUint32(b[4:], uint32(off))
}
