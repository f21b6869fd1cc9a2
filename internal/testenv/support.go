package testenv

import (
	"bytes"
	"fmt"
	"os/exec"
	"sync"
	"testing"
)

// KafkaJars fills local-kafka.sh's cache of Apache Kafka's jars (from Maven
// Central, once) through fetch, which runs `local-kafka.sh fetch`: without
// Maven and without the jars cached, the test is Missing its dependency.
func KafkaJars(t testing.TB, fetch func() error) {
	t.Helper()
	err := fetch()
	if err == nil {
		return
	}
	if _, lerr := exec.LookPath("mvn"); lerr != nil {
		Missing(t, fmt.Sprintf("no mvn on PATH and Apache Kafka's jars not cached (%v)", err),
			"make deps installs Maven (apt-get install maven); deploy/kafka/local-kafka.sh fetch then caches the jars under ~/.cache/stakhanov")
	}
	Missing(t, fmt.Sprintf("cannot fetch Apache Kafka's jars from Maven Central: %v", err),
		"run deploy/kafka/local-kafka.sh fetch where Maven Central is reachable (the jars are cached under ~/.cache/stakhanov)")
}

// LogBuffer is a log destination that a logger may write from several
// goroutines while the test reads it.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Bytes is a copy of what was written so far.
func (l *LogBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func (l *LogBuffer) String() string { return string(l.Bytes()) }
