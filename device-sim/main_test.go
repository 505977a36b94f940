package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/simulator"
)

func TestParseGroup(t *testing.T) {
	tests := []struct {
		in      string
		want    simulator.Group
		wantErr string
	}{
		{"UCPhone/Polycom/CX600/A/ENU,10,1.0.0.1", simulator.Group{Model: "UCPhone/Polycom/CX600/A/ENU", Count: 10, Version: "1.0.0.1"}, ""},
		{"UCPhone/HP/4120/A/ENU,5,2.0.0.1,external,signin=0.5,test=2",
			simulator.Group{Model: "UCPhone/HP/4120/A/ENU", Count: 5, Version: "2.0.0.1", Location: firmware.External, SignIn: 0.5, TestDevices: 2}, ""},
		{"UCPhone/HP/4120/A/ENU,5,2.0.0.1,site=paris,subnet=127.0.5.0/24",
			simulator.Group{Model: "UCPhone/HP/4120/A/ENU", Count: 5, Version: "2.0.0.1", Site: "paris", Subnet: "127.0.5.0/24"}, ""},
		{"UCPhone/HP/4120/A/ENU,5,2.0.0.1,site=berlin-hq,subnet=127.1.0.0/16",
			simulator.Group{Model: "UCPhone/HP/4120/A/ENU", Count: 5, Version: "2.0.0.1", Site: "berlin-hq", Subnet: "127.1.0.0/16"}, ""},
		{"UCPhone/HP/4120/A/ENU,5", simulator.Group{}, "want MODEL,COUNT,VERSION"},
		{"UCPhone/HP/4120/A/ENU,many,1.0.0.1", simulator.Group{}, `count "many"`},
		{"UCPhone/HP/4120/A/ENU,5,1.0.0.1,signin=half", simulator.Group{}, `signin="half"`},
		{"UCPhone/HP/4120/A/ENU,5,1.0.0.1,colour=red", simulator.Group{}, `unknown option "colour=red"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseGroup(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseGroup(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseGroup(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestList(t *testing.T) {
	args := []string{"--accounts", "3", "--group", "UCPhone/Polycom/CX600/A/ENU,4,1.0.0.1,test=2,signin=1,site=hq,subnet=127.1.0.0/16",
		"--group", "UCPhone/Polycom/CX600/A/ENU,1,1.0.0.1,site=hq,subnet=127.2.0.0/16"}
	tests := []struct {
		what  string
		lines int
		first string
	}{
		{"accounts", 3, "user01"},
		{"test-macs", 2, "00-04-F2-"},
		{"fleet", 5, "00-04-F2-"},
		{"sites", 1, "hq\t127.1.0.0/16,127.2.0.0/16"},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), append(args, "--list", tt.what), &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != tt.lines || !strings.HasPrefix(lines[0], tt.first) {
				t.Errorf("--list %s printed %q, want %d lines starting with %q", tt.what, out.String(), tt.lines, tt.first)
			}
		})
	}
}

func TestScenarioFlagsOverrideTheFile(t *testing.T) {
	file := t.TempDir() + "/fleet.json"
	writeFile(t, file, `{"seed": 5, "duration": "12h", "groups": [{"model": "UCPhone/Polycom/CX600/A/ENU", "count": 2, "version": "1.0.0.1"}], "faults": {"powerLoss": 0.5}}`)
	var errOut bytes.Buffer
	o, err := parseFlags([]string{"--scenario", file, "--seed", "9", "--corrupt", "0.25", "--reboot-time", "90s",
		"--install-fails", "2.0.0.1=1", "--install-fails", "3.0.0.1=0.25", "--waves", "5%,25%,100%"}, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := o.scenario()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Seed != 9 || sc.Duration.String() != "12h0m0s" || sc.Faults.PowerLoss != 0.5 || sc.Faults.CorruptImage != 0.25 || sc.Behaviour.RebootTime.String() != "1m30s" {
		t.Errorf("scenario = seed %d, duration %s, faults %+v, reboot %s; want 9, 12h, power loss 0.5 and corrupt 0.25, 1m30s",
			sc.Seed, sc.Duration, sc.Faults, sc.Behaviour.RebootTime)
	}
	if diff := cmp.Diff(map[string]float64{"2.0.0.1": 1, "3.0.0.1": 0.25}, sc.Faults.InstallFails); diff != "" || sc.Waves != "5%,25%,100%" {
		t.Errorf("install fails (-want +got):\n%s; waves %q, want 5%%,25%%,100%%", diff, sc.Waves)
	}
}

func TestReplicaFlag(t *testing.T) {
	var errOut bytes.Buffer
	o, err := parseFlags([]string{"--group", "UCPhone/Polycom/CX600/A/ENU,2,1.0.0.1,site=paris", "--replica", "paris=https://dus-paris.contoso.com/"}, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := o.scenario()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Replicas["paris"] != "https://dus-paris.contoso.com/" {
		t.Errorf("replicas %v, want paris's", sc.Replicas)
	}
	if _, err := parseFlags([]string{"--replica", "paris"}, &errOut); err == nil || !strings.Contains(errOut.String(), "SITE=URL") {
		t.Errorf("--replica paris = %v, %q; want it refused, saying SITE=URL", err, errOut.String())
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no service", []string{"--group", "UCPhone/Polycom/CX600/A/ENU,1,1.0.0.1", "--data", ""}, 1, "no service"},
		{"bad scenario", []string{"--group", "UCPhone/Polycom/CX600/A/ENU,1,1.0"}, 1, "invalid version"},
		{"bad flag", []string{"--frobnicate"}, 2, "frobnicate"},
		{"install fails without P", []string{"--install-fails", "2.0.0.1"}, 2, "want VERSION=P"},
		{"install fails over 1", []string{"--install-fails", "2.0.0.1=1.5"}, 2, "from 0 to 1"},
		{"bad waves", []string{"--group", "UCPhone/Polycom/CX600/A/ENU,1,1.0.0.1", "--waves", "50%,10%"}, 1, "waves"},
		{"firmware without -o", []string{"firmware", "UCPhone/Polycom/CX600/A/ENU=1.0.0.1"}, 2, "want -o DIR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), tt.args, &out, &errOut); code != tt.code || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut.String(), tt.code, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHelpMatchesFlags: device-sim --help and device-sim firmware --help
// list every flag spelt as the usage spells them (--data, -o: printFlags
// lists what the flag sets define), and the usage mentions no flag that
// neither lists.
func TestHelpMatchesFlags(t *testing.T) {
	helps := map[string]string{}
	defined := map[string]bool{"help": true}
	for _, args := range []string{"--help", "firmware --help"} {
		var out, help bytes.Buffer
		run(t.Context(), strings.Fields(args), &out, &help)
		helps[args] = help.String()
		for _, m := range regexp.MustCompile(`(?m)^  (-{1,2})([a-z][a-z0-9-]*)`).FindAllStringSubmatch(help.String(), -1) {
			if (len(m[2]) == 1) != (m[1] == "-") {
				t.Errorf("device-sim %s lists %s%s, spelt otherwise in the usage", args, m[1], m[2])
			}
			defined[m[2]] = true
		}
	}
	if len(defined) < 20 {
		t.Fatalf("device-sim --help lists %d flags, want them all:\n%s", len(defined), helps["--help"])
	}
	for args, text := range helps {
		// Lines that show devsvc's commands (how to set the service up for
		// a rehearsal) mention devsvc's flags, not ours.
		var (
			own     []string
			devsvcs bool // the line continues a devsvc command
		)
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, "devsvc ") || devsvcs {
				devsvcs = strings.HasSuffix(strings.TrimSpace(l), "\\")
				continue
			}
			own = append(own, l)
		}
		text = strings.Join(own, "\n")
		for _, m := range regexp.MustCompile(`(?:^|[\s\[(|])(-{1,2})([a-z][a-z0-9-]*)`).FindAllStringSubmatch(text, -1) {
			if !defined[m[2]] {
				t.Errorf("device-sim %s mentions %s%s, which is no flag", args, m[1], m[2])
			}
			if (len(m[2]) == 1) != (m[1] == "-") {
				t.Errorf("device-sim %s spells %s as %s%s", args, m[2], m[1], m[2])
			}
		}
	}
}
