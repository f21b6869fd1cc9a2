#!/usr/bin/env bash
# run.sh — the Kafka Streams peer and Stakhanov's pipeline on one filled topic
# of a real Apache Kafka, events/s side by side.
#
#   bench/kafka-streams/run.sh [EVENTS]          # default 1 000 000
#
# 1. builds the peer (mvn -q -B package), and bin/stakhanov when missing;
# 2. starts Apache Kafka (deploy/kafka/local-kafka.sh up on KAFKA_PORT, free ports
#    from the OS by default), or uses KAFKA_BROKERS when set;
# 3. fills a fresh 8-partition topic with EVENTS simulated events
#    (bin/stakhanov simulate --events EVENTS);
# 4. runs the peer on it from the beginning until every input offset is
#    processed and committed: events / (first record → last offset committed);
# 5. runs `bin/stakhanov bench --brokers B --input TOPIC --json` on the same topic
#    (a bench without --input fills its own topic with the same simulated
#    stream: the same simulator, size and seed);
# 6. with CHECK=1, compares results: the peer's output and alerts topics against
#    a `stakhanov run` of the same topic into DuckDB (per event: norm, window
#    size, late; the record alerts by id);
# 7. stops the broker it started.
#
# Variables (all optional):
#   EVENTS            simulated events                                   (1000000)
#   KAFKA_PORT        port of the broker started here (and the next for its
#                     controller); auto: free ports from the OS               (auto)
#   KAFKA_BROKERS     use this broker instead of starting one
#   STREAMS_THREADS   the peer's num.stream.threads                            (2)
#   GUARANTEE         the peer's processing.guarantee        (exactly_once_v2; or at_least_once)
#   PEER_JAVA_OPTS    the peer's JVM options                   (-Xms1g -Xmx2g)
#   OURS              0: skip Stakhanov's bench (the peer alone)              (1)
#   CHECK             1: also compare the peer's results with Stakhanov's    (0)
#   KEEP              1: keep the work directory (logs, CSV, DuckDB file)    (0)
#   REBUILD           1: rebuild bin/stakhanov even when it exists            (0)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
EVENTS=${1:-${EVENTS:-1000000}}
KAFKA_PORT=${KAFKA_PORT:-auto}
STREAMS_THREADS=${STREAMS_THREADS:-2}
GUARANTEE=${GUARANTEE:-exactly_once_v2}
PEER_JAVA_OPTS=${PEER_JAVA_OPTS:--Xms1g -Xmx2g}
OURS=${OURS:-1}
CHECK=${CHECK:-0}
KEEP=${KEEP:-0}
REBUILD=${REBUILD:-0}
[[ $EVENTS =~ ^[0-9]+$ && $EVENTS -gt 0 ]] || { echo "run.sh: EVENTS must be a positive number" >&2; exit 64; }

STAKHANOV=$ROOT/bin/stakhanov
JAR=$HERE/target/stakhanov-kafka-streams.jar
WORK=$(mktemp -d "${TMPDIR:-/tmp}/stakhanov-ks-bench.XXXXXX")
# the broker started here keeps its state (and, with KAFKA_PORT=auto, its ports) in WORK
KAFKA_STATE_DIR=$WORK/kafka
RUN=$(date +%s)
TOPIC=ks-bench-$RUN
STARTED_BROKER=0
SAME_TOPIC=0
BG_PID=

log() { printf 'run.sh: %s\n' "$*" >&2; }

cleanup() {
    local rc=$?
    if [[ -n $BG_PID ]] && kill -0 "$BG_PID" 2>/dev/null; then
        kill -TERM "$BG_PID" 2>/dev/null || true
        wait "$BG_PID" 2>/dev/null || true
    fi
    if ((STARTED_BROKER)); then
        KAFKA_PORT=$KAFKA_PORT KAFKA_STATE_DIR=$KAFKA_STATE_DIR "$ROOT/deploy/kafka/local-kafka.sh" down 2>/dev/null || true
    fi
    if ((rc != 0 || KEEP)); then
        log "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# show a log on failure
fail() {
    log "error: $1"
    [[ -n ${2:-} && -f $2 ]] && tail -n 30 "$2" >&2
    exit 1
}

# the number after "key": in a one-line JSON object
json_num() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" "$2"; }

# ------------------------------------------------------------------ build
log "building the peer (mvn package)"
(cd "$HERE" && mvn -q -B -Dstyle.color=never package) >"$WORK/mvn.log" 2>&1 || fail "mvn package failed" "$WORK/mvn.log"

if [[ ! -x $STAKHANOV || $REBUILD == 1 ]]; then
    log "building bin/stakhanov"
    (cd "$ROOT" && GOFLAGS=-tags=duckdb_arrow go build -o bin/stakhanov ./cmd/stakhanov) >"$WORK/go-build.log" 2>&1 ||
        fail "go build failed" "$WORK/go-build.log"
elif [[ -n $(find "$ROOT" -path "$ROOT/bench" -prune -o \( -name '*.go' -o -name go.mod \) -newer "$STAKHANOV" -print -quit) ]]; then
    log "note: bin/stakhanov is older than the Go sources (REBUILD=1 rebuilds it)"
fi

# ------------------------------------------------------------------ broker
if [[ -n ${KAFKA_BROKERS:-} ]]; then
    B=$KAFKA_BROKERS
    log "using the broker at $B"
else
    mkdir -p "$KAFKA_STATE_DIR"
    B=$(KAFKA_PORT=$KAFKA_PORT KAFKA_STATE_DIR=$KAFKA_STATE_DIR "$ROOT/deploy/kafka/local-kafka.sh" up 2>"$WORK/kafka-up.log") ||
        fail "the broker did not start" "$WORK/kafka-up.log"
    STARTED_BROKER=1
    log "Apache Kafka $(cat "$KAFKA_STATE_DIR/.stakhanov-local-kafka" 2>/dev/null || echo '?') at $B"
fi

# ------------------------------------------------------------------ input
log "filling $TOPIC (8 partitions) with ~$EVENTS simulated events"
"$STAKHANOV" simulate --brokers "$B" --topic "$TOPIC" --partitions 8 --events "$EVENTS" >"$WORK/simulate.log" 2>&1 ||
    fail "simulate failed" "$WORK/simulate.log"
log "$(tail -n 1 "$WORK/simulate.log")"

# ------------------------------------------------------------------ the peer
log "kafka-streams: $GUARANTEE, $STREAMS_THREADS stream thread(s)"
# shellcheck disable=SC2086 # PEER_JAVA_OPTS is a list of JVM flags
java $PEER_JAVA_OPTS -jar "$JAR" run --brokers "$B" --input "$TOPIC" --app-id "ks-peer-$RUN" \
    --threads "$STREAMS_THREADS" --guarantee "$GUARANTEE" --state-dir "$WORK/streams-state" \
    >"$WORK/peer.json" 2> >(tee "$WORK/peer.log" | grep -v -e '^\[' -e '^[0-9:. ]*\[' >&2) ||
    fail "the peer failed" "$WORK/peer.log"
PEER_EVENTS=$(json_num events "$WORK/peer.json")
PEER_EPS=$(json_num events_per_s "$WORK/peer.json")
PEER_SECS=$(json_num seconds "$WORK/peer.json")
[[ -n $PEER_EPS ]] || fail "no result from the peer" "$WORK/peer.log"

# ------------------------------------------------------------------ ours
if ((!OURS)); then
    :
else
    help=$("$STAKHANOV" bench --help 2>&1 || true)
    args=(--brokers "$B" --json)
    if [[ $help == *-input* ]]; then
        OURS_NOTE="same topic" SAME_TOPIC=1
        args+=(--input "$TOPIC")
        log "stakhanov bench on $TOPIC"
    else
        OURS_NOTE="own topic: this bench has no --input; the same simulated stream"
        args+=(--events "$EVENTS")
        log "stakhanov bench (no --input in this build: it fills its own topic with the same $EVENTS-event simulation)"
    fi
    # only its throughput is compared here: keep a latency phase, if it has one, short
    [[ $help == *-latency-duration* ]] && args+=(--latency-duration 1s)
    if ! "$STAKHANOV" bench "${args[@]}" >"$WORK/ours.json" 2>"$WORK/ours.log"; then
        # a later phase failed: the pipeline phase's figure is still in its progress log
        phase() { sed -n "/^$1:/,/events\/s\$/{s/^  \([0-9]*\) events\/s\$/\1/p}" "$WORK/ours.log" | head -n 1; }
        eps=$(phase pipeline) ceil=$(phase ceiling)
        [[ -n $eps ]] || fail "stakhanov bench failed" "$WORK/ours.log"
        log "warning: stakhanov bench failed after its pipeline phase ($(tail -n 1 "$WORK/ours.log")); using that phase's figure"
        printf '{"pipeline_events_per_s":%s,"ceiling_events_per_s":%s}\n' "$eps" "${ceil:-0}" >"$WORK/ours.json"
        OURS_NOTE+="; bench failed after the pipeline phase"
        KEEP=1
    fi
fi

if ((OURS)); then
    OURS_EVENTS=$(json_num events "$WORK/ours.json")
    # a bench on --input reports no event count in its JSON: the topic's
    [[ -n $OURS_EVENTS || $SAME_TOPIC == 0 ]] || OURS_EVENTS=$PEER_EVENTS
    OURS_EPS=$(json_num pipeline_events_per_s "$WORK/ours.json")
    OURS_CEIL=$(json_num ceiling_events_per_s "$WORK/ours.json")
    [[ -n $OURS_EPS ]] || fail "no result from stakhanov bench" "$WORK/ours.log"
fi

# ------------------------------------------------------------------ check
if ((CHECK)); then
    log "check: dumping the peer's output and alerts"
    java -Xmx1g -jar "$JAR" dump --brokers "$B" --topic "$TOPIC-peer-out" --out "$WORK/peer-shifts.csv" \
        --fields event_id,norm_rate,norm_count,ratio,late,flag 2>>"$WORK/dump.log" || fail "dump failed" "$WORK/dump.log"
    java -Xmx1g -jar "$JAR" dump --brokers "$B" --topic "$TOPIC-peer-alerts" --out "$WORK/peer-alerts.csv" \
        --fields alert_id,type,event_id 2>>"$WORK/dump.log" || fail "dump failed" "$WORK/dump.log"
    expect=$(($(wc -l <"$WORK/peer-shifts.csv") - 1))
    log "check: stakhanov run on $TOPIC into DuckDB (until it holds $expect shifts, or stops growing)"
    DB=$WORK/ours.duckdb
    "$STAKHANOV" run --brokers "$B" --input "$TOPIC" --group "ks-check-$RUN" --alerts "$TOPIC-check-alerts" \
        --dlq "$TOPIC-check-dlq" --duckdb "$DB" --report-every 0 >"$WORK/ours-run.log" 2>&1 &
    BG_PID=$!
    last=-1 same=0 deadline=$((SECONDS + 900))
    while ((SECONDS < deadline)); do
        sleep 2
        kill -0 "$BG_PID" 2>/dev/null || fail "stakhanov run stopped" "$WORK/ours-run.log"
        n=$("$STAKHANOV" query --duckdb "$DB" --format csv "SELECT count(*) FROM shifts" 2>/dev/null | tail -n 1) || n=-1
        [[ $n =~ ^[0-9]+$ ]] || n=-1
        ((n == expect)) && break
        if ((n == last && n > 0)); then ((++same >= 5)) && break; else same=0; fi
        last=$n
    done
    sleep 1
    kill -TERM "$BG_PID"
    wait "$BG_PID" || true
    BG_PID=
    q() { "$STAKHANOV" query --duckdb "$DB" --format csv "$1" | tail -n +2; }
    P="read_csv('$WORK/peer-shifts.csv', header=true, columns={'event_id':'VARCHAR','norm_rate':'DOUBLE','norm_count':'BIGINT','ratio':'DOUBLE','late':'BOOLEAN','flag':'VARCHAR'})"
    A="read_csv('$WORK/peer-alerts.csv', header=true, columns={'alert_id':'VARCHAR','type':'VARCHAR','event_id':'VARCHAR'})"
    CHECK_SHIFTS=$(q "WITH p AS (SELECT * FROM $P), s AS (SELECT event_id, norm_rate, norm_count, late FROM shifts)
        SELECT (SELECT count(*) FROM s) AS ours, (SELECT count(*) FROM p) AS peer,
          count(*) FILTER (WHERE s.event_id IS NOT NULL AND p.event_id IS NOT NULL) AS both,
          count(*) FILTER (WHERE (s.norm_rate IS NULL AND p.norm_rate IS NULL)
                              OR abs(s.norm_rate - p.norm_rate) <= 1e-9 * greatest(abs(s.norm_rate), 1e-300)) AS norm_equal,
          count(*) FILTER (WHERE coalesce(s.norm_count, 0) = p.norm_count) AS count_equal, -- ours: NULL without history
          count(*) FILTER (WHERE s.late = p.late) AS late_equal
        FROM s FULL JOIN p USING (event_id)")
    CHECK_ALERTS=$(q "WITH p AS (SELECT * FROM $A), s AS (SELECT alert_id, type FROM alerts WHERE type IN ('record_shift','suspect_record'))
        SELECT type, count(s.alert_id) AS ours, count(p.alert_id) AS peer,
          count(*) FILTER (WHERE s.alert_id IS NOT NULL AND p.alert_id IS NOT NULL) AS same_id
        FROM s FULL JOIN p USING (alert_id, type) GROUP BY type ORDER BY type")
fi

# ------------------------------------------------------------------ report
BROKER_DESC="Apache Kafka at $B"
((STARTED_BROKER)) && BROKER_DESC="Apache Kafka $(cat "$KAFKA_STATE_DIR/.stakhanov-local-kafka" 2>/dev/null) (local-kafka.sh, $B)"
echo
echo "broker: $BROKER_DESC; input $TOPIC, 8 partitions"
printf 'kafka-streams 3.9.2 (%s, %s threads, RocksDB): %9.0f events/s  (%s events in %s s, first record to last committed)\n' \
    "$GUARANTEE" "$STREAMS_THREADS" "$PEER_EPS" "$PEER_EVENTS" "$PEER_SECS"
if ((OURS)); then
    printf 'stakhanov (into DuckDB, exactly once):       %9.0f events/s  (%s events, %s; ceiling %.0f events/s)\n' \
        "$OURS_EPS" "${OURS_EVENTS:-?}" "$OURS_NOTE" "${OURS_CEIL:-0}"
    awk -v a="$OURS_EPS" -v b="$PEER_EPS" 'BEGIN { printf "comparison: stakhanov / kafka-streams = %.2f\n", a / b }'
fi
if ((CHECK)); then
    echo "check, shifts (ours,peer,both,norm_equal,count_equal,late_equal): $CHECK_SHIFTS"
    echo "check, record alerts (type,ours,peer,same_id):"
    printf '  %s\n' $CHECK_ALERTS
    echo "peer counts: $(sed -e 's/[{}"]//g' "$WORK/peer.json" | tr ',' ' ' | cut -d' ' -f6-12)"
fi
