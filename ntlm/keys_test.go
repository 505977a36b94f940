package ntlm

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestKeysMSNLMPVectors checks NTOWFv2, NTProofStr, the session base key
// and the key exchange against the NTLMv2 example of [MS-NLMP] 4.2.4.
func TestKeysMSNLMPVectors(t *testing.T) {
	ntHash := NTHash("Password")
	responseKey := ntowfV2(ntHash, "User", "Domain")
	if got, want := hex.EncodeToString(responseKey), "0c868a403bfd7a93a3001ef22ef02e3f"; got != want {
		t.Fatalf("ntowfV2 = %s, want %s", got, want)
	}

	var targetInfo []byte
	targetInfo = appendAVPair(targetInfo, avNbDomainName, utf16LE("Domain"))
	targetInfo = appendAVPair(targetInfo, avNbComputerName, utf16LE("Server"))
	targetInfo = appendAVPair(targetInfo, avEOL, nil)
	// temp: RespType, HiRespType, Z(6), Time (zero), ClientChallenge, Z(4),
	// ServerName (the AV pairs), Z(4).
	blob := []byte{1, 1, 0, 0, 0, 0, 0, 0}
	blob = append(blob, make([]byte, 8)...)
	blob = append(blob, bytes.Repeat([]byte{0xaa}, 8)...)
	blob = append(blob, 0, 0, 0, 0)
	blob = append(blob, targetInfo...)
	blob = append(blob, 0, 0, 0, 0)

	var sc [8]byte
	copy(sc[:], unhex(t, "0123456789abcdef"))
	proof := ntProofStr(responseKey, sc, blob)
	if got, want := hex.EncodeToString(proof), "68cd0ab851e51c96aabc927bebef6a1c"; got != want {
		t.Fatalf("ntProofStr = %s, want %s", got, want)
	}

	base, _ := exportedSessionKey(responseKey, proof, false, nil)
	if got, want := hex.EncodeToString(base), "8de40ccadbc14a82f15cb0ad0de95ca3"; got != want {
		t.Errorf("SessionBaseKey = %s, want %s", got, want)
	}
	exported, ok := exportedSessionKey(responseKey, proof, true, unhex(t, "c5dad2544fc9799094ce1ce90bc9d03e"))
	if want := bytes.Repeat([]byte{0x55}, 16); !ok || !bytes.Equal(exported, want) {
		t.Errorf("exportedSessionKey(KEY_EXCH) = %x, %v, want %x, true", exported, ok, want)
	}
	if _, ok := exportedSessionKey(responseKey, proof, true, []byte{1, 2, 3}); ok {
		t.Errorf("exportedSessionKey with a 3-byte encrypted key: ok, want refusal")
	}
}
