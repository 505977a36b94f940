// Package archtest holds the architecture test: the rules of the
// repository's layout (docs/ARCHITECTURE.md), checked against the real
// import graph with go list. It has no code of its own.
package archtest
