package deps

import (
	_ "github.com/Azure/go-ntlmssp"
	_ "github.com/go-ldap/ldap/v3"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/miekg/dns"
	_ "github.com/sassoftware/go-rpmutils"
	_ "go.etcd.io/bbolt"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/proto"
)
