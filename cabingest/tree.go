package cabingest

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/opendus/opendus/firmware"
)

// ErrLayout is returned when a path in an update tree is not in the layout
// DeviceType/Vendor/Model/Revision/Locale/Version/file.
var ErrLayout = errors.New("not in the update tree layout")

// TreeRoot is the optional top directory of an update tree; a tree may be
// given with or without it.
const TreeRoot = "DeviceUpdateFiles"

// TreeEntry is where a file of an update tree belongs.
type TreeEntry struct {
	Identity firmware.Identity
	Version  firmware.Version
	Name     string
}

// ParseTreePath parses a slash-separated path of an update tree,
// [DeviceUpdateFiles/]DeviceType/Vendor/Model/Revision/Locale/Version/file.
func ParseTreePath(p string) (TreeEntry, error) {
	parts := strings.Split(strings.TrimPrefix(p, TreeRoot+"/"), "/")
	if len(parts) != 7 {
		return TreeEntry{}, fmt.Errorf("%q: %w: want DeviceType/Vendor/Model/Revision/Locale/Version/file, like UCPhone/Polycom/CX600/A/ENU/4.0.7577.4372/CX600.nbt", p, ErrLayout)
	}
	id := firmware.Identity{DeviceType: parts[0], Vendor: parts[1], Model: parts[2], Revision: parts[3], Locale: parts[4]}
	if err := id.Validate(); err != nil {
		return TreeEntry{}, fmt.Errorf("%q: %w", p, err)
	}
	v, err := firmware.ParseVersion(parts[5])
	if err != nil {
		return TreeEntry{}, fmt.Errorf("%q: version directory: %w", p, err)
	}
	if err := firmware.ValidName(parts[6]); err != nil {
		return TreeEntry{}, fmt.Errorf("%q: %w: file name %v", p, ErrLayout, err)
	}
	return TreeEntry{Identity: id, Version: v, Name: parts[6]}, nil
}

// Tree collects the files of an update tree into the updates they make up.
// The zero value is ready to use.
type Tree struct {
	updates map[string]*firmware.ImportUpdate
}

// Add records the file at path p (see ParseTreePath), of the given size (-1
// unknown), whose content open returns.
func (t *Tree) Add(p string, size int64, open func() (io.ReadCloser, error)) error {
	e, err := ParseTreePath(p)
	if err != nil {
		return err
	}
	if t.updates == nil {
		t.updates = make(map[string]*firmware.ImportUpdate)
	}
	key := e.Identity.Path() + "/" + e.Version.String()
	u := t.updates[key]
	if u == nil {
		u = &firmware.ImportUpdate{Identity: e.Identity, Version: e.Version, UpdateType: "Firmware"}
		t.updates[key] = u
	}
	for _, f := range u.Files {
		if strings.EqualFold(f.Name, e.Name) {
			return fmt.Errorf("%q: a file named %q is already in %s", p, f.Name, key)
		}
	}
	u.Files = append(u.Files, firmware.ImportFile{Name: e.Name, Role: firmware.RoleOf(e.Name), Size: size, Open: open})
	return nil
}

// Updates returns the collected updates, sorted by identity and version.
// It is an error for the tree to hold no update, or for an identity to have
// two versions (a bundle brings one version per identity).
func (t *Tree) Updates() ([]firmware.ImportUpdate, error) {
	if len(t.updates) == 0 {
		return nil, fmt.Errorf("%w: no files in DeviceType/Vendor/Model/Revision/Locale/Version/ directories", ErrLayout)
	}
	out := make([]firmware.ImportUpdate, 0, len(t.updates))
	byIdentity := map[firmware.Identity]firmware.Version{}
	for _, u := range t.updates {
		if v, dup := byIdentity[u.Identity]; dup {
			return nil, fmt.Errorf("%s has two versions, %s and %s: import one at a time", u.Identity, v, u.Version)
		}
		byIdentity[u.Identity] = u.Version
		sort.Slice(u.Files, func(i, j int) bool { return u.Files[i].Name < u.Files[j].Name })
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Identity.Path() < out[j].Identity.Path() })
	return out, nil
}
