package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/opendus/opendus/firmware"
)

// readSites reads every stored site, in name order.
func readSites(tx *bolt.Tx) ([]firmware.Site, error) {
	var sites []firmware.Site
	err := tx.Bucket(bucketSites).ForEach(func(k, v []byte) error {
		var site firmware.Site
		if err := json.Unmarshal(v, &site); err != nil {
			return fmt.Errorf("site %q: %w", k, err)
		}
		if site.Name != string(k) {
			return fmt.Errorf("site %q: the record names %q", k, site.Name)
		}
		sites = append(sites, site)
		return nil
	})
	return sites, err
}

// PutSite adds a site, or with replace changes the site of that name (its
// subnets, time zone and windows all take site's). The site is checked
// with every other (firmware.NewSiteTable: a valid name and subnets, no
// subnet in two sites, a time zone that loads); every problem is listed,
// wrapping firmware.ErrSite. Adding a site that exists is ErrExists,
// replacing one that does not ErrNotFound. The new site table is in the
// catalog snapshot the commit publishes: check-ins use it at once.
func (s *Store) PutSite(ctx context.Context, actor string, site firmware.Site, replace bool) (firmware.Site, error) {
	site.Subnets = slices.Clone(site.Subnets)
	err := s.change(ctx, actor, func(c *change) error {
		sites, err := readSites(c.tx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(sites, func(o firmware.Site) bool { return o.Name == site.Name })
		action := ActionSiteAdd
		switch {
		case i >= 0 && !replace:
			return fmt.Errorf("site %s %w: change it with sites update", site.Name, ErrExists)
		case i < 0 && replace:
			return fmt.Errorf("site %q %w: add it with sites add", site.Name, ErrNotFound)
		case i >= 0:
			sites[i] = site
			action = ActionSiteUpdate
		default:
			sites = append(sites, site)
		}
		if _, err := firmware.NewSiteTable(sites, s.zone); err != nil {
			return err
		}
		if err := putJSON(c.tx.Bucket(bucketSites), []byte(site.Name), site); err != nil {
			return err
		}
		return c.event(firmware.Event{Action: action, Subject: site.Name, Detail: siteDetail(site)})
	})
	if err != nil {
		return firmware.Site{}, fmt.Errorf("store: put site: %w", err)
	}
	return site, nil
}

// siteDetail describes a site for the history.
func siteDetail(s firmware.Site) string {
	d := "subnets " + firmware.FormatSubnets(s.Subnets)
	if len(s.Subnets) == 0 {
		d = "no subnets"
	}
	tz := s.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	d += "; time zone " + tz + "; windows " + s.Windows.String()
	if s.NoPeers {
		d += "; peers off"
	}
	return d
}

// RemoveSite removes the named site; ErrNotFound if there is none. Its
// devices belong to the site their next check-in's address falls in.
func (s *Store) RemoveSite(ctx context.Context, actor, name string) error {
	err := s.change(ctx, actor, func(c *change) error {
		b := c.tx.Bucket(bucketSites)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("site %q %w", name, ErrNotFound)
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
		return c.event(firmware.Event{Action: ActionSiteRemove, Subject: name})
	})
	if err != nil {
		return fmt.Errorf("store: remove site: %w", err)
	}
	return nil
}

// SiteList returns the sites of the snapshot, in name order.
func (c *Catalog) SiteList() []firmware.Site {
	zs := c.sites.Sites()
	out := make([]firmware.Site, len(zs))
	for i, z := range zs {
		out[i] = z.Site
		out[i].Subnets = slices.Clone(z.Subnets)
	}
	return out
}
