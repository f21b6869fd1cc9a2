package app

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/internal/testenv"
	"github.com/stakhanov/stakhanov/simulator"
)

// needKcat finds kcat; CI installs it, so there a missing kcat fails the
// test instead of skipping it.
func needKcat(t *testing.T) string {
	t.Helper()
	return testenv.Command(t, "kcat", "make deps installs it (apt-get install kcat)")
}

// TestKcatInAndOut: a librdkafka client produces the input to
// the broker (embedded, or KAFKA_BROKERS), the pipeline runs, and the same client reads the
// alerts and dead letters back.
func TestKcatInAndOut(t *testing.T) {
	kcat := needKcat(t)
	b := testBroker(t, 4)

	cfg := simulator.DefaultConfig()
	cfg.Plants, cfg.Days = 6, 40
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// key and value separated by a tab, one message a line; malformed
	// values with newlines or tabs cannot travel this way, so they are
	// left to the other tests
	var in bytes.Buffer
	sent := 0
	for m, ok := sim.Next(); ok; m, ok = sim.Next() {
		if bytes.ContainsAny(m.Value, "\n\t") || len(m.Value) == 0 {
			continue
		}
		in.Write(m.Key)
		in.WriteByte('\t')
		in.Write(m.Value)
		in.WriteByte('\n')
		sent++
	}
	produce := exec.Command(kcat, "-b", b.Addr, "-P", "-t", b.topic("shift-events"), "-K", "\t", "-z", "none", "-X", "partitioner=murmur2_random")
	produce.Stdin = &in
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}

	io := ingest.DefaultOptions(b.Addr)
	io.InputTopic, io.Group = b.topic("shift-events"), b.topic("stakhanov")
	io.AlertsTopic, io.DLQTopic = b.topic("shift-alerts"), b.topic("shift-events-dlq")
	io.Logger = quiet()
	runTo(t, RunOptions{Ingest: io, DuckDB: analytics.DefaultOptions(filepath.Join(t.TempDir(), "k.duckdb"))},
		func(p *ingest.Pipeline) bool { return p.Stats().Messages >= int64(sent) && caughtUp(p) })

	consume := func(topic string) []string {
		out, err := exec.Command(kcat, "-b", b.Addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
			"-f", "%k\t%h\t%s\n").Output()
		if err != nil {
			t.Fatalf("kcat consume %s: %v", topic, err)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	alerts := consume(b.topic("shift-alerts"))
	types := map[string]int{}
	for _, line := range alerts {
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) != 3 {
			t.Fatalf("alert line %q", line)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(parts[2]), &m); err != nil {
			t.Fatalf("alert not JSON: %v", err)
		}
		if parts[0] != m["plant_id"] {
			t.Fatalf("alert keyed %q for plant %v", parts[0], m["plant_id"])
		}
		types[m["type"].(string)]++
	}
	for _, typ := range []string{"record_shift", "common_pace"} {
		if types[typ] == 0 {
			t.Errorf("kcat read no %s alert: %v", typ, types)
		}
	}
	dlq := consume(b.topic("shift-events-dlq"))
	if len(dlq) == 0 || !strings.Contains(dlq[0], "error.reason=") || !strings.Contains(dlq[0], "source.offset=") {
		t.Fatalf("dead letters as kcat sees them: %q", dlq)
	}
}
