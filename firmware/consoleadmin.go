package firmware

import "time"

// ConsoleAdmin is an account an admin signs in to the web console with.
// Only the password's memory-hard hash is kept (PasswordHash, an argon2id
// hash in the PHC string format), never the password; it stays out of
// JSON so that no listing carries it.
type ConsoleAdmin struct {
	// Name is the account's name (ValidAccountName); the history records
	// what it does as "web:" + Name.
	Name string `json:"name"`
	// Role is "admin" (may change things) or "readonly" (may only
	// look), as for admin certificates (AdminCert.Role).
	Role         string `json:"role"`
	PasswordHash string `json:"-"`
	// Disabled accounts cannot sign in, and their sessions end.
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}
