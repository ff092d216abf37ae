#!/usr/bin/env bash
# Runs every check and test of the project: formatting, vet and staticcheck in
# every module; the tests of the library, the two store modules, the example
# app (with its browser, Redis and PostgreSQL tests) and the second app, under
# the race detector; and a short run of every fuzz target.
#
# It installs what the tests need when it is missing: redis-server, chromium
# and postgresql through apt-get (as root on Debian), staticcheck through the
# Go module proxy. Elsewhere it says what to install and stops. The tests
# start their own Redis and PostgreSQL servers on 127.0.0.1 and free ports.
#
# Environment: FUZZTIME (default 10000x) is how long each fuzz target runs,
# as go test -fuzztime takes it. A count, not a duration: Go 1.26's fuzzing
# coordinator can fail a target with "context deadline exceeded" when a
# duration ends while a worker is busy (go.dev/issue/75804, fixed in Go
# 1.27), which a count does not race.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2
FUZZTIME=${FUZZTIME:-10000x}
PG_BIN=/usr/lib/postgresql/15/bin
MODULES=(. sqlstore redisstore _example _example/quickstart)

step() { printf '\n== %s\n' "$*"; }

step "system packages: redis-server, chromium, postgresql"
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x "$PG_BIN/postgres" ] || missing+=(postgresql)
if ((${#missing[@]} > 0)); then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
	else
		echo "missing: ${missing[*]}" >&2
		echo "install them, then run this again: sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
fi
redis-server --version
chromium --version 2>/dev/null || true
"$PG_BIN/postgres" --version

step "go tools"
go version
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi
staticcheck="$gobin/staticcheck"

for module in "${MODULES[@]}"; do
	step "checks in $module: gofmt, go vet, staticcheck"
	unformatted=$(cd "$module" && gofmt -l .)
	if [ -n "$unformatted" ]; then
		echo "gofmt would change these files:" >&2
		echo "$unformatted" >&2
		exit 1
	fi
	(cd "$module" && go vet ./... && "$staticcheck" ./...)
done

for module in "${MODULES[@]}"; do
	step "tests in $module (race detector)"
	(cd "$module" && CI="${CI:-}" go test -race -count=1 ./...)
done

step "fuzz targets, -fuzztime $FUZZTIME each"
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "-- $pkg $target"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
	done
done

step "all checks and tests passed"
