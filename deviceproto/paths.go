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
)
