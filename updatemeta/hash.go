package updatemeta

import "crypto/sha256"

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
