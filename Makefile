# The DuckDB driver's Arrow interface needs this build tag everywhere.
export GOFLAGS := -tags=duckdb_arrow
GO ?= go

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test deps build bench fuzz clean

## demo: build the binary and run the whole pipeline on the embedded broker
demo: build
	./bin/stakhanov demo

## build: the one binary, at bin/stakhanov
build:
	$(GO) build -o bin/stakhanov ./cmd/stakhanov

## deps: what the tests need beyond Go: kcat (librdkafka) for client checks,
## a JDK and Maven for the real Apache Kafka the integration pass runs on
deps:
	@command -v kcat >/dev/null && command -v java >/dev/null && command -v mvn >/dev/null || { \
	  echo "installing kcat, a JDK and Maven"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq kcat openjdk-17-jdk-headless maven >/dev/null; }

# The Kafka-facing tests run twice: on the embedded broker, and on a real
# single-node Apache Kafka (deploy/kafka/local-kafka.sh, jars from Maven
# Central, cached outside the repository) on a port of its own.
KAFKA_TEST_PORT ?= 19092

## test: vet, the whole suite, the race detector on the pure-Go layers, and
## the Kafka-facing tests again against real Apache Kafka
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race ./shift/... ./processors/... ./ingest/... ./simulator/...
	$(MAKE) --no-print-directory fuzz
	@set -e; export KAFKA_PORT=$(KAFKA_TEST_PORT); \
	trap 'deploy/kafka/local-kafka.sh down >/dev/null 2>&1 || true' EXIT; \
	brokers=$$(deploy/kafka/local-kafka.sh up); \
	echo "== against Apache Kafka $${KAFKA_VERSION:-(pinned)} at $$brokers"; \
	KAFKA_BROKERS=$$brokers $(GO) test -count=1 ./ingest/... ./app/...

## fuzz: each fuzz target for FUZZTIME (seed corpora are in the code and
## under testdata/fuzz; findings are written there too)
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./shift
	$(GO) test -run '^$$' -fuzz '^FuzzProcess$$' -fuzztime $(FUZZTIME) ./processors
	$(GO) test -run '^$$' -fuzz '^FuzzLoadSnapshot$$' -fuzztime $(FUZZTIME) ./processors
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeResults$$' -fuzztime $(FUZZTIME) ./ingest

## bench: the pipeline against the consumer ceiling, 1M events, embedded broker
bench: build
	./bin/stakhanov bench --events 1000000

clean:
	rm -rf bin
