package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// ImportOptions tunes an import. The zero value is sensible.
type ImportOptions struct {
	// Progress, when set, is called at least every MB (and after each file)
	// with the bytes done and the sum of the known sizes.
	Progress func(doneBytes, totalBytes int64)
}

// ImportResult says what an import did to one update of the bundle.
type ImportResult struct {
	// Rule is the rule after the import.
	Rule firmware.Rule
	// Update is the stored update.
	Update firmware.Update
	// Deployed is true when the import approved the version at once
	// (RoundTable units, see Options.DeployRoundTable).
	Deployed bool
	// Unchanged is true when the version was stored already with the same
	// content and the rule already had it: nothing was written.
	Unchanged bool
	// CancelledApproval, when set, is when the approval this import
	// cancelled was scheduled: the import replaced the pending version
	// CancelledVersion, which was to be approved then (or deployed a
	// RoundTable version at once). The history records it as
	// ActionScheduleCancel.
	CancelledApproval time.Time
	CancelledVersion  firmware.Version
}

// Import stores a bundle of updates atomically: either every update is
// recorded with all its files and every rule moves to its new pending (or,
// deploying, approved) version, or nothing changes. All new files are in
// place, fsynced, before the single transaction that records the bundle and
// its history events; any failure (a file whose size or SHA-256 differs from
// the expected ones, ErrIntegrity; a cancelled ctx; an I/O error; a rule
// transition refused) aborts the whole bundle and removes its new files.
//
// Importing a version already stored with the same content (the same
// images and catalogs: descriptions are not compared, see sameContent)
// writes no file (ImportResult.Unchanged when the rule already had it);
// with different content it is ErrConflict. Content given with a SHA-256
// is compared without reading it.
func (s *Store) Import(ctx context.Context, actor string, updates []firmware.ImportUpdate, opts ImportOptions) ([]ImportResult, error) {
	if len(updates) == 0 {
		return nil, errors.New("store: import: the bundle has no update")
	}
	// A copy: validation fills in roles, and the caller's slices stay theirs.
	updates = slices.Clone(updates)
	seen := make(map[string]bool, len(updates))
	var total int64
	for i := range updates {
		updates[i].Files = slices.Clone(updates[i].Files)
		u := &updates[i]
		if err := validateImport(u); err != nil {
			return nil, fmt.Errorf("store: import: %w", err)
		}
		key := updateKeyOf(u.Identity, u.Version)
		if seen[key] {
			return nil, fmt.Errorf("store: import: update %s appears twice in the bundle", key)
		}
		seen[key] = true
		for _, f := range u.Files {
			if f.Size > 0 {
				total += f.Size
			}
		}
	}

	s.fileMu.Lock()
	defer s.fileMu.Unlock()

	// What is stored already. fileMu keeps it so until the commit.
	existing := make([]*firmware.Update, len(updates))
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUpdates)
		for i, u := range updates {
			k := []byte(updateKeyOf(u.Identity, u.Version))
			if v := b.Get(k); v != nil {
				stored, err := decodeUpdate(k, v)
				if err != nil {
					return err
				}
				existing[i] = &stored
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: import: %w", err)
	}

	p := &progress{fn: opts.Progress, total: total}
	var stagedUpdates []*staged
	committed := false
	defer func() {
		if !committed {
			// Last first: an earlier update may have created the
			// directories a later one is in.
			for i := len(stagedUpdates) - 1; i >= 0; i-- {
				s.unstage(stagedUpdates[i])
			}
		}
	}()
	imported := make([]firmware.Update, len(updates))
	for i, u := range updates {
		if existing[i] != nil {
			if err := s.sameContent(ctx, u, *existing[i], p); err != nil {
				return nil, fmt.Errorf("store: import %s: %w", updateKeyOf(u.Identity, u.Version), err)
			}
			imported[i] = *existing[i]
			continue
		}
		st := &staged{dir: updateKeyOf(u.Identity, u.Version)}
		stagedUpdates = append(stagedUpdates, st)
		files, err := s.stage(ctx, st, u, p)
		if err != nil {
			return nil, fmt.Errorf("store: import %s: %w", st.dir, err)
		}
		imported[i] = firmware.Update{Identity: u.Identity, Version: u.Version, UpdateType: u.UpdateType, Files: files}
	}
	p.add(0, true)

	results := make([]ImportResult, len(updates))
	err = s.change(ctx, actor, func(c *change) error {
		rules := c.tx.Bucket(bucketRules)
		ups := c.tx.Bucket(bucketUpdates)
		var live []error // rollouts the bundle would break, all named
		for i, u := range updates {
			up := imported[i]
			if existing[i] == nil {
				// Its import event is the change's next.
				up.Imported, up.Seq = c.now, c.tx.Bucket(bucketHistory).Sequence()+1
			}
			var r firmware.Rule
			found, err := getJSON(rules, []byte(u.Identity.Path()), &r)
			if err != nil {
				return err
			}
			if !found {
				r = firmware.NewRule(u.Identity, c.now)
			}
			before := r
			deploy := firmware.DeploysOnImport(u.Identity, s.deployRoundTable)
			err = r.Import(u.Version, u.UpdateType, deploy, c.now)
			if errors.Is(err, firmware.ErrAlreadyApproved) && existing[i] != nil {
				results[i] = ImportResult{Rule: before, Update: up, Unchanged: true}
				continue
			}
			if err != nil {
				return err
			}
			if existing[i] != nil && found && sameVersions(before, r) {
				results[i] = ImportResult{Rule: before, Update: up, Unchanged: true}
				continue
			}
			deployed := deploy && r.Approved == u.Version
			if found && !sameVersions(before, r) {
				rec, ok, err := getRollout(c.tx, r.ID)
				if err != nil {
					return err
				}
				switch {
				case ok && rec.scheduledApproval():
					// Cancelled, as a scheduled approval always was by
					// an import (the schedule-cancel event below).
					if err := c.stopApproval(&rec); err != nil {
						return err
					}
					if err := putRollout(c.tx, &rec); err != nil {
						return err
					}
				case ok && rec.Live():
					live = append(live, liveError(&rec.Rollout, "importing "+u.Version.String()))
					continue
				}
			}
			if deployed {
				// A one-wave rollout of the version imported, completed,
				// as approve makes.
				b := before
				if !found {
					b = firmware.NewRule(u.Identity, c.now)
				}
				b.Pending = u.Version
				rec, err := approval(b, c.actor, c.now)
				if err != nil {
					return err
				}
				if err := putRollout(c.tx, &rec); err != nil {
					return err
				}
			}
			if existing[i] == nil {
				if err := putJSON(ups, []byte(updateKeyOf(u.Identity, u.Version)), recordOf(up)); err != nil {
					return err
				}
			}
			if err := putJSON(rules, []byte(u.Identity.Path()), r); err != nil {
				return err
			}
			var size int64
			for _, f := range up.Files {
				size += f.Size
			}
			e := firmware.Event{Action: ActionImport, Rule: r.ID, Subject: u.Identity.Path(), Version: u.Version,
				Detail: fmt.Sprintf("%d file(s), %d bytes", len(up.Files), size)}
			if existing[i] != nil {
				e.Detail += ", already stored"
			}
			if err := c.event(e); err != nil {
				return err
			}
			if deployed {
				if err := c.event(firmware.Event{Action: ActionApprove, Rule: r.ID, Subject: u.Identity.Path(), Version: u.Version, Detail: "deployed on import"}); err != nil {
					return err
				}
			}
			results[i] = ImportResult{Rule: r, Update: up, Deployed: deployed}
			if at := before.ApproveAt; !at.IsZero() && !before.Pending.IsZero() && r.ApproveAt.IsZero() {
				results[i].CancelledApproval, results[i].CancelledVersion = at, before.Pending
				what := "replaced the pending version it was for"
				if deployed {
					what = "was approved at once (deployed on import)"
				}
				if err := c.event(firmware.Event{Action: ActionScheduleCancel, Rule: r.ID, Subject: u.Identity.Path(), Version: before.Pending,
					Detail: fmt.Sprintf("the approval scheduled for %s is cancelled: the import of %s %s", at.Format(time.RFC3339), u.Version, what)}); err != nil {
					return err
				}
			}
		}
		return errors.Join(live...)
	})
	if err != nil {
		return nil, fmt.Errorf("store: import: %w", err)
	}
	committed = true
	return results, nil
}

func sameVersions(a, b firmware.Rule) bool {
	return a.Pending == b.Pending && a.Approved == b.Approved && a.Restore == b.Restore
}

// validateImport checks an update to import and fills in default roles.
func validateImport(u *firmware.ImportUpdate) error {
	if err := u.Identity.Validate(); err != nil {
		return err
	}
	if u.Version.IsZero() {
		return fmt.Errorf("update %s: %w: no version", u.Identity, firmware.ErrVersion)
	}
	if len(u.Files) == 0 {
		return fmt.Errorf("update %s %s has no file", u.Identity, u.Version)
	}
	seen := make(map[string]bool, len(u.Files))
	for i := range u.Files {
		f := &u.Files[i]
		if err := firmware.ValidName(f.Name); err != nil {
			return fmt.Errorf("update %s %s: file name %w", u.Identity, u.Version, err)
		}
		if seen[f.Name] {
			return fmt.Errorf("update %s %s: file %q appears twice", u.Identity, u.Version, f.Name)
		}
		seen[f.Name] = true
		if f.Open == nil {
			return fmt.Errorf("update %s %s: file %q has no content", u.Identity, u.Version, f.Name)
		}
		if f.Size < -1 {
			return fmt.Errorf("update %s %s: file %q has size %d", u.Identity, u.Version, f.Name, f.Size)
		}
		if f.Role == "" {
			f.Role = firmware.RoleOf(f.Name)
		}
	}
	return nil
}

// stage writes the files of a new update into its directory, which must not
// hold anything (a directory of an update not recorded is a leftover).
func (s *Store) stage(ctx context.Context, st *staged, u firmware.ImportUpdate, p *progress) ([]firmware.Image, error) {
	if err := s.root.RemoveAll(st.dir); err != nil {
		return nil, err
	}
	if err := s.mkdirs(st); err != nil {
		return nil, err
	}
	files := make([]firmware.Image, 0, len(u.Files))
	for _, f := range u.Files {
		im, err := s.writeFile(ctx, st.dir, f, p)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", f.Name, err)
		}
		p.add(0, true)
		files = append(files, im)
	}
	if err := s.syncDir(st.dir); err != nil {
		return nil, err
	}
	return files, nil
}

// sameContent checks that u has the content of the stored update: the
// same images and catalogs (the files devices download), each the same
// size and SHA-256 (read and hashed when the import does not give the
// digest). Descriptions are not compared: a description is metadata about
// the update, written by whoever packed the bundle, never sent to a
// device, so the same images imported as a plain tree and then as the
// bundle packed from it (with a generated description) are the same
// update. The stored update keeps the files it was first imported with.
func (s *Store) sameContent(ctx context.Context, u firmware.ImportUpdate, stored firmware.Update, p *progress) error {
	var files []firmware.ImportFile
	for _, f := range u.Files {
		if f.Role == firmware.RoleDescription {
			if f.Size > 0 {
				p.add(f.Size, false)
			}
			continue
		}
		files = append(files, f)
	}
	byName := make(map[string]firmware.Image, len(stored.Files))
	for _, im := range stored.Files {
		if im.Role != firmware.RoleDescription {
			byName[im.Name] = im
		}
	}
	if len(files) != len(byName) {
		return fmt.Errorf("%w: %d image and catalog file(s), stored %d (%s)", ErrConflict, len(files), len(byName), strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
	}
	for _, f := range files {
		im, ok := byName[f.Name]
		if !ok {
			return fmt.Errorf("%w: file %s is not stored", ErrConflict, f.Name)
		}
		if f.Size >= 0 && f.Size != im.Size {
			return fmt.Errorf("%w: file %s has %d bytes, stored %d", ErrConflict, f.Name, f.Size, im.Size)
		}
		if f.SHA256 != nil {
			if *f.SHA256 != im.SHA256 {
				return fmt.Errorf("%w: file %s has SHA-256 %x, stored %x", ErrConflict, f.Name, *f.SHA256, im.SHA256)
			}
			if f.Size > 0 {
				p.add(f.Size, false)
			}
			continue
		}
		in, err := f.Open()
		if err != nil {
			return fmt.Errorf("file %s: %w", f.Name, err)
		}
		size, sum, err := hashCopy(ctx, nil, in, f.Size, p)
		in.Close()
		if err != nil {
			return fmt.Errorf("file %s: %w", f.Name, err)
		}
		if err := checkContent(f, size, sum); err != nil {
			return fmt.Errorf("file %s: %w", f.Name, err)
		}
		if size != im.Size || sum != im.SHA256 {
			return fmt.Errorf("%w: file %s has %d bytes and SHA-256 %x, stored %d bytes and %x", ErrConflict, f.Name, size, sum, im.Size, im.SHA256)
		}
	}
	return nil
}
