package simulator_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/opendus/opendus/firmware"
	"github.com/opendus/opendus/simulator"
)

// A fleet against the service running from a data directory: two
// simulated days, as fast as the service answers, and the report.
func Example() {
	svc, err := simulator.LoadService("./dus") // devsvc serve --data ./dus is running
	if err != nil {
		log.Fatal(err)
	}
	sc := simulator.Scenario{Seed: 1, Groups: []simulator.Group{
		{Model: "UCPhone/Polycom/CX600/A/ENU", Count: 600, Version: "3.5.6907.35", SignIn: 0.7, TestDevices: 5},
		{Model: "UCPhone/Polycom/CX600/A/ENU", Count: 300, Version: "3.5.6907.35", SignIn: 0.6, Location: firmware.External},
		{Model: "RoundTable/Microsoft/RoundTable/A/ENU", Count: 100, Version: "1.0.522.101"},
	}, Faults: simulator.Faults{BrokenDownload: 0.02, CorruptImage: 0.01, PowerLoss: 0.01}}
	sim, err := simulator.New(sc, svc, simulator.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	if err := sim.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
	rep := sim.Report()
	rep.WriteText(os.Stdout)
}

// The devices a scenario defines: what an admin marks as test devices and
// which accounts sign in.
func ExampleScenario_Fleet() {
	sc := simulator.Scenario{Seed: 1, Accounts: 2, Groups: []simulator.Group{
		{Model: "UCPhone/Polycom/CX600/A/ENU", Count: 3, Version: "3.5.6907.35", SignIn: 0.5, TestDevices: 1},
		{Model: "RoundTable/Microsoft/RoundTable/A/ENU", Count: 1, Version: "1.0.522.101", Location: firmware.External},
	}}
	if err := sc.Normalize(); err != nil {
		log.Fatal(err)
	}
	for _, d := range sc.Fleet() {
		fmt.Printf("%s %s %-10s %-8s %-6s test=%v\n", d.MAC, d.Serial, d.Identity.Model, d.Location, d.User, d.Test)
	}
	// Output:
	// 00-04-F2-02-5C-C1 POL00000001 CX600      internal        test=true
	// 00-04-F2-02-5C-C2 POL00000002 CX600      internal user01 test=false
	// 00-04-F2-02-5C-C3 POL00000003 CX600      internal        test=false
	// 00-15-5D-02-5C-C1 MIC00000004 RoundTable external        test=false
}
