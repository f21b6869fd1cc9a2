#!/usr/bin/env bash
# smoke-test.sh — check a local-kafka.sh broker with kcat (librdkafka), a client
# that shares no code with the broker or with our Go code:
#   1. metadata answers and lists one broker;
#   2. a topic is auto-created on first produce, with num.partitions=8;
#   3. keyed messages produced are consumed back, in order, per key;
#   4. a consumer group (kcat -G) joins, reads everything, commits;
#   5. a compacted topic (made with `local-kafka.sh create-topic`) really
#      compacts: 20 rounds of 5 keys shrink to a handful of records.
#
# If KAFKA_BROKERS is set the broker there is used as is (steps 1–4 only,
# unless it was started by local-kafka.sh with the same KAFKA_PORT); otherwise
# the script runs `local-kafka.sh up` and `down` itself (same variables).
#
# Prints "N passed, N failed" as its last line; exits non-zero on any failure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE LK="$HERE/local-kafka.sh"

command -v kcat >/dev/null || { echo "smoke-test: kcat is needed (apt-get install kcat)" >&2; exit 1; }

if [[ -z ${KAFKA_BROKERS:-} ]]; then
    KAFKA_BROKERS=$("$LK" up)
    trap '"$LK" down' EXIT
fi
readonly B=$KAFKA_BROKERS
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   - $*"; }
nok() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() { # description, command...
    local d=$1
    shift
    if "$@"; then ok "$d"; else nok "$d"; fi
}

run_id="smoke-$$-$RANDOM"

# 1. metadata
check "metadata lists a broker at $B" bash -c "kcat -L -b '$B' -m 5 | grep -Eq '^ +broker [0-9]+ at '"

# 2+3. auto-create by producing, then read back
topic="$run_id-auto"
printf 'k1:one\nk2:two\nk1:three\n' | kcat -P -b "$B" -t "$topic" -K: -X topic.request.required.acks=all
got=$(kcat -C -b "$B" -t "$topic" -o beginning -e -q -f '%k=%s\n' | sort)
check "produce 3 / consume 3 on auto-created topic" test "$got" = $'k1=one\nk1=three\nk2=two'
parts=$(kcat -L -b "$B" -t "$topic" -m 5 | grep -c 'partition [0-9]*, leader' || true)
check "auto-created topic has 8 partitions (got $parts)" test "$parts" = 8
# Same key, same partition, order kept.
k1=$(kcat -C -b "$B" -t "$topic" -o beginning -e -q -f '%k %p %s\n' | awk '$1=="k1"')
check "key k1 stays on one partition, in order" bash -c "[[ \$(awk '{print \$2}' <<<'$k1' | sort -u | wc -l) == 1 && \$(awk '{print \$3}' <<<'$k1' | paste -sd,) == one,three ]]"

# 4. consumer group: join, read to end (-e), commit.
group="$run_id-group"
n=$(timeout 60 kcat -b "$B" -G "$group" -o beginning -e -q -f '%s\n' "$topic" 2>/dev/null | wc -l || true)
check "consumer group $group read 3 messages (got $n)" test "$n" = 3

# 5. compaction (needs the admin helper, i.e. a broker of local-kafka.sh).
ctopic="$run_id-compact"
if "$LK" create-topic "$ctopic" 1 cleanup.policy=compact segment.ms=100 \
    min.cleanable.dirty.ratio=0.01 min.compaction.lag.ms=0; then
    ok "create compacted topic $ctopic"
    for round in $(seq 1 20); do
        for k in a b c d e; do printf '%s:%s-%s\n' "$k" "$k" "$round"; done |
            kcat -P -b "$B" -t "$ctopic" -K: -X topic.request.required.acks=all
        sleep 0.15 # > segment.ms, so the next append rolls a new segment
    done
    count=100
    for _ in $(seq 1 60); do
        count=$(kcat -C -b "$B" -t "$ctopic" -o beginning -e -q -f '%k\n' | wc -l)
        ((count <= 15)) && break
        sleep 1
    done
    check "compaction shrank 100 records to $count (<= 15)" test "$count" -le 15
    latest=$(kcat -C -b "$B" -t "$ctopic" -o beginning -e -q -f '%k=%s\n' | awk -F= '{v[$1]=$2} END {print v["a"]}')
    check "latest value of key a survives compaction (got $latest)" test "$latest" = a-20
else
    nok "create compacted topic $ctopic (only works with a broker started by local-kafka.sh on this KAFKA_PORT)"
fi

echo "$passed passed, $failed failed"
((failed == 0))
