# The DuckDB driver's Arrow interface needs this build tag everywhere.
export GOFLAGS := -tags=duckdb_arrow
GO ?= go

.PHONY: demo test build bench fuzz clean

## demo: build the binary and run the whole pipeline on the embedded broker
demo: build
	./bin/stakhanov demo

## build: the one binary, at bin/stakhanov
build:
	$(GO) build -o bin/stakhanov ./cmd/stakhanov

## test: vet, the whole suite, and the race detector on the pure-Go layers
test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race ./shift/... ./processors/... ./ingest/... ./simulator/...

## bench: the pipeline against the consumer ceiling, 1M events, embedded broker
bench: build
	./bin/stakhanov bench --events 1000000

clean:
	rm -rf bin
