package certs

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"strconv"
	"testing"
)

func BenchmarkBootstrap(b *testing.B) {
	root := b.TempDir()
	i := 0
	for b.Loop() {
		i++
		if _, err := Bootstrap(filepath.Join(root, strconv.Itoa(i)), testConfig()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenewServer(b *testing.B) {
	s, err := Bootstrap(filepath.Join(b.TempDir(), "data"), testConfig())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.RenewServer(RenewOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshake measures full handshakes (no resumption) over
// loopback TCP, client and server in one process: the cost of a new device
// or admin connection.
func BenchmarkHandshake(b *testing.B) {
	s, err := Bootstrap(filepath.Join(b.TempDir(), "data"), testConfig())
	if err != nil {
		b.Fatal(err)
	}
	admin, err := s.ClientTLSConfig("")
	if err != nil {
		b.Fatal(err)
	}
	tls12 := s.DeviceTLSConfig()
	tls12.MaxVersion = tls.VersionTLS12
	tests := []struct {
		name           string
		server, client *tls.Config
	}{
		{"device-TLS1.2", s.ServerTLSConfig(), tls12},
		{"device-TLS1.3", s.ServerTLSConfig(), s.DeviceTLSConfig()},
		{"admin-mTLS1.3", s.AdminServerTLSConfig(), admin},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			errc := make(chan error, 1)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					sc := tls.Server(c, tt.server)
					errc <- sc.HandshakeContext(b.Context())
					c.Close()
				}
			}()
			tt.client.ServerName = "ucupdates-r2.contoso.com"
			for b.Loop() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				cc := tls.Client(c, tt.client)
				if err := cc.HandshakeContext(b.Context()); err != nil {
					b.Fatal(err)
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

func BenchmarkGetCertificate(b *testing.B) {
	s, err := Bootstrap(filepath.Join(b.TempDir(), "data"), testConfig())
	if err != nil {
		b.Fatal(err)
	}
	get := s.ServerTLSConfig().GetCertificate
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if c, _ := get(nil); c == nil {
				b.Fatal("no certificate")
			}
		}
	})
}
