// Package e2e holds black-box tests of the example app: they build the
// binary, start it on free loopback ports (with a real PostgreSQL and
// redis-server where a test needs them, through sqlstore/pgtest and
// redisstore/redistest) and drive it through real HTTP clients with cookie
// jars and through headless Chromium.
//
// Run them from the _example module:
//
//	go test -race ./e2e/
//
// They need chromium, redis-server and the PostgreSQL server binaries
// (initdb, pg_ctl). Without them the tests that need them are skipped,
// except under CI=true, where they fail. With LOGINAS_SCREENSHOTS set to a
// directory, the browser tests also write the screenshots used in the
// documentation there: user-page.png, banner.png, audit.png, access.png,
// live.png and in-use.png.
package e2e
