package adminapi

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/opendus/opendus/devsvc/service"
	"github.com/opendus/opendus/signin"
)

// authenticate finds the caller: a verified client certificate from the
// service's CA, which the service layer checks against its registry
// (recorded, not revoked; its OU is its role), else HTTP-style Basic
// credentials in the call's metadata, checked by the service's directory.
// What the principal may do is the service layer's to decide.
func (s *Server) authenticate(ctx context.Context, fullMethod string) (service.Principal, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			cert, err := s.verifyClient(ti.State.PeerCertificates)
			if err != nil {
				return service.Principal{}, err
			}
			return s.svc.CertPrincipal(ctx, cert)
		}
	}
	user, password, ok := basicFromMetadata(ctx)
	if !ok {
		return service.Principal{}, fmt.Errorf("%w: present an admin client certificate (DIR/certs/admin.pem, or --cert) or a directory account (--user)", service.ErrUnauthenticated)
	}
	remote := "admin-api" // a peer address is always there; a key all the same
	if p, ok := peer.FromContext(ctx); ok {
		if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
			remote = signin.AddressKey(ap.Addr().Unmap())
		}
	}
	return s.svc.SignIn(ctx, remote, user, password)
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

// verifyClient verifies a client's certificate chain against the service's
// CA, for client authentication, now.
func (s *Server) verifyClient(chain []*x509.Certificate) (*x509.Certificate, error) {
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if s.clientCAs == nil {
		return nil, fmt.Errorf("%w: this server takes no client certificates", service.ErrUnauthenticated)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: s.clientCAs, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return nil, fmt.Errorf("%w: the client certificate %q was refused (%v): this service takes only admin certificates of its own CA that have not expired; use the admin certificate of its data directory (--data DIR), or one made with devsvc certs issue (--cert, --key and --ca)",
			service.ErrUnauthenticated, leaf.Subject.CommonName, err)
	}
	return leaf, nil
}
