# The DuckDB driver's Arrow interface needs this build tag everywhere.
export GOFLAGS := -tags=duckdb_arrow
GO ?= go

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test deps build bench fuzz clean notebooks notebooks-html deploy-test mutate flight-jdbc-driver

## demo: build the binary and run the whole pipeline on the embedded broker
demo: build
	./bin/stakhanov demo

## build: the one binary, at bin/stakhanov
build:
	$(GO) build -o bin/stakhanov ./cmd/stakhanov

## deps: what the tests need beyond Go: kcat (librdkafka) for client checks,
## a JDK and Maven for the real Apache Kafka the integration pass runs on,
## curl for the query endpoint's checks with a token and TLS
deps:
	@command -v kcat >/dev/null && command -v java >/dev/null && command -v mvn >/dev/null && command -v curl >/dev/null || { \
	  echo "installing kcat, a JDK, Maven and curl"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq kcat openjdk-17-jdk-headless maven curl >/dev/null; }

# The Kafka-facing tests run twice: on the embedded broker, and on a real
# single-node Apache Kafka (deploy/kafka/local-kafka.sh, jars from Maven
# Central, cached outside the repository) on ports of its own: free ones the
# OS picks (auto), or KAFKA_TEST_PORT and the one after it for its controller.
KAFKA_TEST_PORT ?= auto

# The analysts' notebooks run in a virtualenv cached outside the repository,
# one per version of notebooks/requirements.txt (exact pins).
PYTHON ?= python3
NB_VENV := $(HOME)/.cache/stakhanov/venv-$(shell sha256sum notebooks/requirements.txt | cut -c1-12)
NB_PYTHON := $(NB_VENV)/bin/python
NB_HTML ?= build/notebooks

$(NB_VENV)/.ok:
	@echo "creating $(NB_VENV)"
	@rm -rf $(NB_VENV)
	@$(PYTHON) -m venv $(NB_VENV) 2>/dev/null || { \
	  echo "installing python3-venv"; rm -rf $(NB_VENV); \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv >/dev/null; \
	  $(PYTHON) -m venv $(NB_VENV); }
	$(NB_PYTHON) -m pip install -q --disable-pip-version-check -r notebooks/requirements.txt
	@touch $@

# The Apache Arrow Flight SQL JDBC driver (one shaded jar, what DBeaver,
# Superset and Tableau load) for the JDBC check of the Flight SQL server
# (flightsql's TestJDBC): fetched from Maven Central once, into a cache
# outside the repository.
STAKHANOV_CACHE ?= $(HOME)/.cache/stakhanov
FLIGHT_JDBC_VERSION := 18.3.0
FLIGHT_JDBC_DIR := $(STAKHANOV_CACHE)/flight-sql-jdbc-$(FLIGHT_JDBC_VERSION)
FLIGHT_JDBC_JAR := $(FLIGHT_JDBC_DIR)/flight-sql-jdbc-driver-$(FLIGHT_JDBC_VERSION).jar
$(FLIGHT_JDBC_JAR):
	@echo "fetching the Flight SQL JDBC driver $(FLIGHT_JDBC_VERSION) into $(FLIGHT_JDBC_DIR)"
	@rm -rf $(FLIGHT_JDBC_DIR).tmp
	mvn -B -q -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
	  -Dartifact=org.apache.arrow:flight-sql-jdbc-driver:$(FLIGHT_JDBC_VERSION) -DoutputDirectory=$(FLIGHT_JDBC_DIR).tmp
	@rm -rf $(FLIGHT_JDBC_DIR) && mv $(FLIGHT_JDBC_DIR).tmp $(FLIGHT_JDBC_DIR)

## flight-jdbc-driver: fetch the Flight SQL JDBC driver into the cache
flight-jdbc-driver: $(FLIGHT_JDBC_JAR)

## test: vet, the whole suite, the race detector on the pure-Go layers, the
## Kafka-facing tests again against real Apache Kafka (TLS and SASL
## included), the deployment files, and the notebooks; the Flight SQL
## server is read by Python's ADBC driver and the JDBC driver in the suite
test: export STAKHANOV_PYTHON ?= $(NB_PYTHON)
test: export STAKHANOV_FLIGHT_JDBC_JAR ?= $(FLIGHT_JDBC_JAR)
test: deps $(NB_VENV)/.ok $(FLIGHT_JDBC_JAR)
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race ./shift/... ./processors/... ./ingest/... ./simulator/... ./access/...
	$(MAKE) --no-print-directory fuzz
	@set -e; export KAFKA_PORT=$(KAFKA_TEST_PORT) KAFKA_STATE_DIR=$$(mktemp -d); \
	trap 'rc=$$?; deploy/kafka/local-kafka.sh down >/dev/null 2>&1 || true; \
	  if [ $$rc = 0 ]; then rm -rf "$$KAFKA_STATE_DIR" "$$KAFKA_STATE_DIR.lock"; \
	  else echo "the logs of Apache Kafka: $$KAFKA_STATE_DIR/logs"; fi' EXIT; \
	brokers=$$(deploy/kafka/local-kafka.sh up); \
	echo "== against Apache Kafka $${KAFKA_VERSION:-(pinned)} at $$brokers"; \
	KAFKA_BROKERS=$$brokers $(GO) test -count=1 ./ingest/... ./app/...
	$(MAKE) --no-print-directory deploy-test
	$(MAKE) --no-print-directory notebooks

## deploy-test: the Dockerfile, Compose file, Kubernetes manifests, example
## configuration and Grafana dashboard decoded strictly and checked against
## the binary (a module of its own, so the pipeline does not depend on
## Kubernetes' packages)
deploy-test:
	cd deploy/manifests && $(GO) test -count=1 ./...

## fuzz: each fuzz target for FUZZTIME (seed corpora are in the code and
## under testdata/fuzz; findings are written there too)
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./shift
	$(GO) test -run '^$$' -fuzz '^FuzzProcess$$' -fuzztime $(FUZZTIME) ./processors
	$(GO) test -run '^$$' -fuzz '^FuzzLoadSnapshot$$' -fuzztime $(FUZZTIME) ./processors
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeResults$$' -fuzztime $(FUZZTIME) ./ingest

## mutate: mutation testing of the rules (processors/) and the decoder
## (shift/) with gremlins, installed into the cache on first use. Fails when
## a mutant lives that TESTING.md does not list as equivalent, or when less
## than 90 % of processors/' mutants (95 % of shift/'s) are killed. About 10 minutes on 2
## cores: run it before every change to the rules (TESTING.md).
GREMLINS_VERSION := v0.6.0
GREMLINS := $(STAKHANOV_CACHE)/gremlins-$(GREMLINS_VERSION)/gremlins
$(GREMLINS):
	GOBIN=$(dir $@) GOFLAGS= $(GO) install github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)
mutate: $(GREMLINS)
	@mkdir -p build
	$(GREMLINS) unleash --silent --tags duckdb_arrow --coverpkg ./processors/... -o build/mutants-processors.json ./processors
	$(GO) run ./internal/mutants -report build/mutants-processors.json -dir processors -min-efficacy 90
	$(GREMLINS) unleash --silent --tags duckdb_arrow --coverpkg ./shift/... -o build/mutants-shift.json ./shift
	$(GO) run ./internal/mutants -report build/mutants-shift.json -dir shift -min-efficacy 95

## notebooks: every notebook under notebooks/ run top to bottom, assertions
## and all, against a fresh demo database (in a temporary directory)
notebooks: build $(NB_VENV)/.ok
	$(NB_PYTHON) notebooks/run_notebooks.py --check-clean
	@set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	./bin/stakhanov demo --duckdb $$dir/demo.duckdb >$$dir/demo.log 2>&1 || { cat $$dir/demo.log; exit 1; }; \
	$(NB_PYTHON) notebooks/run_notebooks.py --db $$dir/demo.duckdb $(NB_FLAGS)

## notebooks-html: the same, and each executed notebook rendered to NB_HTML
notebooks-html:
	@$(MAKE) --no-print-directory notebooks NB_FLAGS='--html $(NB_HTML)'
	@echo "HTML in $(NB_HTML)/"

## bench: the pipeline against the consumer ceiling, 1M events, embedded broker
bench: build
	./bin/stakhanov bench --events 1000000

clean:
	rm -rf bin build
