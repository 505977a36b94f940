package store

import "github.com/opendus/opendus/firmware"

// FileBySHA256 returns the identity, version and name of a committed
// update's file whose content has this SHA-256 (the first found when
// several updates hold the same bytes: they are the same file), for the
// content-addressed piece lists of subnet peers. It looks at every
// update: callers cache what they find.
func (c *Catalog) FileBySHA256(sum [32]byte) (firmware.Identity, firmware.Version, string, bool) {
	for k, u := range c.updates {
		for _, f := range u.Files {
			if f.SHA256 == sum {
				return k.id, k.v, f.Name, true
			}
		}
	}
	return firmware.Identity{}, firmware.Version{}, "", false
}
