package ntlm

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rc4"
	"strings"
)

// hmacMD5 is HMAC_MD5(key, concatenation of parts) ([MS-NLMP] section 6).
func hmacMD5(key []byte, parts ...[]byte) []byte {
	h := hmac.New(md5.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// ntowfV2 is NTOWFv2 ([MS-NLMP] 3.3.2): HMAC_MD5 keyed with the NT hash over
// UTF-16LE(Uppercase(user) + domain), with user and domain exactly as the
// client sent them in the AUTHENTICATE message.
func ntowfV2(ntHash [16]byte, user, domain string) []byte {
	return hmacMD5(ntHash[:], utf16LE(strings.ToUpper(user)+domain))
}

// ntProofStr is HMAC_MD5(ResponseKeyNT, ServerChallenge + temp), where temp
// is the client's NTLMv2_CLIENT_CHALLENGE blob ([MS-NLMP] 3.3.2).
func ntProofStr(responseKeyNT []byte, serverChallenge [8]byte, blob []byte) []byte {
	return hmacMD5(responseKeyNT, serverChallenge[:], blob)
}

// exportedSessionKey derives the session key the MIC is keyed with
// ([MS-NLMP] 3.3.2 and 3.2.5.1.2): SessionBaseKey = HMAC_MD5(ResponseKeyNT,
// NTProofStr); for NTLMv2 KeyExchangeKey = SessionBaseKey; with
// NTLMSSP_NEGOTIATE_KEY_EXCH the client chose a random key and sent it RC4
// encrypted under KeyExchangeKey, otherwise the exported key is
// KeyExchangeKey itself. ok is false when key exchange is on but the
// encrypted key is not 16 bytes.
func exportedSessionKey(responseKeyNT, proof []byte, keyExch bool, encrypted []byte) (key []byte, ok bool) {
	kxKey := hmacMD5(responseKeyNT, proof)
	if !keyExch {
		return kxKey, true
	}
	if len(encrypted) != 16 {
		return nil, false
	}
	c, err := rc4.NewCipher(kxKey)
	if err != nil {
		return nil, false
	}
	key = make([]byte, 16)
	c.XORKeyStream(key, encrypted)
	return key, true
}

// mic computes the message integrity code over the three messages, with
// the MIC field of the AUTHENTICATE message taken as zero ([MS-NLMP]
// 3.1.5.1.2 and 3.2.5.1.2). authenticate must be at least micEnd bytes.
func mic(exportedKey, negotiate, challenge, authenticate []byte) []byte {
	zeroed := make([]byte, len(authenticate))
	copy(zeroed, authenticate)
	clear(zeroed[micOffset:micEnd])
	return hmacMD5(exportedKey, negotiate, challenge, zeroed)
}
