package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/opendus/opendus/devsvc/store"
	"github.com/opendus/opendus/firmware"
)

func Example() {
	dir, err := os.MkdirTemp("", "opendus")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := store.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	id, _ := firmware.ParseIdentity("UCPhone/Polycom/CX600/A/ENU")
	image := []byte("firmware image")
	sum := sha256.Sum256(image)
	_, err = s.Import(ctx, "admin", []firmware.ImportUpdate{{
		Identity: id, Version: firmware.MustParseVersion("4.0.7577.4372"), UpdateType: "Firmware",
		Files: []firmware.ImportFile{{Name: "CX600.nbt", Size: int64(len(image)), SHA256: &sum,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(image)), nil }}},
	}}, store.ImportOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := s.Approve(ctx, "admin", id.Path()); err != nil {
		log.Fatal(err)
	}
	_, err = s.Approve(ctx, "admin", id.Path())
	fmt.Println(err)

	r, _ := s.Catalog().Rule(id)
	v, ok := firmware.Offer(&r, firmware.MustParseVersion("4.0.7577.4000"), false)
	fmt.Println(v, ok)
	events, _ := s.History(ctx, 0, 0)
	for _, e := range events {
		fmt.Println(e.Seq, e.Action, e.Subject, e.Version)
	}
	// Output:
	// rule UCPhone/Polycom/CX600/A/ENU has no pending version to approve
	// 4.0.7577.4372 true
	// 1 import UCPhone/Polycom/CX600/A/ENU 4.0.7577.4372
	// 2 approve UCPhone/Polycom/CX600/A/ENU 4.0.7577.4372
}
