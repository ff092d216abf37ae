// Package e2e holds black-box tests of the example app: they build the
// binary, start it on free loopback ports (with a real redis-server where a
// test needs one) and drive it through real HTTP clients with cookie jars and
// through headless Chromium.
//
// Run them from the _example module:
//
//	go test -race ./e2e/
//
// They need redis-server and chromium on the PATH. Without them the tests
// that need them are skipped, except under CI=true, where they fail. With
// LOGINAS_SCREENSHOTS set to a directory, the browser test also writes the
// screenshots used in the documentation there (user-page.png, banner.png,
// audit.png).
package e2e
