// Package adminpb holds the admin API's protocol buffer messages and gRPC
// services, generated from admin.proto (Admin) and replica.proto
// (Replication, Replicas). Regenerate with `make generate`
// (needs protoc: scripts/install-deps.sh installs it).
package adminpb

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative admin.proto replica.proto"
