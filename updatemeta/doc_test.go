package updatemeta

import (
	"os"
	"strings"
	"testing"
)

// TestProtocolDocReasons keeps docs/protocol.md's table of refusal
// reasons, which device makers implement, in step with Reasons.
func TestProtocolDocReasons(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## Signed update metadata")
	if !ok {
		t.Fatal(`docs/protocol.md has no "## Signed update metadata" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, r := range Reasons {
		if !strings.Contains(section, "| `"+string(r)+"` |") {
			t.Errorf("docs/protocol.md's signed metadata section does not list the reason %s", r)
		}
	}
	for _, name := range []string{"root.json", "N.root.json", "timestamp.json", "snapshot.json", "targets.json", "/Pieces/"} {
		if !strings.Contains(section, name) {
			t.Errorf("docs/protocol.md's signed metadata section does not name %s", name)
		}
	}
}
