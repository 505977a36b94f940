package devsvc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opendus/opendus/datadir"
	"github.com/opendus/opendus/firmware"

	"github.com/opendus/opendus/cabingest"
	"github.com/opendus/opendus/devsvc/adminapi"
)

// bundleOpener returns the admin API's BundleOpener: it opens an uploaded
// cabinet or RPM with cabingest.OpenBundle, which validates the whole
// bundle and returns updates that stream out of the spooled file. The
// content decides the format; kind, the client's guess from the file
// name, does not (so that a keyring cannot be bypassed by calling an RPM
// a cabinet).
//
// With rpm_keyring set, the keyring is read at every import, so that a
// new key applies without a restart, and an import is refused while it
// cannot be read: a configured signature check never silently turns off.
func bundleOpener(s datadir.Settings, dataDir string) adminapi.BundleOpener {
	keyring := s.RPMKeyring
	if keyring != "" && !filepath.IsAbs(keyring) {
		keyring = filepath.Join(dataDir, keyring)
	}
	return func(ctx context.Context, file, name string, kind adminapi.BundleKind) ([]firmware.ImportUpdate, func(), error) {
		cfg := &cabingest.Config{Name: name}
		if keyring != "" {
			kr, err := os.ReadFile(keyring)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: the RPM keyring (rpm_keyring in %s) cannot be read, so no bundle is accepted: %w", name, datadir.ConfigFile, err)
			}
			cfg.RPMKeyring = kr
		}
		b, err := cabingest.OpenBundle(ctx, file, cfg)
		if err != nil {
			return nil, nil, err
		}
		return b.Updates, func() { b.Close() }, nil
	}
}
