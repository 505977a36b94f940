package datadir

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opendus/opendus/firmware"
)

// ConfigFile is the settings file's name in the data directory.
const ConfigFile = "devsvc.conf"

// Settings are the service's settings, read from DIR/devsvc.conf. Every
// field has a default that works; the file devsvc init writes lists them all
// with their defaults, commented.
type Settings struct {
	Domain       string // the SIP/DNS domain, e.g. contoso.com
	InternalName string // the name devices inside use
	ExternalName string // the name devices outside use (through the edge)

	InternalAddr string // LAN listener; anonymous check-ins
	ExternalAddr string // edge listener; NTLM
	AdminAddr    string // admin gRPC API; mutual TLS
	// ConsoleAddr is the web console's HTTPS listener; empty: no console.
	ConsoleAddr string
	// ConsoleIdleTimeout ends a console session unused this long;
	// ConsoleSessionLifetime ends any session this long after its
	// sign-in.
	ConsoleIdleTimeout     time.Duration
	ConsoleSessionLifetime time.Duration
	// MetricsAddr is the listener of /metrics, /healthz and /readyz in
	// plain HTTP, for Prometheus and health checks; empty: none.
	MetricsAddr string

	// InternalURL and ExternalURL are the base URLs devices are given; by
	// default https://InternalName/ and https://ExternalName/ on the
	// listeners' ports.
	InternalURL string
	ExternalURL string
	// MovedInternalURL and MovedExternalURL, when set, tell every device
	// that checks in that the service has moved: it stores these URLs and
	// checks in there from then on.
	MovedInternalURL string
	MovedExternalURL string

	DeployRoundTableOnImport bool          // RoundTable updates approve on import
	CheckInterval            time.Duration // how often devices check (24h)
	CheckJitter              time.Duration // spread of next check times

	InventoryFlush time.Duration // inventory writes are durable within this
	MaxImportBytes int64         // largest upload accepted by import
	RPMKeyring     string        // armored OpenPGP keyring RPM bundles must be signed with

	// The LDAP directory, when LDAPURL is set: device accounts (NTLM, with
	// the sambaNTPassword attribute) and admin sign-in come from it instead
	// of the local accounts.
	LDAPURL              string
	LDAPStartTLS         bool
	LDAPCAFile           string
	LDAPBindDN           string
	LDAPBindPasswordFile string
	LDAPBaseDN           string
	LDAPUserFilter       string
	LDAPGroupBaseDN      string
	LDAPAdminGroup       string
	LDAPReadOnlyGroup    string
	LDAPDomains          []string

	// Failed device sign-ins, NTLM at the edge and Basic on the LAN alike
	// (see package signin).
	SignInMaxFailures        int64         // wrong passwords that lock an account
	SignInMaxAddressFailures int64         // guesses that slow an address; 0: never
	SignInLockout            time.Duration // the failure window, the lockout and the slowing
	// MinPasswordLength is the fewest characters a new device account
	// password may have (devsvc accounts, the console's device accounts).
	MinPasswordLength int64
	// TrustedProxies are the reverse proxies (addresses or CIDR prefixes)
	// whose X-Forwarded-For header names the client of a sign-in.
	TrustedProxies []string

	LogCleanUpInterval     time.Duration // audit and device logs kept this long
	LogFlushInterval       time.Duration
	MaxLogFileSize         int64
	MaxLogStorage          int64 // all stored device logs, bytes
	ValidLogFileTypes      []string
	ValidLogFileExtensions []string

	// Warnings are what LoadSettings and ParseSettings found wrong in the
	// file without refusing it (a setting under its old name); the server
	// logs them when it starts and devsvc status shows them. Render
	// ignores them.
	Warnings []string
	// MinFreeSpace is the free space, in bytes, kept on the data
	// directory's file system for the store: log uploads and audit lines
	// that would take it are refused. 0: no floor.
	MinFreeSpace int64
	// Peers that stall (see devsvc/deviceapi, devsvc/devlogs).
	RequestBodyTimeout     time.Duration // a check-in's, report's or sign-in's body must arrive within this
	DownloadStallTimeout   time.Duration // a download that makes no progress for this long is dropped
	LogUploadTimeout       time.Duration // a device log upload's body must arrive within this
	MaxLogUploadPerAddress int64         // bytes the uploads in progress from one address reserve; 0: max_log_storage/16

	// Replicas (docs/replicas.md). On a replica, ReplicaOf is its
	// primary's admin addresses (host:port, tried in order), ReplicaName
	// and ReplicaSite its name and site, and PrimaryInternalURL and
	// PrimaryExternalURL the primary's base URLs for devices, which its
	// answers give as the files' alternative URLs; devsvc init
	// --replica-of writes them. On a primary, ReplicaAlarmAfter is how
	// long after a release a replica that has not applied it raises an
	// alarm.
	ReplicaOf          []string
	ReplicaName        string
	ReplicaSite        string
	PrimaryInternalURL string
	PrimaryExternalURL string
	ReplicaAlarmAfter  time.Duration
	// ReplicaRetryMax bounds, on a replica, the wait between attempts to
	// reach the primary (from a second, doubling).
	ReplicaRetryMax time.Duration
	// ReplicaMaxLag is, on a replica, how long it may go without being in
	// step with its primary before /readyz fails; 0: never.
	ReplicaMaxLag time.Duration
	// Signed update metadata (package updatemeta, docs/protocol.md): how
	// long each role's metadata is valid. The service re-signs a role once
	// half of its validity has passed.
	MetadataTimestampExpiry time.Duration // a relay can freeze devices this long at most
	MetadataSnapshotExpiry  time.Duration
	MetadataTargetsExpiry   time.Duration
	MetadataRootExpiry      time.Duration // of a root version devsvc keys init or rotate signs

	// Rollouts (docs/rollouts.md): how a device's attempts are judged
	// (see RetryPolicy), how long windows must stay open for an offer, and
	// the overdue alarm of scheduled releases.
	RolloutReportTimeout time.Duration  // offered and silent this long: stalled
	RolloutStallTimeout  time.Duration  // stalled this long more: failed
	RolloutRetries       int64          // failures retried before a device counts as failed
	RolloutBackoff       time.Duration  // wait before the first retry, doubling
	RolloutMaxBackoff    time.Duration  // longest wait between retries
	WindowMinOpen        time.Duration  // windows must stay open this long for an offer
	OverdueGrace         time.Duration  // a scheduled release is overdue this long after its time
	OverdueTolerance     firmware.Share // share of a site's devices that may stay away

	// Subnet peers (docs/protocol.md, "Subnet peers"): per update file and
	// peer subnet one device downloads from the service and serves the
	// others.
	Peers        bool          // on; sites may turn them off (sites add --no-peers)
	PeerDelay    time.Duration // how long the others wait before fetching from the representative
	PeerTimeout  time.Duration // a representative silent this long is replaced
	PeerPrefixV4 int64         // length of an IPv4 peer subnet
	PeerPrefixV6 int64         // length of an IPv6 peer subnet
}

// RetryPolicy is the policy the rollout_* settings describe.
func (s Settings) RetryPolicy() firmware.RetryPolicy {
	p := firmware.RetryPolicy{Retries: int(s.RolloutRetries), Backoff: s.RolloutBackoff, MaxBackoff: s.RolloutMaxBackoff,
		ReportTimeout: s.RolloutReportTimeout, StallTimeout: s.RolloutStallTimeout}
	if s.RolloutRetries == 0 {
		p.Retries = -1 // the setting's 0 is no retry; firmware's zero is its default
	}
	return p
}

// DefaultMinPasswordLength is the default of Settings.MinPasswordLength:
// 8 characters, NIST SP 800-63B's floor for a password the verifier
// rate-limits (signin_max_failures locks an account after a few wrong
// ones), and what a user can still type on a desk phone's keypad.
const DefaultMinPasswordLength = 8

// MaxMinPasswordLength bounds min_password_length: longer is no password
// a phone's keypad takes.
const MaxMinPasswordLength = 128

// DefaultMinFreeSpace is the default of Settings.MinFreeSpace, 256 MiB:
// room for the inventory of a large fleet to grow many times over while an
// admin frees space.
const DefaultMinFreeSpace = 256 << 20

// DefaultSettings returns the defaults for domain.
func DefaultSettings(domain string) Settings {
	return Settings{
		Domain:                   domain,
		InternalName:             "ucupdates-r2." + domain,
		ExternalName:             "ucupdates." + domain,
		InternalAddr:             ":443",
		ExternalAddr:             ":4443",
		AdminAddr:                "127.0.0.1:9443",
		ConsoleAddr:              "127.0.0.1:9444",
		ConsoleIdleTimeout:       30 * time.Minute,
		ConsoleSessionLifetime:   12 * time.Hour,
		DeployRoundTableOnImport: true,
		CheckInterval:            24 * time.Hour,
		CheckJitter:              2 * time.Hour,
		InventoryFlush:           200 * time.Millisecond,
		MaxImportBytes:           8 << 30,
		LogCleanUpInterval:       10 * 24 * time.Hour,
		LogFlushInterval:         5 * time.Minute,
		MaxLogFileSize:           1024000,
		MaxLogStorage:            1 << 30,
		MinFreeSpace:             DefaultMinFreeSpace,
		SignInMaxFailures:        5,
		SignInMaxAddressFailures: 20,
		SignInLockout:            15 * time.Minute,
		MinPasswordLength:        DefaultMinPasswordLength,
		RolloutReportTimeout:     firmware.DefaultReportTimeout,
		RolloutStallTimeout:      firmware.DefaultStallTimeout,
		RolloutRetries:           firmware.DefaultRetries,
		RolloutBackoff:           firmware.DefaultBackoff,
		RolloutMaxBackoff:        firmware.DefaultMaxBackoff,
		WindowMinOpen:            time.Hour,
		OverdueGrace:             4 * time.Hour,
		OverdueTolerance:         500,
		ValidLogFileTypes:        []string{"Watson", "CELog", "Config"},
		ValidLogFileExtensions:   []string{".dmp", ".clg", ".clg2", ".bak", ".kdmp", ".dat", ".bin", ".cat", ".xml", ".txt", ".hex"},
		RequestBodyTimeout:       10 * time.Second,
		DownloadStallTimeout:     time.Minute,
		LogUploadTimeout:         2 * time.Minute,
		ReplicaAlarmAfter:        15 * time.Minute,
		ReplicaRetryMax:          time.Minute,
		ReplicaMaxLag:            5 * time.Minute,
		Peers:                    true,
		PeerDelay:                time.Minute,
		PeerTimeout:              15 * time.Minute,
		PeerPrefixV4:             24,
		PeerPrefixV6:             64,
		MetadataTimestampExpiry:  24 * time.Hour,
		MetadataSnapshotExpiry:   7 * 24 * time.Hour,
		MetadataTargetsExpiry:    30 * 24 * time.Hour,
		MetadataRootExpiry:       5 * 365 * 24 * time.Hour,
	}
}

// setting describes one key of the file: its name, what it means, and how
// to read and write it.
type setting struct {
	key, help string
	get       func(*Settings) string
	set       func(*Settings, string) error
}

func str(key, help string, p func(*Settings) *string) setting {
	return setting{key, help, func(s *Settings) string { return *p(s) }, func(s *Settings, v string) error { *p(s) = v; return nil }}
}

func dur(key, help string, p func(*Settings) *time.Duration) setting {
	return setting{key, help, func(s *Settings) string { return formatDuration(*p(s)) },
		func(s *Settings, v string) error {
			d, err := parseDuration(v)
			if err != nil {
				return err
			}
			*p(s) = d
			return nil
		}}
}

func num(key, help string, p func(*Settings) *int64) setting {
	return setting{key, help, func(s *Settings) string { return strconv.FormatInt(*p(s), 10) },
		func(s *Settings, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("want a whole number of bytes, got %q", v)
			}
			*p(s) = n
			return nil
		}}
}

// count is a whole number from lo to hi.
func count(key, help string, lo, hi int64, p func(*Settings) *int64) setting {
	return setting{key, help, func(s *Settings) string { return strconv.FormatInt(*p(s), 10) },
		func(s *Settings, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < lo || n > hi {
				return fmt.Errorf("want a whole number from %d to %d, got %q", lo, hi, v)
			}
			*p(s) = n
			return nil
		}}
}

func list(key, help string, p func(*Settings) *[]string) setting {
	return setting{key, help, func(s *Settings) string { return strings.Join(*p(s), ", ") },
		func(s *Settings, v string) error {
			var out []string
			for _, f := range strings.Split(v, ",") {
				if f = strings.TrimSpace(f); f != "" {
					out = append(out, f)
				}
			}
			*p(s) = out
			return nil
		}}
}

// prefixes is a list of addresses or CIDR prefixes.
func prefixes(key, help string, p func(*Settings) *[]string) setting {
	l := list(key, help, p)
	set := l.set
	l.set = func(s *Settings, v string) error {
		if err := set(s, v); err != nil {
			return err
		}
		for _, f := range *p(s) {
			if _, err := netip.ParsePrefix(f); err == nil {
				continue
			}
			if _, err := netip.ParseAddr(f); err != nil {
				return fmt.Errorf("want addresses or CIDR prefixes like 10.0.0.0/8, got %q", f)
			}
		}
		return nil
	}
	return l
}

// share is a percentage, like 5% (firmware.ParseShare).
func share(key, help string, p func(*Settings) *firmware.Share) setting {
	return setting{key, help, func(s *Settings) string { return p(s).String() },
		func(s *Settings, v string) error {
			sh, err := firmware.ParseShare(v)
			if err != nil {
				return fmt.Errorf("want a percentage like 5%%, got %q", v)
			}
			*p(s) = sh
			return nil
		}}
}

func boolean(key, help string, p func(*Settings) *bool) setting {
	return setting{key, help, func(s *Settings) string { return strconv.FormatBool(*p(s)) },
		func(s *Settings, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false, got %q", v)
			}
			*p(s) = b
			return nil
		}}
}

var settings = []setting{
	str("domain", "The SIP/DNS domain served. Devices that were never signed in find the\nservice as ucupdates-r2.<domain>.",
		func(s *Settings) *string { return &s.Domain }),
	str("internal_name", "The name devices inside the network use (covered by the server certificate).",
		func(s *Settings) *string { return &s.InternalName }),
	str("external_name", "The name devices outside use, through the edge.",
		func(s *Settings) *string { return &s.ExternalName }),
	str("internal_addr", "Address of the LAN listener (HTTPS, anonymous check-ins).",
		func(s *Settings) *string { return &s.InternalAddr }),
	str("external_addr", "Address of the edge listener (HTTPS, NTLM-authenticated, HTTP/1.1).",
		func(s *Settings) *string { return &s.ExternalAddr }),
	str("admin_addr", "Address of the admin API (gRPC, mutual TLS with an admin certificate).",
		func(s *Settings) *string { return &s.AdminAddr }),
	str("console_addr", "Address of the web console (HTTPS with the server certificate; sign in with\na console admin, devsvc admins add, or a directory account of the admin\ngroups). On loopback by default: open https://127.0.0.1:9444/ on this host,\nor forward the port over SSH. Empty: no console.",
		func(s *Settings) *string { return &s.ConsoleAddr }),
	dur("console_idle_timeout", "A console session unused this long ends: its admin signs in again.",
		func(s *Settings) *time.Duration { return &s.ConsoleIdleTimeout }),
	dur("console_session_lifetime", "Any console session ends this long after its sign-in, however busy.",
		func(s *Settings) *time.Duration { return &s.ConsoleSessionLifetime }),
	str("metrics_addr", "Address of the metrics listener (plain HTTP: /metrics for Prometheus, /healthz\nand /readyz), e.g. 127.0.0.1:9445. Keep it on loopback or a management\nnetwork: it has no TLS and no sign-in. Empty: no metrics listener.",
		func(s *Settings) *string { return &s.MetricsAddr }),
	str("internal_url", "Base URL devices are given for the internal service; empty means\nhttps://<internal_name>[:port]/ from internal_addr.",
		func(s *Settings) *string { return &s.InternalURL }),
	str("external_url", "Base URL devices are given for the external service; empty means\nhttps://<external_name>[:port]/ from external_addr.",
		func(s *Settings) *string { return &s.ExternalURL }),
	str("moved_internal_url", "When the service moves: its new internal base URL (or check-in URL).\nEvery device that checks in is given the new check-in URL, stores it in\nplace of its provisioned updatesServerInternalUrl and checks in there from\nthen on. Empty: not moved.",
		func(s *Settings) *string { return &s.MovedInternalURL }),
	str("moved_external_url", "When the service moves: the new external base URL (see moved_internal_url).",
		func(s *Settings) *string { return &s.MovedExternalURL }),
	boolean("deploy_roundtable_on_import", "RoundTable updates are approved as soon as they are imported, as the\noriginal service does. false: they wait for approve like phones.",
		func(s *Settings) *bool { return &s.DeployRoundTableOnImport }),
	dur("check_interval", "How often devices check for updates.",
		func(s *Settings) *time.Duration { return &s.CheckInterval }),
	dur("check_jitter", "Next check times are spread over this much, so a fleet does not arrive at once.",
		func(s *Settings) *time.Duration { return &s.CheckJitter }),
	dur("inventory_flush", "Device check-ins are written in batches; each is durable within this long.",
		func(s *Settings) *time.Duration { return &s.InventoryFlush }),
	num("max_import_bytes", "Largest upload an import accepts, in bytes.",
		func(s *Settings) *int64 { return &s.MaxImportBytes }),
	str("rpm_keyring", "Path of an armored OpenPGP public keyring (gpg --export --armor KEY);\nwhen set, RPM bundles must be signed by one of its keys, or the import is\nrefused. A relative path is under the data directory. Empty: RPM bundles\nare checked for integrity only.",
		func(s *Settings) *string { return &s.RPMKeyring }),
	str("ldap_url", "An LDAP directory for accounts, e.g. ldaps://dc1.contoso.com:636 (or ldap://\nwith ldap_starttls = true). Empty: the local accounts of devsvc accounts.",
		func(s *Settings) *string { return &s.LDAPURL }),
	boolean("ldap_starttls", "Use StartTLS on an ldap:// URL (plain binds are never made).",
		func(s *Settings) *bool { return &s.LDAPStartTLS }),
	str("ldap_ca_file", "PEM file of the CA that issued the directory's certificate; empty: the system's.",
		func(s *Settings) *string { return &s.LDAPCAFile }),
	str("ldap_bind_dn", "The service account the service binds as to search.",
		func(s *Settings) *string { return &s.LDAPBindDN }),
	str("ldap_bind_password_file", "File (mode 0600) holding that account's password.",
		func(s *Settings) *string { return &s.LDAPBindPasswordFile }),
	str("ldap_base_dn", "Users must be under this DN.",
		func(s *Settings) *string { return &s.LDAPBaseDN }),
	str("ldap_user_filter", "Filter finding a user; {user} is replaced by the escaped name. Empty:\n(&(objectClass=sambaSamAccount)(uid={user})).",
		func(s *Settings) *string { return &s.LDAPUserFilter }),
	str("ldap_group_base_dn", "Groups are searched under this DN; empty: ldap_base_dn.",
		func(s *Settings) *string { return &s.LDAPGroupBaseDN }),
	str("ldap_admin_group", "DN of the group whose members may change things through the admin API.",
		func(s *Settings) *string { return &s.LDAPAdminGroup }),
	str("ldap_readonly_group", "DN of the group whose members may only look.",
		func(s *Settings) *string { return &s.LDAPReadOnlyGroup }),
	list("ldap_domains", "NTLM domain names devices may send (the first is the canonical one), e.g.\nCONTOSO, contoso.com. Empty: the service's own, as for local accounts: the\nfirst label of domain in capitals (CONTOSO), domain itself, and OPENDUS.\nAny other domain is refused like an unknown user.",
		func(s *Settings) *[]string { return &s.LDAPDomains }),
	num("signin_max_failures", "Wrong passwords for one device account, within signin_lockout, that lock\nthat account (only it) for signin_lockout: its sign-ins are refused, NTLM at\nthe edge and Basic on the LAN alike, whatever the address. Was\nntlm_max_failures.",
		func(s *Settings) *int64 { return &s.SignInMaxFailures }),
	num("signin_max_address_failures", "Refused sign-ins naming a user (existing or not) from one address (IPv4,\nor IPv6 /64), within signin_lockout, that slow that address for\nsignin_lockout: right passwords still sign in at once, refusals are\nanswered a second late, four at a time (more: 503, try again). An address\nis never locked out, since phones behind one NAT or proxy share it, and\nmessages that name no user never count. 0: never slow. Was\nntlm_max_address_failures.",
		func(s *Settings) *int64 { return &s.SignInMaxAddressFailures }),
	dur("signin_lockout", "How long failed sign-ins count, how long an account stays locked and an\naddress slowed. Was ntlm_lockout.",
		func(s *Settings) *time.Duration { return &s.SignInLockout }),
	count("min_password_length", "The fewest characters a device account's password may have: devsvc accounts\nadd and passwd, and the console's device accounts page, refuse shorter\nones, saying so. Users type it on a phone's keypad, so the default is\nNIST SP 800-63B's floor for a password whose guesses are limited\n(signin_max_failures); raise it where you can (15 when the password is a\nremote sign-in's only factor). Passwords set before keep working. Console\nadmins always need 15.",
		1, MaxMinPasswordLength, func(s *Settings) *int64 { return &s.MinPasswordLength }),
	prefixes("trusted_proxies", "Reverse proxies in front of the listeners, as addresses or CIDR prefixes\n(10.0.0.0/8, 2001:db8::/48), comma-separated. A sign-in arriving from one\ncounts against the client its X-Forwarded-For header names (the right-most\nentry that is not itself a trusted proxy). Empty: every sign-in counts\nagainst the address it arrives from, so all phones behind a proxy share\none (slowed, never locked).",
		func(s *Settings) *[]string { return &s.TrustedProxies }),
	dur("log_cleanup_interval", "Audit logs and device logs are removed after this long (LogCleanUpInterval, 1d-365d).",
		func(s *Settings) *time.Duration { return &s.LogCleanUpInterval }),
	dur("log_flush_interval", "Audit log lines are flushed to disk at least this often (LogFlushInterval, 1m-1h).",
		func(s *Settings) *time.Duration { return &s.LogFlushInterval }),
	num("max_log_file_size", "Largest device log upload, in bytes (MaxLogFileSize).",
		func(s *Settings) *int64 { return &s.MaxLogFileSize }),
	num("max_log_storage", "Most bytes all stored device logs may take; uploads beyond are refused\n(507) until old logs expire. The log upload endpoint is anonymous on the LAN.",
		func(s *Settings) *int64 { return &s.MaxLogStorage }),
	num("min_free_space", "Free disk space, in bytes, kept on the data directory's file system for the\ndevice inventory and the catalog: device log uploads that would take it are\nrefused (507) and audit log lines dropped (counted, logged); below it\n`devsvc status` warns. 0: no floor (uploads may then fill the disk, and\ncheck-ins are answered 503 until space is freed).",
		func(s *Settings) *int64 { return &s.MinFreeSpace }),
	dur("rollout_report_timeout", "A device offered a version during a rollout and silent this long (no\nstatus report since the offer or its last report) counts as stalled:\nshown, not yet failed.",
		func(s *Settings) *time.Duration { return &s.RolloutReportTimeout }),
	dur("rollout_stall_timeout", "A device stalled this long more counts as failed, against the rollout's\n--max-failures.",
		func(s *Settings) *time.Duration { return &s.RolloutStallTimeout }),
	num("rollout_retries", "How many times a device that reported a failed install is offered the\nversion again (after a back-off) before it counts as failed and is offered\nit no more. 0: never again, the first failure counts.",
		func(s *Settings) *int64 { return &s.RolloutRetries }),
	dur("rollout_backoff", "How long a device that failed waits before it is offered the version\nagain; each further retry waits twice as long, up to rollout_max_backoff.",
		func(s *Settings) *time.Duration { return &s.RolloutBackoff }),
	dur("rollout_max_backoff", "The longest wait between retries.",
		func(s *Settings) *time.Duration { return &s.RolloutMaxBackoff }),
	dur("window_min_open", "An update is offered inside a site's (and a rollout's) maintenance windows\nonly when they stay open at least this long, so that the device can\ndownload and install before they close; it is told when they close.",
		func(s *Settings) *time.Duration { return &s.WindowMinOpen }),
	dur("overdue_grace", "A scheduled release (approve --at, rollout start --at) is checked this long\nafter its time: a site where more than overdue_tolerance of the devices have\nnot checked in since raises an overdue alarm (devsvc alarms). Devices are\ntold to come at the release time plus their check_jitter, so keep it above.",
		func(s *Settings) *time.Duration { return &s.OverdueGrace }),
	share("overdue_tolerance", "The share of a site's devices that may stay away (switched off) after a\nscheduled release without an overdue alarm.",
		func(s *Settings) *firmware.Share { return &s.OverdueTolerance }),
	list("valid_log_file_types", "Device log types accepted (ValidLogFileTypes).",
		func(s *Settings) *[]string { return &s.ValidLogFileTypes }),
	list("valid_log_file_extensions", "Device log file extensions accepted (ValidLogFileExtensions).",
		func(s *Settings) *[]string { return &s.ValidLogFileExtensions }),
	num("max_log_upload_per_address", "Most bytes the log uploads in progress from one address (IPv4, or IPv6 /64)\nmay reserve at once (each reserves its length until it ends); more are refused\n(429). 0: a sixteenth of max_log_storage. Devices behind one NAT or proxy\n(the edge) share an address: raise it there.",
		func(s *Settings) *int64 { return &s.MaxLogUploadPerAddress }),
	dur("log_upload_timeout", "A device log upload's body must arrive within this; a slower one is refused\n(408), its connection closed and its reserved space freed.",
		func(s *Settings) *time.Duration { return &s.LogUploadTimeout }),
	dur("request_body_timeout", "The body of a check-in, status report or sign-in must arrive within this of\nits headers; a stalled one is answered 408 and its connection closed. Bodies\nare small (64 KiB at most): slow links need far less.",
		func(s *Settings) *time.Duration { return &s.RequestBodyTimeout }),
	dur("download_stall_timeout", "A download that makes no progress for this long is dropped (a slow link\nthat keeps moving is served however long it takes).",
		func(s *Settings) *time.Duration { return &s.DownloadStallTimeout }),
	list("replica_of", "On a replica (devsvc init --replica-of writes it): the admin addresses of the\nprimary it follows, host:port, comma-separated, tried in order. Empty: this\nservice is a primary. See docs/replicas.md.",
		func(s *Settings) *[]string { return &s.ReplicaOf }),
	str("replica_name", "On a replica: its name, as the primary knows it (devsvc replicas list).",
		func(s *Settings) *string { return &s.ReplicaName }),
	str("replica_site", "On a replica: the site it serves.",
		func(s *Settings) *string { return &s.ReplicaSite }),
	str("primary_internal_url", "On a replica: the primary's base URL for devices inside, which every offer\ngives as the files' alternative URL (InternalURLAlt): a device whose\ndownload from the replica fails fetches the file there. Empty: none.",
		func(s *Settings) *string { return &s.PrimaryInternalURL }),
	str("primary_external_url", "On a replica: the primary's base URL for devices outside (ExternalURLAlt).",
		func(s *Settings) *string { return &s.PrimaryExternalURL }),
	dur("replica_retry_max", "On a replica: the longest wait between attempts to reach the primary after\na failure (from 1s, doubling): how soon it notices the primary is back.",
		func(s *Settings) *time.Duration { return &s.ReplicaRetryMax }),
	dur("replica_max_lag", "On a replica: /readyz fails (its replica check) once it has not been in step\nwith its primary (its position at the head the primary last told) for this\nlong, so that a load balancer sends its site's devices elsewhere while it is\nstale; counted from the start until it first is. 0: never.",
		func(s *Settings) *time.Duration { return &s.ReplicaMaxLag }),
	dur("replica_alarm_after", "On a primary: a replica that has not applied a release (an approval) this\nlong after it raises an alarm (logged, in devsvc replicas list and status).",
		func(s *Settings) *time.Duration { return &s.ReplicaAlarmAfter }),
	boolean("peers", "Subnet peers: devices that can serve peers (their check-in says where) are\nelected, per update file and peer subnet, to download it from the service\nand serve it to the subnet's other devices, which check every piece against\nthe file's piece list and fall back to the service. One download per subnet\ninstead of one per device. Sites may turn them off (devsvc sites add\n--no-peers). false: every device downloads from the service.",
		func(s *Settings) *bool { return &s.Peers }),
	dur("peer_delay", "How long the devices of a subnet wait before they fetch an update from their\nrepresentative, so that it has a head start (those that come later fetch at\nonce from a device that has it).",
		func(s *Settings) *time.Duration { return &s.PeerDelay }),
	dur("peer_timeout", "A representative silent this long (no check-in, no status report) is\nreplaced: the next device of its subnet to check in elects another (so is\none its peers report unreachable or serving bad pieces, at once). Keep it\nabove the time a download from the service takes.",
		func(s *Settings) *time.Duration { return &s.PeerTimeout }),
	count("peer_prefix_v4", "The length of a peer subnet for IPv4 devices: devices whose addresses share\nthe first peer_prefix_v4 bits share a representative.",
		8, 32, func(s *Settings) *int64 { return &s.PeerPrefixV4 }),
	count("peer_prefix_v6", "The length of a peer subnet for IPv6 devices.",
		32, 128, func(s *Settings) *int64 { return &s.PeerPrefixV6 }),
	dur("metadata_timestamp_expiry", "Signed update metadata (docs/protocol.md): the timestamp role expires this\nlong after it is signed, and the service re-signs it at half of that. A\nrelay (replica, cache) can keep devices on old metadata this long at most;\ndevices must have a clock within that of the service's.",
		func(s *Settings) *time.Duration { return &s.MetadataTimestampExpiry }),
	dur("metadata_snapshot_expiry", "The snapshot role expires this long after it is signed (re-signed at half).",
		func(s *Settings) *time.Duration { return &s.MetadataSnapshotExpiry }),
	dur("metadata_targets_expiry", "The targets role (what is offered, per rule) expires this long after it is\nsigned; every catalog change signs it anew, and the service re-signs it at\nhalf.",
		func(s *Settings) *time.Duration { return &s.MetadataTargetsExpiry }),
	dur("metadata_root_expiry", "A root version that devsvc keys init or rotate signs is valid this long.\nRotate the keys before it passes (devsvc keys rotate; with the offline\nroot key when it was moved away): devices refuse an expired root.",
		func(s *Settings) *time.Duration { return &s.MetadataRootExpiry }),
}

// Entry is one setting as the settings file names it, for a reader of
// the settings (the console's read-only view): its key, value, default
// and what it means. No setting holds a secret: ldap_bind_password_file
// is the name of the file that holds one, never read here.
type Entry struct {
	Key, Value, Default, Help string
}

// Entries lists every setting of s, in the order of the settings file.
func (s Settings) Entries() []Entry {
	def := DefaultSettings(s.Domain)
	out := make([]Entry, 0, len(settings))
	for _, st := range settings {
		out = append(out, Entry{Key: st.key, Value: st.get(&s), Default: st.get(&def), Help: st.help})
	}
	return out
}

// renamed maps the old names of settings, still read, to their new ones.
var renamed = map[string]string{
	"ntlm_max_failures":         "signin_max_failures",
	"ntlm_max_address_failures": "signin_max_address_failures",
	"ntlm_lockout":              "signin_lockout",
}

// formatDuration writes whole numbers of days from two on as "10d", else
// Go's form without zero minutes and seconds ("24h", "5m", "200ms").
func formatDuration(d time.Duration) string {
	if d >= 48*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parseDuration accepts Go durations and a number of days, "10d".
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("want a duration like 24h or 10d, got %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration like 24h or 10d, got %q", s)
	}
	return d, nil
}

// Render returns the settings file: every setting with its help, the
// default commented, and the value set when it differs from the default.
func (s Settings) Render() []byte {
	def := DefaultSettings(s.Domain)
	var b bytes.Buffer
	b.WriteString("# OpenDUS device update service settings (written by devsvc init).\n")
	b.WriteString("# Every setting is listed with its default; uncomment a line to change it.\n")
	b.WriteString("# Flags of `devsvc serve` override the listener addresses.\n")
	for _, st := range settings {
		b.WriteString("\n")
		for _, line := range strings.Split(st.help, "\n") {
			b.WriteString("# " + line + "\n")
		}
		v, d := st.get(&s), st.get(&def)
		if st.key == "domain" || v != d {
			fmt.Fprintf(&b, "%s = %s\n", st.key, v)
		} else {
			fmt.Fprintf(&b, "# %s = %s\n", st.key, d)
		}
	}
	return b.Bytes()
}

// ErrNoConfig is returned when a data directory has no settings file.
var ErrNoConfig = errors.New("no settings file")

// LoadSettings reads DIR/devsvc.conf over the defaults.
func LoadSettings(dir string) (Settings, error) {
	name := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return Settings{}, fmt.Errorf("%s: %w: create the data directory with `devsvc init --data %s --domain DOMAIN`", name, ErrNoConfig, dir)
	}
	if err != nil {
		return Settings{}, err
	}
	return ParseSettings(name, data)
}

// ParseSettings parses a settings file's content; name is used in errors.
// A setting under its old name is read as the new one, with a warning in
// Settings.Warnings; both names at once are an error.
func ParseSettings(name string, data []byte) (Settings, error) {
	// The domain decides other defaults, so find it first.
	kv := map[string]string{}
	var warnings []string
	lineOf := map[string]int{}  // the line each setting was last set on
	oldName := map[string]int{} // the line a setting was set on under its old name
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return Settings{}, fmt.Errorf("%s:%d: want key = value, got %q", name, line, t)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if nk, ok := renamed[k]; ok {
			warnings = append(warnings, fmt.Sprintf("%s:%d: %s is now called %s: rename it (the old name still works)", name, line, k, nk))
			if prev, ok := lineOf[nk]; ok {
				return Settings{}, fmt.Errorf("%s:%d: %s is the old name of %s, already set on line %d: keep one", name, line, k, nk, prev)
			}
			oldName[nk] = line
			k = nk
		} else if prev, ok := oldName[k]; ok {
			return Settings{}, fmt.Errorf("%s:%d: %s is already set on line %d under its old name: keep one", name, line, k, prev)
		}
		lineOf[k] = line
		known := false
		for _, st := range settings {
			known = known || st.key == k
		}
		if !known {
			return Settings{}, fmt.Errorf("%s:%d: unknown setting %q", name, line, k)
		}
		kv[k] = v
	}
	if err := sc.Err(); err != nil {
		return Settings{}, err
	}
	if kv["domain"] == "" {
		return Settings{}, fmt.Errorf("%s: domain is not set", name)
	}
	s := DefaultSettings(kv["domain"])
	for _, st := range settings {
		if v, ok := kv[st.key]; ok {
			if err := st.set(&s, v); err != nil {
				return Settings{}, fmt.Errorf("%s: %s: %w", name, st.key, err)
			}
		}
	}
	s.Warnings = warnings
	return s, nil
}

// SetKeys returns the settings file data with each key of kv set to its
// value and every other line as it was (comments, the admin's own edits):
// a key's active line is replaced, else its commented default line
// ("# key = ...") becomes the active one, else the line is appended. The
// result must parse (ParseSettings), or SetKeys returns the error.
func SetKeys(name string, data []byte, kv map[string]string) ([]byte, error) {
	lines := strings.SplitAfter(string(data), "\n")
	keyOf := func(line string) (key string, commented bool) {
		t := strings.TrimSpace(line)
		t, commented = strings.CutPrefix(t, "#")
		k, _, ok := strings.Cut(t, "=")
		if !ok {
			return "", false
		}
		return strings.TrimSpace(k), commented
	}
	active := map[string]bool{}
	for _, l := range lines {
		if k, commented := keyOf(l); k != "" && !commented {
			active[k] = true
		}
	}
	done := map[string]bool{}
	for i, l := range lines {
		k, commented := keyOf(l)
		v, ok := kv[k]
		// An active line is replaced; a commented one only when the key
		// has no active line.
		if !ok || done[k] || commented && active[k] {
			continue
		}
		nl := ""
		if strings.HasSuffix(l, "\n") {
			nl = "\n"
		}
		lines[i] = k + " = " + v + nl
		done[k] = true
	}
	out := strings.Join(lines, "")
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if done[k] {
			continue
		}
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		out += k + " = " + kv[k] + "\n"
	}
	if _, err := ParseSettings(name, []byte(out)); err != nil {
		return nil, err
	}
	return []byte(out), nil
}

// Keys returns the names of every setting, in the order of the file.
func Keys() []string {
	out := make([]string, len(settings))
	for i, st := range settings {
		out[i] = st.key
	}
	return out
}

// Changed returns the names of the settings whose values differ between a
// and b, in the order of the file. Warnings are not settings.
func Changed(a, b Settings) []string {
	var out []string
	for _, st := range settings {
		if st.get(&a) != st.get(&b) {
			out = append(out, st.key)
		}
	}
	return out
}

// Merge returns base with the settings named by keys taken from from; an
// unknown key is an error.
func Merge(base, from Settings, keys []string) (Settings, error) {
	for _, k := range keys {
		i := slices.IndexFunc(settings, func(st setting) bool { return st.key == k })
		if i < 0 {
			return base, fmt.Errorf("unknown setting %q", k)
		}
		if err := settings[i].set(&base, settings[i].get(&from)); err != nil {
			return base, fmt.Errorf("%s: %w", k, err)
		}
	}
	return base, nil
}
