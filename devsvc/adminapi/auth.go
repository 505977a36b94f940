package adminapi

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/opendus/opendus/certs"
)

// Role is what an admin may do.
type Role string

// Roles. An admin changes things; a read-only admin may only look.
const (
	RoleAdmin    Role = "admin"
	RoleReadOnly Role = "readonly"
)

// Authenticator signs admins in with a directory account (user name and
// password) and says which role their group membership gives them. It
// returns ErrNoRole for a valid account in neither admin group.
type Authenticator interface {
	AuthenticateAdmin(ctx context.Context, user, password string) (Role, error)
}

// ErrNoRole is returned by an Authenticator for an account that is in
// neither the admin nor the read-only group.
var ErrNoRole = errors.New("not a member of an admin group")

// principal is who is calling and with which role.
type principal struct {
	actor string // "cert:NAME" or "dir:NAME", recorded in the history
	role  Role
}

// readOnly lists the methods a read-only admin may call.
var readOnly = map[string]bool{
	"Status": true, "ListRules": true, "GetRule": true, "ListTestDevices": true,
	"ListAccounts": true, "ListDevices": true, "History": true,
}

// authenticate finds the caller: a verified client certificate from the
// service's CA (its OU is its role), else HTTP-style Basic credentials in
// the call's metadata, checked by the directory.
func (s *Server) authenticate(ctx context.Context) (principal, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
			return certPrincipal(ti.State.VerifiedChains[0][0])
		}
	}
	user, password, ok := basicFromMetadata(ctx)
	if !ok {
		return principal{}, status.Error(codes.Unauthenticated, "sign in required: present an admin client certificate (DIR/certs/admin.pem, or --cert) or a directory account (--user)")
	}
	if s.cfg.Directory == nil {
		return principal{}, status.Error(codes.Unauthenticated, "this server has no directory for password sign-in: use an admin client certificate")
	}
	role, err := s.cfg.Directory.AuthenticateAdmin(ctx, user, password)
	switch {
	case errors.Is(err, ErrNoRole):
		return principal{}, status.Errorf(codes.PermissionDenied, "%s is not in the admin or read-only admin group", user)
	case err != nil:
		s.cfg.Logger.Warn("admin sign-in refused", "user", user, "err", err)
		return principal{}, status.Error(codes.Unauthenticated, "sign-in failed: wrong user name or password, or the directory is unreachable")
	}
	return principal{actor: "dir:" + user, role: role}, nil
}

func certPrincipal(cert *x509.Certificate) (principal, error) {
	name, role := certs.ClientIdentity(cert)
	if name == "" {
		name = "unnamed"
	}
	switch Role(role) {
	case RoleAdmin, RoleReadOnly:
		return principal{actor: "cert:" + name, role: Role(role)}, nil
	}
	return principal{}, status.Errorf(codes.PermissionDenied, "certificate %q has no admin role (its OU is %q): issue one with devsvc certs issue --role admin|readonly", name, role)
}

// authorize refuses a read-only admin anything that changes the service.
func authorize(p principal, fullMethod string) error {
	method := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	if strings.HasPrefix(fullMethod, "/grpc.reflection.") || p.role == RoleAdmin || readOnly[method] {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "%s has the read-only role and cannot call %s: ask an admin", p.actor, method)
}

// basicFromMetadata reads "authorization: Basic base64(user:password)".
func basicFromMetadata(ctx context.Context) (user, password string, ok bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return "", "", false
	}
	enc, found := strings.CutPrefix(vals[0], "Basic ")
	if !found || len(enc) > 1024 {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	user, password, ok = strings.Cut(string(raw), ":")
	return user, password, ok && user != ""
}

// basicCreds sends Basic credentials with every call; only over TLS.
type basicCreds struct{ header string }

func newBasicCreds(user, password string) basicCreds {
	return basicCreds{"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}
}

func (b basicCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": b.header}, nil
}

func (basicCreds) RequireTransportSecurity() bool { return true }
