package devsvc

import (
	"context"
	"fmt"

	"github.com/opendus/opendus/devsvc/adminapi"
	"github.com/opendus/opendus/devsvc/store"
)

// bundleOpener turns an uploaded cabinet or RPM into updates.
func bundleOpener(ctx context.Context, file, name string, kind adminapi.BundleKind) ([]store.ImportUpdate, func(), error) {
	return nil, nil, fmt.Errorf("%s: importing %s bundles is not available yet; import the unpacked directory tree instead", name, kind)
}
