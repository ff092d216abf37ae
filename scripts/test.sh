#!/usr/bin/env bash
# Runs every check and test of the project: formatting, vet, staticcheck, the
# library's and the example's tests (browser and Redis tests included) under
# the race detector, and a short run of every fuzz target.
#
# It installs what the tests need when it is missing: redis-server and
# chromium through apt-get (as root on Debian), staticcheck through the Go
# module proxy. Elsewhere it says what to install and stops.
#
# Environment: FUZZTIME (default 15s) is how long each fuzz target runs.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2
FUZZTIME=${FUZZTIME:-15s}

step() { printf '\n== %s\n' "$*"; }

step "system packages: redis-server, chromium"
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
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

step "go tools"
go version
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi
staticcheck="$gobin/staticcheck"

for module in . _example; do
	step "checks in $module: gofmt, go vet, staticcheck"
	unformatted=$(cd "$module" && gofmt -l .)
	if [ -n "$unformatted" ]; then
		echo "gofmt would change these files:" >&2
		echo "$unformatted" >&2
		exit 1
	fi
	(cd "$module" && go vet ./... && "$staticcheck" ./...)
done

step "tests: library (race detector)"
go test -race -count=1 ./...

step "tests: example app, browser and Redis (race detector)"
(cd _example && CI="${CI:-}" go test -race -count=1 ./...)

step "fuzz targets, $FUZZTIME each"
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "-- $pkg $target"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
	done
done

step "all checks and tests passed"
