package cabingest_test

import (
	"crypto/sha256"
	"fmt"

	"github.com/opendus/opendus/cabingest"
	"github.com/opendus/opendus/firmware"
)

// A vendor's tool writes a description for each update; the import reads
// it back and checks it against the files.
func ExampleMarshalDescription() {
	image := []byte("firmware image")
	d := &cabingest.Description{
		Identity:   firmware.Identity{DeviceType: "UCPhone", Vendor: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"},
		Version:    firmware.MustParseVersion("4.0.7577.4372"),
		UpdateType: cabingest.DefaultUpdateType,
		Files:      []cabingest.DescribedFile{{Name: "CX600.nbt", Role: firmware.RoleImage, Size: int64(len(image)), SHA256: sha256.Sum256(image)}},
	}
	data, err := cabingest.MarshalDescription(d)
	if err != nil {
		panic(err)
	}
	fmt.Print(string(data))
	back, err := cabingest.ParseDescription(data)
	if err != nil {
		panic(err)
	}
	fmt.Println(back.Identity, back.Version, back.Files[0].Name)
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <UpdateDescription xmlns="urn:opendus:update-description:1" schemaVersion="1">
	//   <Identity>
	//     <DeviceType>UCPhone</DeviceType>
	//     <Vendor>Polycom</Vendor>
	//     <Model>CX600</Model>
	//     <Revision>A</Revision>
	//     <Locale>ENU</Locale>
	//   </Identity>
	//   <Version>4.0.7577.4372</Version>
	//   <UpdateType>Firmware</UpdateType>
	//   <File name="CX600.nbt" role="image" size="14" sha256="1df2f3853d10a305aa52d36fd4a03f5721d7ce7daef6f7e5e8d51074d31361f1"/>
	// </UpdateDescription>
	// UCPhone/Polycom/CX600/A/ENU 4.0.7577.4372 CX600.nbt
}
