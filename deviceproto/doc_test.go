package deviceproto_test

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/opendus/opendus/deviceproto"
)

// TestProtocolDocParses reads every example exchange in docs/protocol.md
// (generated from the service's handlers by deviceapi's TestProtocolDoc)
// from the device's side: each message body in it must parse with this
// package, except the one the service refuses as malformed. So the
// protocol a device maker reads, the service's handlers and this package
// agree.
func TestProtocolDocParses(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)<!-- example ([a-z0-9-]+) -->\n```http\n(.*?)```\n<!-- end example -->")
	body := regexp.MustCompile(`(?s)<\?xml.*?</(DeviceUpdateRequest|DeviceUpdateResponse|DeviceStatusReport)>`)
	parse := map[string]func([]byte) error{
		"DeviceUpdateRequest":  func(b []byte) error { _, err := deviceproto.ParseCheckIn(b); return err },
		"DeviceUpdateResponse": func(b []byte) error { _, err := deviceproto.ParseAnswer(b); return err },
		"DeviceStatusReport":   func(b []byte) error { _, err := deviceproto.ParseStatus(b); return err },
	}
	seen := map[string]int{}
	for _, m := range block.FindAllSubmatch(doc, -1) {
		name := string(m[1])
		for _, b := range body.FindAllSubmatch(m[2], -1) {
			root := string(b[1])
			seen[root]++
			err := parse[root](b[0])
			if strings.Contains(name, "malformed") && root == "DeviceUpdateRequest" {
				if !errors.Is(err, deviceproto.ErrMalformed) {
					t.Errorf("example %s: the malformed %s parses (err %v), want ErrMalformed", name, root, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("example %s: %s does not parse: %v\n%s", name, root, err, b[0])
			}
		}
	}
	for root := range parse {
		if seen[root] == 0 {
			t.Errorf("docs/protocol.md has no example %s", root)
		}
	}
}
