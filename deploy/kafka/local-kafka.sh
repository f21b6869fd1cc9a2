#!/usr/bin/env bash
# local-kafka.sh — a throw-away, single-node Apache Kafka (KRaft, broker and
# controller in one JVM) on the loopback interface, for tests and local runs.
#
#   KAFKA_BROKERS=$(deploy/kafka/local-kafka.sh up)          # prints 127.0.0.1:PORT
#   export KAFKA_BROKERS      # (not `export X=$(...)`: that hides a failed `up` from set -e)
#   deploy/kafka/local-kafka.sh status                       # exit 0 if the broker answers
#   deploy/kafka/local-kafka.sh logs [-f]                    # tail the server log
#   deploy/kafka/local-kafka.sh down                         # stop it, drop its data
#   deploy/kafka/local-kafka.sh stop                         # stop it, keep its data
#   deploy/kafka/local-kafka.sh start                        # start it again on that data
#   deploy/kafka/local-kafka.sh ports                        # its ports, as KAFKA_PORT=… lines
#   deploy/kafka/local-kafka.sh create-topic NAME PARTITIONS [key=value ...]
#                                    # e.g. cleanup.policy=compact segment.ms=100
#   deploy/kafka/local-kafka.sh fetch                        # only fill the jar cache
#
# Free ports from the OS, for tests and runs side by side (python3 asks the OS):
#
#   export KAFKA_PORT=auto KAFKA_STATE_DIR=$(mktemp -d)
#   KAFKA_BROKERS=$(deploy/kafka/local-kafka.sh up)          # 127.0.0.1:<a free port>
#   deploy/kafka/local-kafka.sh down                         # finds its ports in KAFKA_STATE_DIR
#
# No tarball and no Docker: the broker's jars come from Maven Central through
# `mvn dependency:copy-dependencies` on a generated pom, once, into a cache
# outside the repository; later runs use that cache without any network.
#
# stdout carries exactly one line on `up`/`start`/`status` success (the bootstrap
# address); every other message goes to stderr.
#
# Variables (all optional):
#   KAFKA_VERSION          Apache Kafka release from Maven Central (3.9.2; 4.x works too)
#   KAFKA_PORT             client (PLAINTEXT) port on 127.0.0.1                 (9092)
#                          auto (or 0): `up` takes a free port from the OS (and a free
#                          controller port, unless KAFKA_CONTROLLER_PORT says otherwise)
#                          and prints the address it took; the other commands read the
#                          ports from KAFKA_STATE_DIR, which must then be set (or pass
#                          the port `up` printed as KAFKA_PORT)
#   KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1   (KAFKA_PORT+1; with auto, auto)
#   KAFKA_QUORUM           static  = controller.quorum.voters (default, any KRaft version)
#                          dynamic = controller.quorum.bootstrap.servers + format --standalone
#                                    (KIP-853; Kafka >= 3.9)
#   STAKHANOV_CACHE        jar cache root                      ($HOME/.cache/stakhanov)
#   KAFKA_STATE_DIR        data, logs, pid, configs   (${TMPDIR:-/tmp}/stakhanov-kafka-PORT)
#   KAFKA_HEAP_OPTS        JVM heap                                 (-Xms256m -Xmx768m)
#   KAFKA_START_TIMEOUT    seconds `up`/`start` wait for a metadata answer            (90)
#   KAFKA_STOP_TIMEOUT     seconds `down`/`stop` wait after SIGTERM before SIGKILL    (30)
#   KAFKA_PROBE            kcat | java — how readiness is checked (kcat if installed)
#   MVN                    the Maven command                                         (mvn)
#   KAFKA_LOG4J2_VERSION   log4j2 for Kafka 4.0.x, whose pom names none           (2.24.3)
#
# TLS and SASL (optional; all read by `up`, which writes them into the state dir,
# so a later `start` brings back the same listener and users):
#   KAFKA_SASL_SSL_PORT    when set, the broker also listens on 127.0.0.1:PORT with
#                          SASL_SSL (mechanisms PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
#                          The PLAINTEXT listener stays (controller link, admin,
#                          readiness probe) and `up` still prints its address.
#                          auto (or 0): a free port from the OS (`ports` names it).
#   KAFKA_SSL_CERT         PEM file: the server certificate, then any intermediates
#                          (required with KAFKA_SASL_SSL_PORT)
#   KAFKA_SSL_KEY          PEM file: its private key, unencrypted PKCS#8
#                          ("BEGIN PRIVATE KEY"; convert others with
#                          `openssl pkcs8 -topk8 -nocrypt`) (required with the port)
#   KAFKA_PLAIN_USERS      PLAIN users, "alice:alice-secret,bob:bob-secret"       (none)
#   KAFKA_SCRAM_USERS      SCRAM users in the same form, each given SCRAM-SHA-256 and
#                          SCRAM-SHA-512 credentials when the storage is formatted (none)
#   User names: letters, digits, '.', '_', '-'. Passwords: no ',', '"', '\',
#   spaces or control characters. Test credentials only: they are written in
#   clear into the state dir (mode 600) and passed on the storage tool's command line.
#   KAFKA_SSL_CLIENT_CA    PEM file of the authorities whose client certificates the
#                          SASL_SSL listener requires (mutual TLS, ssl.client.auth=
#                          required); unset, no client certificate is asked for (none)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly PROBE_SRC="$SCRIPT_DIR/KafkaProbe.java"

KAFKA_VERSION=${KAFKA_VERSION:-3.9.2}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-}
KAFKA_SASL_SSL_PORT=${KAFKA_SASL_SSL_PORT:-}

log() { printf 'local-kafka: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- ports

is_auto() { [[ $1 == auto || $1 == 0 ]]; }

# free_ports N: N distinct TCP ports of 127.0.0.1 that the OS reports free: it
# picks each for a socket bound to port 0, and all are held until the last is
# picked. (Another process may still take one before the broker binds it; `up`
# then fails on the port in use, naming it.)
free_ports() {
    command -v python3 >/dev/null || die "free ports (KAFKA_PORT=auto) are asked of the OS through python3, which is not installed; install it or set the ports"
    python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

# state_port LISTENER: the port of PLAINTEXT, CONTROLLER or SASL_SSL in the
# server.properties of KAFKA_STATE_DIR, if any.
state_port() {
    sed -n "s|^listeners=\(.*[=,]\)\{0,1\}$1://127\.0\.0\.1:\([0-9][0-9]*\).*|\2|p" \
        "$KAFKA_STATE_DIR/server.properties" 2>/dev/null | head -n 1
}

# Ports given as auto: `up` takes free ones (or, when a broker of this state
# dir is running, its own); every other command reads them from the state dir.
if is_auto "$KAFKA_PORT" || is_auto "$KAFKA_CONTROLLER_PORT" || is_auto "$KAFKA_SASL_SSL_PORT"; then
    if is_auto "$KAFKA_PORT" && [[ -z $KAFKA_CONTROLLER_PORT ]]; then
        KAFKA_CONTROLLER_PORT=auto
    fi
    from_state=0
    case ${1:-} in
        fetch | help | -h | --help | "") # no port involved
            is_auto "$KAFKA_PORT" && KAFKA_PORT=9092
            is_auto "$KAFKA_CONTROLLER_PORT" && KAFKA_CONTROLLER_PORT=
            is_auto "$KAFKA_SASL_SSL_PORT" && KAFKA_SASL_SSL_PORT=
            ;;
        up)
            if [[ -n ${KAFKA_STATE_DIR:-} && -s $KAFKA_STATE_DIR/kafka.pid ]] &&
                kill -0 "$(<"$KAFKA_STATE_DIR/kafka.pid")" 2>/dev/null; then
                from_state=1
            else
                read -r -a picked <<<"$(free_ports 3)"
                is_auto "$KAFKA_PORT" && KAFKA_PORT=${picked[0]}
                is_auto "$KAFKA_CONTROLLER_PORT" && KAFKA_CONTROLLER_PORT=${picked[1]}
                is_auto "$KAFKA_SASL_SSL_PORT" && KAFKA_SASL_SSL_PORT=${picked[2]}
            fi
            ;;
        *) from_state=1 ;;
    esac
    if ((from_state)); then
        [[ -n ${KAFKA_STATE_DIR:-} ]] ||
            die "KAFKA_PORT=auto: set KAFKA_STATE_DIR to the state dir \`up\` used (the ports are read from there), or set KAFKA_PORT to the port \`up\` printed"
        if [[ ! -f $KAFKA_STATE_DIR/server.properties ]]; then
            [[ ${1:-} == down || ${1:-} == stop ]] && { log "nothing to stop (no broker state in $KAFKA_STATE_DIR)"; exit 0; }
            die "no broker state in $KAFKA_STATE_DIR to read the ports from (run up first)"
        fi
        is_auto "$KAFKA_PORT" && KAFKA_PORT=$(state_port PLAINTEXT)
        is_auto "$KAFKA_CONTROLLER_PORT" && KAFKA_CONTROLLER_PORT=$(state_port CONTROLLER)
        is_auto "$KAFKA_SASL_SSL_PORT" && KAFKA_SASL_SSL_PORT=$(state_port SASL_SSL)
    fi
fi
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
KAFKA_QUORUM=${KAFKA_QUORUM:-static}
STAKHANOV_CACHE=${STAKHANOV_CACHE:-${HOME:-/tmp}/.cache/stakhanov}
KAFKA_STATE_DIR=${KAFKA_STATE_DIR:-${TMPDIR:-/tmp}/stakhanov-kafka-$KAFKA_PORT}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
MVN=${MVN:-mvn}
# log4j2 for Kafka 4.0.x, whose pom names no log4j (4.1+ brings its own version).
KAFKA_LOG4J2_VERSION=${KAFKA_LOG4J2_VERSION:-2.24.3}
KAFKA_SSL_CERT=${KAFKA_SSL_CERT:-}
KAFKA_SSL_KEY=${KAFKA_SSL_KEY:-}
KAFKA_SSL_CLIENT_CA=${KAFKA_SSL_CLIENT_CA:-}
KAFKA_PLAIN_USERS=${KAFKA_PLAIN_USERS:-}
KAFKA_SCRAM_USERS=${KAFKA_SCRAM_USERS:-}

# Pinned so the fetch behaves the same on every machine.
readonly DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

readonly ADDR="127.0.0.1:$KAFKA_PORT"
readonly VERSION_DIR="$STAKHANOV_CACHE/kafka-$KAFKA_VERSION"
readonly LIBS="$VERSION_DIR/libs"
readonly DATA_DIR="$KAFKA_STATE_DIR/data"
readonly LOG_DIR="$KAFKA_STATE_DIR/logs"
readonly PID_FILE="$KAFKA_STATE_DIR/kafka.pid"
readonly SERVER_PROPS="$KAFKA_STATE_DIR/server.properties"
readonly SERVER_LOG="$LOG_DIR/server.log"
# Certificate chain and key of the SASL_SSL listener, in the one file Kafka's
# file-based PEM key store reads.
readonly KEYSTORE_PEM="$KAFKA_STATE_DIR/keystore.pem"
# Authorities of the client certificates it requires (mutual TLS), if any.
readonly TRUSTSTORE_PEM="$KAFKA_STATE_DIR/truststore.pem"
# Marks a state dir as ours, so `up` and `down` never wipe a directory they did not make.
readonly MARKER="$KAFKA_STATE_DIR/.stakhanov-local-kafka"

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit "${1:-64}"
}

# ---------------------------------------------------------------- validation
# These values end up in a pom, a properties file and kill(1): refuse anything odd.
[[ $KAFKA_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "KAFKA_VERSION must look like 3.9.2, got '$KAFKA_VERSION'"
for p in KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_START_TIMEOUT KAFKA_STOP_TIMEOUT; do
    [[ ${!p} =~ ^[0-9]+$ ]] || die "$p must be a number, got '${!p}'"
done
((KAFKA_PORT > 0 && KAFKA_PORT < 65536 && KAFKA_CONTROLLER_PORT > 0 && KAFKA_CONTROLLER_PORT < 65536)) ||
    die "ports must be in 1..65535"
((KAFKA_PORT != KAFKA_CONTROLLER_PORT)) || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
[[ $KAFKA_LOG4J2_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "KAFKA_LOG4J2_VERSION must look like 2.24.3"
[[ $KAFKA_QUORUM == static || $KAFKA_QUORUM == dynamic ]] || die "KAFKA_QUORUM must be static or dynamic"
if [[ -n $KAFKA_SASL_SSL_PORT ]]; then
    [[ $KAFKA_SASL_SSL_PORT =~ ^[0-9]+$ ]] || die "KAFKA_SASL_SSL_PORT must be a number, got '$KAFKA_SASL_SSL_PORT'"
    ((KAFKA_SASL_SSL_PORT > 0 && KAFKA_SASL_SSL_PORT < 65536)) || die "KAFKA_SASL_SSL_PORT must be in 1..65535"
    ((KAFKA_SASL_SSL_PORT != KAFKA_PORT && KAFKA_SASL_SSL_PORT != KAFKA_CONTROLLER_PORT)) ||
        die "KAFKA_SASL_SSL_PORT must differ from KAFKA_PORT and KAFKA_CONTROLLER_PORT"
fi
readonly KAFKA_MAJOR=${KAFKA_VERSION%%.*}

# ------------------------------------------------------------------- helpers

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The pid of our broker, if the pid file names a live java running our config.
# Checking the command line guards against a recycled pid.
broker_pid() {
    local pid
    [[ -s $PID_FILE ]] || return 1
    pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"kafka.Kafka $SERVER_PROPS"* ]] || return 1
    printf '%s\n' "$pid"
}

# Run a JVM tool from the cached jars with logging sent to $LOG_DIR/$1.
# Both logging back-ends are configured; only the one on the classpath reads its file.
java_tool() {
    local logfile=$1 level=$2
    shift 2
    java -Xms32m -Xmx256m -XX:TieredStopAtLevel=1 \
        -Dkafka.logs.dir="$LOG_DIR" -Dstakhanov.log.file="$logfile" -Dstakhanov.log.level="$level" \
        -Dlog4j.configuration="file:$KAFKA_STATE_DIR/log4j.properties" \
        -Dlog4j2.configurationFile="$KAFKA_STATE_DIR/log4j2.properties" \
        -cp "$LIBS/*" "$@"
}

probe_method() {
    case ${KAFKA_PROBE:-} in
        kcat | java) printf '%s\n' "$KAFKA_PROBE" ;;
        "") if command -v kcat >/dev/null; then echo kcat; else echo java; fi ;;
        *) die "KAFKA_PROBE must be kcat or java" ;;
    esac
}

# One metadata request through kcat (librdkafka): succeeds only when the broker
# answers and lists at least one broker — a listening socket is not enough.
# (Output captured first: `kcat | grep -q` could die of SIGPIPE under pipefail.)
kcat_answers() {
    local md
    md=$(kcat -L -b "$ADDR" -m 3 2>/dev/null) || return 1
    [[ $md =~ $'\n'\ +broker\ [0-9]+\ at\  ]]
}

# Does a broker answer metadata requests on $ADDR right now?
broker_answers() {
    if [[ $(probe_method) == kcat ]]; then
        kcat_answers
    else
        [[ -f $LIBS/.complete && -d $LOG_DIR ]] || return 1
        java_tool probe.log warn "$PROBE_SRC" wait "$ADDR" 5
    fi
}

# Wait until the broker with pid $1 answers, dies, or $KAFKA_START_TIMEOUT passes.
# Returns 0 ready, 1 timeout, 2 died.
wait_ready() {
    local pid=$1 deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    if [[ $(probe_method) == java ]]; then
        # One JVM polls internally (starting a JVM per poll would be slow).
        local rc=0
        java_tool probe.log warn "$PROBE_SRC" wait "$ADDR" "$KAFKA_START_TIMEOUT" "$pid" || rc=$?
        return "$rc"
    fi
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 2
        kcat_answers && return 0
        sleep 0.5
    done
    return 1
}

# On failure: the first errors (the cause; the tail is often shutdown noise)
# and the last 50 lines of the server log and of the JVM's own stdout/stderr.
show_log_tail() {
    local f
    if grep -qE '\] (ERROR|FATAL) ' "$SERVER_LOG" 2>/dev/null; then
        log "first errors in $SERVER_LOG:"
        grep -m 5 -E '\] (ERROR|FATAL) ' "$SERVER_LOG" >&2
    fi
    for f in "$SERVER_LOG" "$LOG_DIR/stdout.log"; do
        if [[ -s $f ]]; then
            log "last 50 lines of $f:"
            tail -n 50 "$f" >&2
        fi
    done
}

# ------------------------------------------------------------- jar fetching

# Write a pom that depends on kafka_2.13 (and, when known, a logging binding).
write_pom() {
    local pom=$1 extra=${2:-}
    cat >"$pom" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by deploy/kafka/local-kafka.sh: the jars of Apache Kafka $KAFKA_VERSION. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.stakhanov</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
$extra  </dependencies>
</project>
EOF
}

# Copy the pom's runtime dependencies into $2. Maven's chatter goes to
# $VERSION_DIR/mvn.log (our stdout is for the address only) and is shown on failure.
mvn_copy() {
    local pom=$1 out=$2
    if ! "$MVN" -B -q -Dstyle.color=never -f "$pom" "$DEPENDENCY_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$out" >"$VERSION_DIR/mvn.log" 2>&1; then
        tail -n 40 "$VERSION_DIR/mvn.log" >&2
        return 1
    fi
}

dep_xml() { # groupId artifactId version
    printf '    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n' "$1" "$2" "$3"
}

# Fetch the broker jars into $LIBS unless a complete copy is already there.
# Two passes: first Kafka alone, then Kafka plus an slf4j binding whose version
# matches what Kafka itself brought (slf4j-api for reload4j, log4j-core for log4j2).
fetch_libs() {
    [[ -f $LIBS/.complete ]] && return 0
    command -v "$MVN" >/dev/null || die "Maven ($MVN) is needed once to fetch Kafka $KAFKA_VERSION"
    mkdir -p "$VERSION_DIR"
    # Another `up` (other port, same version) may be fetching: take turns.
    exec 8>"$VERSION_DIR/.fetch.lock"
    flock 8
    if [[ -f $LIBS/.complete ]]; then
        exec 8>&-
        return 0
    fi

    local started=$SECONDS tmp="$VERSION_DIR/libs.tmp" pom="$VERSION_DIR/pom.xml" jar ver extra
    log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $LIBS (once)"
    rm -rf "$tmp"
    write_pom "$pom"
    mvn_copy "$pom" "$tmp" || die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
    [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"

    if ((KAFKA_MAJOR >= 4)); then
        # Kafka 4.x logs through log4j2 (the 4.x tarball ships log4j-core and
        # log4j-slf4j-impl). 4.1+ names log4j-core among its dependencies: use that
        # version; 4.0.x names none, so take KAFKA_LOG4J2_VERSION.
        ver=$KAFKA_LOG4J2_VERSION
        jar=$(compgen -G "$tmp/log4j-core-*.jar" | head -n 1 || true)
        if [[ -n $jar ]]; then
            ver=${jar##*/log4j-core-}
            ver=${ver%.jar}
        fi
        # The binding must match Kafka's slf4j-api major (1.7.x today).
        if compgen -G "$tmp/slf4j-api-2.*.jar" >/dev/null; then
            extra=$(dep_xml org.apache.logging.log4j log4j-slf4j2-impl "$ver")
        else
            extra=$(dep_xml org.apache.logging.log4j log4j-slf4j-impl "$ver")
        fi
        extra+=$'\n'$(dep_xml org.apache.logging.log4j log4j-core "$ver")
    else
        # Kafka 3.x: slf4j-api only; bind it to reload4j (what the 3.x tarball ships).
        jar=$(compgen -G "$tmp/slf4j-api-*.jar" | head -n 1 || true)
        [[ -n $jar ]] || die "no slf4j-api jar among Kafka's dependencies"
        ver=${jar##*/slf4j-api-}
        ver=${ver%.jar}
        extra=$(dep_xml org.slf4j slf4j-reload4j "$ver")
    fi
    write_pom "$pom" "$extra"$'\n'
    mvn_copy "$pom" "$tmp" || die "mvn could not fetch the logging binding"

    (cd "$tmp" && ls -1 ./*.jar) >"$tmp/.complete"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    exec 8>&-
    log "fetched $(wc -l <"$LIBS/.complete") jars ($(du -sh "$LIBS" | cut -f1)) in $((SECONDS - started)) s"
}

# ----------------------------------------------------------- TLS and SASL

# These names and passwords end up in a JAAS option list, a properties file
# and the storage tool's "[name=...,password=...]" argument, each with its
# own quoting; refusing the characters they treat specially is simpler than
# escaping for all three.
readonly USER_NAME_RE='^[A-Za-z0-9._-]+$'
readonly PASSWORD_RE='^[^,"\\[:space:][:cntrl:]]+$'

# Print "name password" lines for the "name:password,..." list in variable $1.
parse_users() {
    local var=$1 entry name password
    local -a entries
    [[ -n ${!var} ]] || return 0
    IFS=, read -ra entries <<<"${!var}"
    for entry in "${entries[@]}"; do
        [[ $entry == *:* ]] || die "$var: '$entry' is not name:password"
        name=${entry%%:*}
        password=${entry#*:}
        [[ $name =~ $USER_NAME_RE ]] || die "$var: user name '$name' may hold only letters, digits, '.', '_' and '-'"
        [[ $password =~ $PASSWORD_RE ]] || die "$var: the password of $name is empty or holds ',', '\"', '\\', a space or a control character"
        printf '%s %s\n' "$name" "$password"
    done
}

# Refuse security settings that cannot work before anything is wiped or
# formatted, with the reason, rather than leave it to a broker that dies at
# start-up with a Java stack trace.
check_security() {
    if [[ -z $KAFKA_SASL_SSL_PORT ]]; then
        [[ -z $KAFKA_SSL_CERT$KAFKA_SSL_KEY$KAFKA_SSL_CLIENT_CA$KAFKA_PLAIN_USERS$KAFKA_SCRAM_USERS ]] ||
            die "KAFKA_SSL_CERT, KAFKA_SSL_KEY, KAFKA_SSL_CLIENT_CA, KAFKA_PLAIN_USERS and KAFKA_SCRAM_USERS need KAFKA_SASL_SSL_PORT"
        return 0
    fi
    [[ -n $KAFKA_SSL_CERT && -n $KAFKA_SSL_KEY ]] || die "KAFKA_SASL_SSL_PORT needs KAFKA_SSL_CERT and KAFKA_SSL_KEY"
    [[ -r $KAFKA_SSL_CERT ]] || die "KAFKA_SSL_CERT: cannot read $KAFKA_SSL_CERT"
    [[ -r $KAFKA_SSL_KEY ]] || die "KAFKA_SSL_KEY: cannot read $KAFKA_SSL_KEY"
    grep -q -- '-----BEGIN CERTIFICATE-----' "$KAFKA_SSL_CERT" ||
        die "KAFKA_SSL_CERT: no PEM certificate in $KAFKA_SSL_CERT"
    # Kafka reads the key as PKCS#8 ("PRIVATE KEY"); its PEM parser would also
    # match "EC PRIVATE KEY" or "ENCRYPTED PRIVATE KEY" and then fail to load it.
    grep -q -- '-----BEGIN PRIVATE KEY-----' "$KAFKA_SSL_KEY" ||
        die "KAFKA_SSL_KEY: $KAFKA_SSL_KEY is not an unencrypted PKCS#8 PEM key (BEGIN PRIVATE KEY); convert it with: openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8"
    if [[ -n $KAFKA_SSL_CLIENT_CA ]]; then
        [[ -r $KAFKA_SSL_CLIENT_CA ]] || die "KAFKA_SSL_CLIENT_CA: cannot read $KAFKA_SSL_CLIENT_CA"
        grep -q -- '-----BEGIN CERTIFICATE-----' "$KAFKA_SSL_CLIENT_CA" ||
            die "KAFKA_SSL_CLIENT_CA: no PEM certificate in $KAFKA_SSL_CLIENT_CA"
    fi
    parse_users KAFKA_PLAIN_USERS >/dev/null
    parse_users KAFKA_SCRAM_USERS >/dev/null
}

# The SASL_SSL port a state dir's server.properties listens on, if any (for
# `start`, which must not depend on the caller's environment).
configured_sasl_ssl_port() {
    sed -n 's|^listeners=.*SASL_SSL://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$SERVER_PROPS" 2>/dev/null | head -n 1
}

# The SASL_SSL part of server.properties. Everything is prefixed with the
# listener's name so that it applies to that listener only; the PLAINTEXT
# and CONTROLLER listeners stay as they are.
write_security_configs() {
    local name password plain_users=""
    while read -r name password; do
        plain_users+=" user_$name=\"$password\""
    done < <(parse_users KAFKA_PLAIN_USERS)

    # Mutual TLS: the client authorities in a PEM trust store of the state dir.
    local client_auth=none truststore=""
    if [[ -n $KAFKA_SSL_CLIENT_CA ]]; then
        cp "$KAFKA_SSL_CLIENT_CA" "$TRUSTSTORE_PEM"
        client_auth=required
        truststore=$'\n'"listener.name.sasl_ssl.ssl.truststore.type=PEM"$'\n'"listener.name.sasl_ssl.ssl.truststore.location=$TRUSTSTORE_PEM"
    fi

    # Kafka's file-based PEM key store wants the chain and the key in one file;
    # without ssl.key.password it reads the key as unencrypted PKCS#8.
    (
        umask 077
        cat "$KAFKA_SSL_CERT" >"$KEYSTORE_PEM"
        printf '\n' >>"$KEYSTORE_PEM"
        cat "$KAFKA_SSL_KEY" >>"$KEYSTORE_PEM"
    )
    cat >>"$SERVER_PROPS" <<EOF

# --- SASL_SSL on 127.0.0.1:$KAFKA_SASL_SSL_PORT: TLS with the certificate in keystore.pem,
# then SASL. PLAIN users are listed here; SCRAM users are stored in the metadata log
# (formatted with --add-scram), so their login module needs no options.
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$KEYSTORE_PEM
listener.name.sasl_ssl.ssl.client.auth=$client_auth$truststore
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$plain_users;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
}

# ------------------------------------------------------------------ configs

write_configs() {
    local quorum
    if [[ $KAFKA_QUORUM == static ]]; then
        quorum="controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT"
    else
        quorum="controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT"
    fi

    local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
    local advertised="PLAINTEXT://127.0.0.1:$KAFKA_PORT"
    local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    if [[ -n $KAFKA_SASL_SSL_PORT ]]; then
        listeners+=",SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
        advertised+=",SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
        protocols+=",SASL_SSL:SASL_SSL"
    fi

    # It may hold PLAIN passwords: readable by its owner only.
    (umask 077 && : >"$SERVER_PROPS")
    cat >"$SERVER_PROPS" <<EOF
# Generated by deploy/kafka/local-kafka.sh for Apache Kafka $KAFKA_VERSION — test use only.

# --- KRaft: one process is both broker and controller, loopback only.
process.roles=broker,controller
node.id=1
$quorum
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$DATA_DIR

# --- Topics: auto-created with 8 partitions; deletable.
num.partitions=8
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
# message.max.bytes stays at Kafka's default (1 MiB).

# --- Internal topics on one node: replication 1, few partitions (fast first group join).
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
group.initial.rebalance.delay.ms=0

# --- Compaction that happens within a test's lifetime. The active segment is
# never cleaned, so a test topic that must compact should also set per-topic
# segment.ms=100 (or similar) and min.cleanable.dirty.ratio=0.01.
log.cleaner.enable=true
log.cleaner.threads=1
log.cleaner.backoff.ms=1000
log.cleaner.dedupe.buffer.size=33554432
log.retention.check.interval.ms=10000
log.segment.delete.delay.ms=1000
EOF
    if ((KAFKA_MAJOR >= 4)); then
        cat >>"$SERVER_PROPS" <<EOF

# --- Kafka 4.x: share-group state topic on one node.
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
    fi
    if [[ -n $KAFKA_SASL_SSL_PORT ]]; then
        write_security_configs
    fi

    # Kafka 3.x logs through slf4j-reload4j (log4j 1.x syntax).
    cat >"$KAFKA_STATE_DIR/log4j.properties" <<'EOF'
log4j.rootLogger=${stakhanov.log.level}, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${kafka.logs.dir}/${stakhanov.log.file}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
EOF

    # Kafka 4.x logs through log4j2 (log4j-slf4j-impl + log4j-core).
    cat >"$KAFKA_STATE_DIR/log4j2.properties" <<'EOF'
status = warn
name = stakhanov-local-kafka
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/${sys:stakhanov.log.file}
appender.file.filePattern = ${sys:kafka.logs.dir}/${sys:stakhanov.log.file}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = ${sys:stakhanov.log.level:-info}
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = warn
EOF
}

# A fresh KRaft cluster id: 16 random bytes, URL-safe base64 without padding
# (the format of `kafka-storage.sh random-uuid`), without starting a JVM.
# A leading '-' would read as an option to the storage tool's argument
# parser, so draw again (Kafka's own random-uuid avoids it too).
new_cluster_id() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ $id == -* ]] || break
    done
    printf '%s\n' "$id"
}

# ----------------------------------------------------------------- commands

# Empty the state dir, but only if it is empty already or carries our marker
# (KAFKA_STATE_DIR=$HOME by mistake must not cost anyone their home).
wipe_state_dir() {
    if [[ -f $MARKER ]] || [[ -z $(ls -A "$KAFKA_STATE_DIR") ]]; then
        find "$KAFKA_STATE_DIR" -mindepth 1 -delete
    else
        die "$KAFKA_STATE_DIR is not empty and was not made by this script; refusing to wipe it"
    fi
}

# Start the JVM on the configs and data in $KAFKA_STATE_DIR, record its pid,
# wait until it answers and print the address; on failure show the log and
# exit 1. $1: the $SECONDS the caller started at (for the "after N s" line).
launch_broker() {
    local started=$1 pid rc=0
    # Detached: own session (a Ctrl-C in the caller's terminal does not reach
    # it), stdin/stdout/stderr on files, and every other inherited descriptor
    # closed (our lock on fd 9, a make jobserver or a CI harness's pipes), so
    # that the caller's $(...) returns at once and nobody waits on the JVM.
    # The subshell execs setsid, which execs java in place (not a process-group
    # leader without job control), so $! is the JVM's pid; broker_pid
    # double-checks that via /proc. stdout.log is appended to: a `start`
    # keeps what the run before a `stop` wrote.
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM flags
        exec setsid java $KAFKA_HEAP_OPTS \
            -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
            -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
            -Dkafka.logs.dir="$LOG_DIR" -Dstakhanov.log.file=server.log -Dstakhanov.log.level=info \
            -Dlog4j.configuration="file:$KAFKA_STATE_DIR/log4j.properties" \
            -Dlog4j2.configurationFile="$KAFKA_STATE_DIR/log4j2.properties" \
            -cp "$LIBS/*" kafka.Kafka "$SERVER_PROPS"
    ) </dev/null >>"$LOG_DIR/stdout.log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$PID_FILE"
    log "started Kafka $KAFKA_VERSION (pid $pid, quorum $KAFKA_QUORUM), state in $KAFKA_STATE_DIR; waiting up to ${KAFKA_START_TIMEOUT}s"

    wait_ready "$pid" || rc=$?
    # The broker opens all its listeners together, so once PLAINTEXT answers
    # the secured one is either open or failed.
    local secured
    secured=$(configured_sasl_ssl_port)
    if ((rc == 0)) && [[ -n $secured ]] && ! port_open "$secured"; then
        log "the PLAINTEXT listener answers but nothing listens on SASL_SSL port $secured"
        rc=1
    fi
    case $rc in
        0)
            log "Kafka $KAFKA_VERSION answers on $ADDR after $((SECONDS - started)) s${secured:+ (SASL_SSL on 127.0.0.1:$secured)}"
            printf '%s\n' "$ADDR"
            ;;
        2)
            show_log_tail
            rm -f "$PID_FILE"
            die "Kafka exited during start-up"
            ;;
        *)
            show_log_tail
            stop_broker "$pid"
            die "Kafka did not answer on $ADDR within ${KAFKA_START_TIMEOUT}s"
            ;;
    esac
}

cmd_up() {
    check_security
    mkdir -p "$KAFKA_STATE_DIR"
    # Serialise concurrent `up`/`down` on the same state dir.
    exec 9>"$KAFKA_STATE_DIR.lock"
    flock 9

    local pid
    if pid=$(broker_pid); then
        log "Kafka $(cat "$MARKER" 2>/dev/null || echo '?') already running (pid $pid), state in $KAFKA_STATE_DIR"
        wait_ready "$pid" || { show_log_tail; die "broker pid $pid does not answer on $ADDR"; }
        printf '%s\n' "$ADDR"
        return 0
    fi
    if port_open "$KAFKA_PORT"; then
        if [[ $(probe_method) == kcat ]] && kcat_answers; then
            log "warning: a Kafka broker NOT started from $KAFKA_STATE_DIR already answers on $ADDR; using it (down will not stop it)"
            printf '%s\n' "$ADDR"
            return 0
        fi
        die "port $KAFKA_PORT is in use by something else (set KAFKA_PORT)"
    fi
    port_open "$KAFKA_CONTROLLER_PORT" && die "controller port $KAFKA_CONTROLLER_PORT is in use (set KAFKA_CONTROLLER_PORT)"
    if [[ -n $KAFKA_SASL_SSL_PORT ]] && port_open "$KAFKA_SASL_SSL_PORT"; then
        die "SASL_SSL port $KAFKA_SASL_SSL_PORT is in use (set KAFKA_SASL_SSL_PORT)"
    fi
    command -v java >/dev/null || die "java (17+) is needed"

    fetch_libs

    # Start from nothing: a fresh cluster every `up`.
    wipe_state_dir
    mkdir -p "$DATA_DIR" "$LOG_DIR"
    printf '%s\n' "$KAFKA_VERSION" >"$MARKER"
    write_configs

    local cluster_id started=$SECONDS
    cluster_id=$(new_cluster_id)
    local format_args=(format -t "$cluster_id" -c "$SERVER_PROPS")
    [[ $KAFKA_QUORUM == dynamic ]] && format_args+=(--standalone)
    # SCRAM credentials live in the cluster metadata; in KRaft the storage
    # tool can write them before the first start (Kafka >= 3.5), so no admin
    # call has to race the first client.
    local name password
    while read -r name password; do
        format_args+=(--add-scram "SCRAM-SHA-256=[name=$name,password=$password]")
        format_args+=(--add-scram "SCRAM-SHA-512=[name=$name,password=$password]")
    done < <(parse_users KAFKA_SCRAM_USERS)
    if ! java_tool storage-tool.log info kafka.tools.StorageTool "${format_args[@]}" >"$LOG_DIR/format.out" 2>&1; then
        cat "$LOG_DIR/format.out" >&2
        die "formatting the storage failed (KAFKA_QUORUM=$KAFKA_QUORUM, Kafka $KAFKA_VERSION)"
    fi

    launch_broker "$started"
}

# SIGTERM (Kafka shuts down cleanly), wait, then SIGKILL if it will not stop.
stop_broker() {
    local pid=$1 deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid ignored SIGTERM for ${KAFKA_STOP_TIMEOUT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PID_FILE"
}

cmd_down() {
    [[ -d $KAFKA_STATE_DIR ]] || { log "nothing to stop ($KAFKA_STATE_DIR does not exist)"; return 0; }
    exec 9>"$KAFKA_STATE_DIR.lock"
    flock 9
    local pid
    if pid=$(broker_pid); then
        log "stopping Kafka (pid $pid)"
        stop_broker "$pid"
    else
        log "no broker of ours is running (state $KAFKA_STATE_DIR)"
        port_open "$KAFKA_PORT" && log "warning: something else still listens on $ADDR"
    fi
    if [[ -f $MARKER ]]; then
        rm -rf "$DATA_DIR" "$PID_FILE"
        log "data removed; logs kept in $LOG_DIR"
    fi
}

# Stop the broker but keep its data: `start` brings the same cluster back
# (topics, offsets, consumer groups), as a broker restart or an outage would.
cmd_stop() {
    [[ -d $KAFKA_STATE_DIR ]] || { log "nothing to stop ($KAFKA_STATE_DIR does not exist)"; return 0; }
    exec 9>"$KAFKA_STATE_DIR.lock"
    flock 9
    local pid started=$SECONDS
    if pid=$(broker_pid); then
        log "stopping Kafka (pid $pid), keeping its data in $DATA_DIR"
        stop_broker "$pid"
        log "stopped after $((SECONDS - started)) s; \`start\` brings it back"
    else
        log "no broker of ours is running (state $KAFKA_STATE_DIR)"
        port_open "$KAFKA_PORT" && log "warning: something else still listens on $ADDR"
    fi
    return 0
}

# Start a broker that `stop` stopped, on the same data and configs: no
# format, no new cluster id. Already running → prints the address.
cmd_start() {
    [[ -f $MARKER && -f $SERVER_PROPS && -f $DATA_DIR/meta.properties ]] ||
        die "no stopped broker in $KAFKA_STATE_DIR (run up for a fresh one)"
    exec 9>"$KAFKA_STATE_DIR.lock"
    flock 9

    local pid
    if pid=$(broker_pid); then
        log "Kafka already running (pid $pid), state in $KAFKA_STATE_DIR"
        wait_ready "$pid" || { show_log_tail; die "broker pid $pid does not answer on $ADDR"; }
        printf '%s\n' "$ADDR"
        return 0
    fi
    port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is in use by something else"
    port_open "$KAFKA_CONTROLLER_PORT" && die "controller port $KAFKA_CONTROLLER_PORT is in use"
    local secured
    secured=$(configured_sasl_ssl_port)
    if [[ -n $secured ]] && port_open "$secured"; then
        die "SASL_SSL port $secured is in use"
    fi
    command -v java >/dev/null || die "java (17+) is needed"
    [[ -f $LIBS/.complete ]] || die "no jars for Kafka $KAFKA_VERSION in $LIBS (the broker was made by another KAFKA_VERSION?)"
    local made
    made=$(<"$MARKER")
    [[ $made == "$KAFKA_VERSION" ]] || die "the data in $KAFKA_STATE_DIR was made by Kafka $made; set KAFKA_VERSION=$made"
    launch_broker "$SECONDS"
}

cmd_status() {
    local pid
    if pid=$(broker_pid); then
        log "pid $pid, state $KAFKA_STATE_DIR"
    else
        log "no broker of ours is running (state $KAFKA_STATE_DIR)"
    fi
    if broker_answers; then
        printf '%s\n' "$ADDR"
        return 0
    fi
    log "nothing answers Kafka metadata requests on $ADDR"
    return 1
}

cmd_create_topic() {
    (($# >= 2)) || die "usage: create-topic NAME PARTITIONS [key=value ...]"
    [[ -f $LIBS/.complete && -f $MARKER ]] || die "no broker state here; run up first"
    java_tool admin.log warn "$PROBE_SRC" create-topic "$ADDR" "$@"
}

# The ports of the broker in the state dir, one shell assignment a line.
cmd_ports() {
    [[ -f $SERVER_PROPS ]] || die "no broker state in $KAFKA_STATE_DIR (run up first)"
    printf 'KAFKA_PORT=%s\nKAFKA_CONTROLLER_PORT=%s\n' "$(state_port PLAINTEXT)" "$(state_port CONTROLLER)"
    local secured
    secured=$(configured_sasl_ssl_port)
    [[ -z $secured ]] || printf 'KAFKA_SASL_SSL_PORT=%s\n' "$secured"
}

cmd_logs() {
    [[ -f $SERVER_LOG ]] || die "no log at $SERVER_LOG"
    if [[ ${1:-} == -f ]]; then
        exec tail -n 50 -F "$SERVER_LOG"
    fi
    tail -n "${1:-50}" "$SERVER_LOG"
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    stop) cmd_stop ;;
    start) cmd_start ;;
    status) cmd_status ;;
    ports) cmd_ports ;;
    logs) cmd_logs "${2:-}" ;;
    create-topic)
        shift
        cmd_create_topic "$@"
        ;;
    fetch) fetch_libs ;; # warm the jar cache only (e.g. in a CI setup step)
    -h | --help | help) usage 0 ;;
    *) usage ;;
esac
