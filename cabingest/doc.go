// Package cabingest turns firmware bundles into store imports: a vendor's
// UCUpdates.cab (also inside a self-extracting .exe), an RPM package, or an
// update tree on disk. It validates the whole bundle before anything is
// imported, and then streams the files into the store.
//
// # The update tree
//
// A bundle carries files in the layout of the file store,
//
//	[DeviceUpdateFiles/]<DeviceType>/<Vendor>/<Model>/<Revision>/<Locale>/<Version>/<file>
//
// and each version directory holds one update: the device image (.nbt),
// its security catalog (.cat) and one description (.xml), an XML document
// in the namespace urn:opendus:update-description:1 that states the
// identity, the version, the update type and the size and SHA-256 of every
// other file of the directory. docs/bundle-format.md specifies it, with an
// example; ParseDescription reads it and MarshalDescription writes it.
// An RPM carries the tree under RPMTreePrefix in its payload.
//
// # Invariants
//
//   - A bundle is accepted whole or refused whole. OpenBundle reads it
//     completely first, hashing every file, and checks every part: paths
//     in the layout, one version per identity, exactly one description per
//     version directory, the description agreeing with its directory
//     (identity, version), listing every other file present and only
//     those, with their sizes and SHA-256. If anything is wrong it returns
//     a *BundleError that lists every problem, not only the first, and
//     nothing reaches the store.
//   - The updates it returns carry each file's size and SHA-256, so the
//     store checks again what it writes (store.ErrIntegrity): a bundle
//     that changes between the check and the import is refused too.
//   - Memory does not depend on the size of the bundle or its files: the
//     check streams every file through SHA-256, keeping only descriptions
//     (at most MaxDescriptionSize each), and the import streams.
//   - Descriptions are parsed strictly (every element known and present
//     once, no DOCTYPE, at most MaxDescriptionSize bytes) and the parser
//     is fuzzed.
//
// # Streaming into the store
//
// The store opens the files of an import one at a time, in the order of
// the updates and of their files (and not at all those of an update it
// holds already). OpenBundle orders the updates and files as the bundle
// holds them, and their Open funcs are served by one walk of the archive
// (a goroutine that decodes the cabinet or the RPM payload once, front to
// back, stopping at each file asked for and skipping the others), so an
// import decodes the bundle once more and writes each file once, with no
// temporary copy. A file asked for out of order restarts the walk, which
// is slower but correct. See BenchmarkImport for the measurement against
// extracting to a temporary directory first.
package cabingest
