// Package datadir is the contract of a service's data directory: the
// settings file (devsvc.conf) with every setting and its default, the run
// file a running server writes (run/serve.json: its pid and bound
// listener addresses), and the names of what else lives there. The service
// writes and reads it; the command line, the simulator and tests read it
// to find a running service, without importing the service.
//
// # Layout
//
//	devsvc.conf           settings, every one listed with its default
//	certs/                the private CA, the server and admin certificates
//	keys/                 the signing keys of the update metadata (0600) and the root chain, root/N.root.json
//	opendus.db            the catalog, inventory, accounts and history (bbolt)
//	DeviceUpdateFiles/    the image files, DeviceType/Vendor/Model/Revision/Locale/Version/file
//	Logs/                 audit logs and device log uploads
//	run/serve.json        the running server's pid and listener addresses
//	tmp/                  uploads being imported
//	backups/init-<time>/  what devsvc init --force replaced (settings, certificates)
//	replica/              on a replica: files being fetched from the primary (resumed after a restart)
//
// Files are written atomically (a temporary file, fsynced, renamed, the
// directory fsynced), so a crash leaves the old file or the new one.
package datadir
