// Package devsvc composes the device update service: the settings file, the
// data directory that `devsvc init` creates, and `devsvc serve`, which opens
// the store and certificates and runs the listeners.
//
// # The data directory
//
//	devsvc.conf           settings, every one listed with its default
//	certs/                the private CA, the server and admin certificates
//	opendus.db            the catalog, inventory, accounts and history (bbolt)
//	DeviceUpdateFiles/    the image files, DeviceType/Vendor/Model/Revision/Locale/Version/file
//	Logs/                 audit logs and device log uploads
//	run/serve.json        the running server's pid and listener addresses
//	tmp/                  uploads being imported
//
// # The listeners
//
// Three listeners, told apart by address and never by a header: the
// internal (LAN) HTTPS listener for anonymous check-ins and downloads, the
// external (edge) HTTPS listener where every request needs NTLM, and the
// admin gRPC API over mutual TLS. Listeners, TLS and shutdown live here; the
// handlers are http.Handlers of their own packages.
package devsvc
