package firmware

import "io"

// ImportFile is one file of an update to import.
type ImportFile struct {
	// Name is the file name, valid by ValidName.
	Name string
	// Role is what the file is; empty means RoleOf(Name).
	Role Role
	// Size is the expected size, -1 when unknown. (0 means an empty file.)
	Size int64
	// SHA256 is the expected digest, nil when unknown; verified when given.
	SHA256 *[32]byte
	// Open returns the content; the import closes it.
	Open func() (io.ReadCloser, error)
}

// ImportUpdate is one update of a bundle to import.
type ImportUpdate struct {
	Identity   Identity
	Version    Version
	UpdateType string
	Files      []ImportFile
}
