package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/opendus/opendus/devsvc"
)

var keysCmd = &command{
	name: "keys", args: "list | init | rotate [--online] [--root] [--root-key FILE] | export [-o FILE | --root-key FILE [--remove]]",
	summary: "signing keys of the update metadata: list, init, rotate, export the root",
	help: `The service signs what it offers devices (docs/protocol.md, "Signed update
metadata") with four keys in DIR/keys: the root key, which only signs the
root (the list of the other keys) and may be kept offline, and the online
targets, snapshot and timestamp keys (mode 0600). Devices trust the root
they were provisioned with (the provisioning document carries it; export
it for devices provisioned otherwise) and follow each new root version.

list shows the keys, the root version and when it expires. init makes keys
in a data directory that has none (devsvc init and devsvc serve make them
too). rotate replaces the online keys (the default, --online), the root key
(--root), or both, and signs the next root version with the current root
key and the new one, so that devices follow without being provisioned
again; a running server re-signs everything within a second. With the root
key kept offline, give it with --root-key FILE.

export writes the latest root metadata (public) to FILE or standard
output. export --root-key FILE writes the private root key (0600) to a new
FILE; with --remove it is then removed from the data directory, and kept
offline: keep FILE somewhere safe, it is needed to rotate.
These commands work on the data directory itself, with the server running
or not.

Examples:
  devsvc keys list
  devsvc keys export -o root.json
  devsvc keys export --root-key /media/usb/opendus-root.key --remove
  devsvc keys rotate
  devsvc keys rotate --root --root-key /media/usb/opendus-root.key`,
	setup: func(fs *flag.FlagSet) runFunc {
		var out, rootKey string
		var online, root, remove bool
		fs.StringVar(&out, "o", "", "export: write to `FILE` instead of standard output")
		fs.BoolVar(&online, "online", false, "rotate: new targets, snapshot and timestamp keys (the default)")
		fs.BoolVar(&root, "root", false, "rotate: a new root key")
		fs.StringVar(&rootKey, "root-key", "", "rotate: the root key's `FILE`, when it is kept offline; export: write the root key to this new FILE")
		fs.BoolVar(&remove, "remove", false, "export --root-key: remove the root key from the data directory once written")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usagef("say list, init, rotate or export")
			}
			switch args[0] {
			case "list":
				st, err := devsvc.Keys(e.data)
				if err != nil {
					return err
				}
				return printKeys(e, st)
			case "init":
				st, err := devsvc.KeysInit(e.data, time.Now())
				if err != nil {
					return err
				}
				return printKeys(e, st)
			case "rotate":
				if !online && !root {
					online = true
				}
				st, err := devsvc.KeysRotate(e.data, time.Now(), devsvc.KeysRotateOptions{Online: online, Root: root, RootKeyFile: rootKey})
				if err != nil {
					return err
				}
				return printKeys(e, st)
			case "export":
				if rootKey != "" {
					if out != "" {
						return usagef("export --root-key FILE writes the key to FILE: no -o")
					}
					if err := devsvc.KeysExportRootKey(e.data, rootKey, remove); err != nil {
						return err
					}
					if remove {
						fmt.Fprintf(e.stderr, "Wrote the root key to %s and removed it from the data directory: keep it safe and offline; rotations need it (--root-key).\n", rootKey)
					} else {
						fmt.Fprintf(e.stderr, "Wrote the root key to %s; it is still in the data directory (--remove to keep it offline only).\n", rootKey)
					}
					return nil
				}
				return keysExport(e, out, remove)
			}
			return usagef("unknown keys action %q: say list, init, rotate or export", args[0])
		}
	},
}

// keysExport writes the root metadata to out (or standard output).
func keysExport(e *env, out string, remove bool) error {
	if remove {
		return usagef("--remove goes with export --root-key FILE")
	}
	data, err := devsvc.KeysExportRoot(e.data)
	if err != nil {
		return err
	}
	if out == "" {
		_, err = e.stdout.Write(data)
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "Wrote the root metadata to %s: provision devices with it.\n", out)
	return nil
}

func printKeys(e *env, st devsvc.KeysStatus) error {
	if e.json {
		return printJSON(e.stdout, st)
	}
	t := newTable(e.stdout, "ROLE", "KEY ID", "FILE")
	for _, k := range st.Keys {
		file := k.File
		if file == "" {
			file = "(offline)"
		}
		t.row(k.Role, k.KeyID[:16]+"…", file)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Root version %d, valid until %s.\n", st.RootVersion, st.RootExpires.Format(time.DateOnly))
	return nil
}
