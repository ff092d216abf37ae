.PHONY: test run
# Runs every check and test (see scripts/test.sh).
test:
	./scripts/test.sh

# Starts the example admin app on http://127.0.0.1:8080.
run:
	cd _example && go run .
