package deviceproto

// Paths of the endpoints. The Ext twins are served by the external
// handler only, the others by the internal handler only.
const (
	CheckInPath    = "/RequestHandler/ucdevice.upx"
	CheckInPathExt = "/RequestHandlerExt/ucdevice.upx"
	StatusPath     = "/RequestHandler/status.upx"
	StatusPathExt  = "/RequestHandlerExt/status.upx"
	FilesPrefix    = "/DeviceUpdateFiles_Int/"
	FilesPrefixExt = "/DeviceUpdateFiles_Ext/"
	// MetadataPrefix is the signed update metadata (docs/protocol.md,
	// package updatemeta): root.json, N.root.json, timestamp.json,
	// snapshot.json, targets.json. Served on both listeners.
	MetadataPrefix = "/Metadata/"
	// PiecesPrefix, followed by a file's SHA-256 in hex, is the file's
	// piece list (package pieces), content-addressed. Both listeners.
	PiecesPrefix = "/Pieces/"
)
