package ntlm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// validAuthenticate returns a NEGOTIATE and an AUTHENTICATE that an
// acceptor with a zero random source and the clock at testStart accepts
// for alice, with a MIC. The NTLMv2 response is the same on every call
// (fuzz workers rebuild the seeds).
func validAuthenticate(t testing.TB) (neg, auth []byte) {
	t.Helper()
	a := NewAcceptor(newMemAccounts(alice), Config{Now: func() time.Time { return testStart }})
	a.rand = zeroReader{}
	o := clientOpts{user: "alice", domain: "OPENDUS", password: "correct horse", mic: true, keyExch: true,
		clientChallenge: []byte("fuzzseed")}
	neg = clientNegotiate(o)
	chal, _, err := a.step(t.Context(), &connState{}, "192.0.2.1", neg)
	if err != nil {
		t.Fatal(err)
	}
	return neg, clientAuthenticate(t, neg, chal, o)
}

func TestParseMalformed(t *testing.T) {
	_, auth := validAuthenticate(t)
	patch := func(b []byte, at int, v uint32) []byte {
		c := bytes.Clone(b)
		binary.LittleEndian.PutUint32(c[at:], v)
		return c
	}
	patch16 := func(b []byte, at int, v uint16) []byte {
		c := bytes.Clone(b)
		binary.LittleEndian.PutUint16(c[at:], v)
		return c
	}
	tests := []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"signature only", signature[:]},
		{"wrong signature", append([]byte("NTLMSSQ\x00"), auth[8:]...)},
		{"wrong type", patch(auth, 8, typeChallenge)},
		{"truncated header", auth[:63]},
		{"too large", append(bytes.Clone(auth), make([]byte, MaxTokenSize)...)},
		{"NT response offset past end", patch(auth, 24, uint32(len(auth)))},
		{"NT response offset huge", patch(auth, 24, 0xffffffff)},
		{"NT response length past end", patch16(auth, 20, 0xffff)},
		{"user name odd length", patch16(auth, 36, 3)},
		{"descriptor cut", auth[:40]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseAuthenticate(tt.msg); !errors.Is(err, ErrMalformed) {
				t.Errorf("parseAuthenticate = %v, want %v", err, ErrMalformed)
			}
		})
	}
	if _, err := parseAuthenticate(auth); err != nil {
		t.Errorf("parseAuthenticate(valid) = %v", err)
	}
}

func TestParseNegotiate(t *testing.T) {
	full := clientNegotiate(clientOpts{})
	tests := []struct {
		name    string
		msg     []byte
		wantErr bool
	}{
		{"full", full, false},
		{"16-byte form", full[:16], false},
		{"32-byte form", full[:32], false},
		{"truncated", full[:15], true},
		{"domain outside", append(append(bytes.Clone(full[:16]), 5, 0, 5, 0, 0xff, 0, 0, 0), full[24:]...), true},
		{"authenticate type", append(append(bytes.Clone(full[:8]), 3, 0, 0, 0), full[12:]...), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseNegotiate(tt.msg)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("parseNegotiate = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestParseAVPairs(t *testing.T) {
	ok := appendAVPair(appendAVPair(nil, avNbDomainName, utf16LE("D")), avEOL, nil)
	tests := []struct {
		name      string
		in        []byte
		wantPairs int
		wantErr   bool
	}{
		{"eol only", []byte{0, 0, 0, 0}, 0, false},
		{"one pair", ok, 1, false},
		{"padding after eol", append(bytes.Clone(ok), 0, 0, 0, 0, 9, 9), 1, false},
		{"empty", nil, 0, true},
		{"no eol", ok[:len(ok)-4], 0, true},
		{"length overrun", []byte{2, 0, 0xff, 0xff, 1, 2}, 0, true},
		{"short header", []byte{2, 0, 1}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := parseAVPairs(tt.in)
			if (err != nil) != tt.wantErr || len(ps) != tt.wantPairs {
				t.Errorf("parseAVPairs(%x) = %d pairs, %v; want %d pairs, error %v", tt.in, len(ps), err, tt.wantPairs, tt.wantErr)
			}
		})
	}
}

func TestFiletime(t *testing.T) {
	for _, tm := range []time.Time{time.Unix(0, 0).UTC(), testStart, testStart.Add(123456700)} {
		got, ok := fromFiletime(toFiletime(tm))
		if !ok || !got.Equal(tm) {
			t.Errorf("fromFiletime(toFiletime(%v)) = %v, %v", tm, got, ok)
		}
	}
	if _, ok := fromFiletime(0); ok {
		t.Errorf("fromFiletime(0): ok, want refusal of pre-1970 times")
	}
}

func FuzzParseNegotiate(f *testing.F) {
	full := clientNegotiate(clientOpts{})
	f.Add(full)
	f.Add(full[:16])
	f.Add(full[:32])
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseNegotiate(b)
	})
}

func FuzzParseAuthenticate(f *testing.F) {
	_, auth := validAuthenticate(f)
	f.Add(auth)
	f.Add(auth[:64])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseAuthenticate(b)
		if err != nil {
			return
		}
		if len(m.ntResponse) > 0 {
			_, _ = parseNTLMv2Response(m.ntResponse)
		}
	})
}

func FuzzParseAVPairs(f *testing.F) {
	a := NewAcceptor(newMemAccounts(), Config{})
	f.Add(a.targetInfoAt(testStart))
	f.Add([]byte{6, 0, 4, 0, 2, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := parseAVPairs(b)
		if err != nil {
			return
		}
		_, _ = ps.flags()
		// Re-encoding what was parsed must parse back to the same pairs.
		var re []byte
		for _, p := range ps {
			re = appendAVPair(re, p.id, p.value)
		}
		ps2, err := parseAVPairs(appendAVPair(re, avEOL, nil))
		if err != nil || len(ps2) != len(ps) {
			t.Fatalf("re-encoded pairs: %d, %v; want %d", len(ps2), err, len(ps))
		}
	})
}

// FuzzHandshake runs a NEGOTIATE and an AUTHENTICATE through the acceptor.
// Nothing may panic, and an AUTHENTICATE can only succeed with the exact
// NTLMv2 response of the valid seed: anything else would be a forgery.
func FuzzHandshake(f *testing.F) {
	neg, auth := validAuthenticate(f)
	f.Add(neg, auth)
	f.Add(neg[:16], auth)
	f.Add(neg, auth[:88])
	valid, err := parseAuthenticate(auth)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, neg, auth []byte) {
		a := NewAcceptor(newMemAccounts(alice, bob), Config{Now: func() time.Time { return testStart }})
		a.rand = zeroReader{}
		st := &connState{}
		if _, _, err := a.step(t.Context(), st, "192.0.2.1", neg); err != nil {
			return
		}
		_, user, err := a.step(t.Context(), st, "192.0.2.1", auth)
		if err != nil || user == "" {
			return // refused, or a new handshake started
		}
		m, perr := parseAuthenticate(auth)
		if perr != nil || user != "alice" || !bytes.Equal(m.ntResponse, valid.ntResponse) {
			t.Fatalf("accepted a message that is not the valid seed: user %q, parse %v", user, perr)
		}
	})
}
