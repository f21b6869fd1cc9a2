# The DuckDB driver's Arrow interface needs this build tag everywhere.
export GOFLAGS := -tags=duckdb_arrow
GO ?= go

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test deps build bench clean

## demo: build the binary and run the whole pipeline on the embedded broker
demo: build
	./bin/stakhanov demo

## build: the one binary, at bin/stakhanov
build:
	$(GO) build -o bin/stakhanov ./cmd/stakhanov

## deps: what the tests need beyond Go: kcat (librdkafka) for client checks
deps:
	@command -v kcat >/dev/null || { echo "installing kcat"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq kcat >/dev/null; }

## test: vet, the whole suite, and the race detector on the pure-Go layers
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race ./shift/... ./processors/... ./ingest/... ./simulator/...

## bench: the pipeline against the consumer ceiling, 1M events, embedded broker
bench: build
	./bin/stakhanov bench --events 1000000

clean:
	rm -rf bin
