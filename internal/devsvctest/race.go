//go:build race

package devsvctest

// raceEnabled reports whether this test binary has the race detector:
// Binary builds devsvc with it too.
const raceEnabled = true
