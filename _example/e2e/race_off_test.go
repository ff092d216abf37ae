//go:build !race

package e2e

// raceEnabled is true when the tests run with -race; the example binary is
// then built with the race detector too.
const raceEnabled = false
