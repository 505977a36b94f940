package firmware

import (
	"encoding/hex"
	"fmt"
	"path"
	"time"
)

// Role says what a file of an update is.
type Role string

// The roles of an update's files: the device image (.nbt), its security
// catalog (.cat) and the description (.xml) that states identity and version.
const (
	RoleImage       Role = "image"
	RoleCatalog     Role = "catalog"
	RoleDescription Role = "description"
)

// RoleOf returns the role a file name implies by its extension: .nbt image,
// .cat catalog, .xml description; anything else is an image.
func RoleOf(name string) Role {
	switch path.Ext(name) {
	case ".cat", ".CAT":
		return RoleCatalog
	case ".xml", ".XML":
		return RoleDescription
	}
	return RoleImage
}

// Image is one file of an update as stored: its name, size, SHA-256 and role.
type Image struct {
	Name   string   `json:"name"`
	Size   int64    `json:"size"`
	SHA256 [32]byte `json:"-"`
	Role   Role     `json:"role"`
}

// SHA256Hex returns the image's SHA-256 in lower-case hex.
func (im Image) SHA256Hex() string { return hex.EncodeToString(im.SHA256[:]) }

// Update is one version of one identity in the store: the files an import
// brought, and the rule's version they belong to.
type Update struct {
	Identity   Identity  `json:"identity"`
	Version    Version   `json:"version"`
	UpdateType string    `json:"updateType,omitempty"`
	Files      []Image   `json:"files"`
	Imported   time.Time `json:"imported"`
	// Seq is the history number of the change that stored it (0 for
	// updates stored by versions before replicas): a replica at that
	// number or later holds its files.
	Seq uint64 `json:"seq,omitempty"`
}

// Dir returns the update's directory relative to the file store root:
// DeviceType/Vendor/Model/Revision/Locale/Version.
func (u Update) Dir() string { return u.Identity.Path() + "/" + u.Version.String() }

// Validate checks the identity, the version, and that file names are valid
// and unique.
func (u Update) Validate() error {
	if err := u.Identity.Validate(); err != nil {
		return err
	}
	if u.Version.IsZero() {
		return fmt.Errorf("update %s: %w: no version", u.Identity, ErrVersion)
	}
	seen := make(map[string]bool, len(u.Files))
	for _, f := range u.Files {
		if err := ValidName(f.Name); err != nil {
			return fmt.Errorf("update %s: file name %w", u.Dir(), err)
		}
		if seen[f.Name] {
			return fmt.Errorf("update %s: file %q appears twice", u.Dir(), f.Name)
		}
		seen[f.Name] = true
		if f.Size < 0 {
			return fmt.Errorf("update %s: file %q has negative size", u.Dir(), f.Name)
		}
	}
	return nil
}

// File returns the file with the given role, the first one if several.
func (u Update) File(role Role) (Image, bool) {
	for _, f := range u.Files {
		if f.Role == role {
			return f, true
		}
	}
	return Image{}, false
}
