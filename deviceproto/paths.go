package deviceproto

// Paths of the endpoints. The Ext twins are served by the external
// handler only, the others by the internal handler only. PiecesPrefix
// (peer.go) is served by both.
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
)
