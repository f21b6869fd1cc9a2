package app

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMetricsAndHealth runs the pipeline on the embedded broker with a
// simulated input and scrapes it as Prometheus and Kubernetes would:
// /healthz answers from the start, /readyz once the groups are joined and
// state restored, and /metrics carries the pipeline's figures, equal to
// what it processed.
func TestMetricsAndHealth(t *testing.T) {
	b := testBroker(t, 4)
	input := b.topic("shift-events")
	sim, msgs, produce := simulatedInput(t, b.Addr, input)
	produce(msgs)

	o := runOptionsOn(b, input, "m", filepath.Join(t.TempDir(), "m.duckdb"))
	o.Live.QueryAddr = "off"
	addr := make(chan string, 1)
	o.serving = func(a string) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { _, err := Run(ctx, o); ran <- err }()
	base := "http://" + <-addr

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}

	valid := float64(sim.Truth().Valid)
	var m map[string]float64
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, text := get("/metrics")
		m = parseMetrics(t, text)
		if m["stakhanov_shifts_stored_total"] >= valid && m["stakhanov_ready"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not caught up in 60 s: stored %v of %v, ready %v", m["stakhanov_shifts_stored_total"], valid, m["stakhanov_ready"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz once caught up: %d %s", code, body)
	}
	truth := sim.Truth()
	for name, want := range map[string]float64{
		"stakhanov_input_messages_total": float64(len(msgs)),
		"stakhanov_shifts_stored_total":  valid,
		"stakhanov_duplicates_total":     float64(len(truth.Duplicates)),
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
	var rejects float64
	for k, v := range m {
		if strings.HasPrefix(k, "stakhanov_rejects_total{") {
			rejects += v
		}
	}
	if rejects != float64(len(truth.Malformed)) {
		t.Errorf("rejects by reason sum to %v, want %v", rejects, len(truth.Malformed))
	}
	for _, name := range []string{
		`stakhanov_alerts_total{type="record_shift"}`, `stakhanov_alerts_total{type="common_pace"}`,
		"stakhanov_sink_commits_total", "stakhanov_sink_commit_duration_seconds_count",
		`stakhanov_consumer_lag_messages{partition="0",role="process",topic="` + input + `"}`,
		`stakhanov_stream_time_seconds{partition="0"}`, `stakhanov_state_bytes{partition="0"}`,
		`stakhanov_restore_progress_ratio{partition="0"}`, "go_goroutines", "process_resident_memory_bytes",
	} {
		if _, ok := m[name]; !ok {
			t.Errorf("no %s in /metrics", name)
		}
	}
	if m[`stakhanov_alerts_total{type="record_shift"}`] == 0 || m["stakhanov_sink_commit_duration_seconds_count"] == 0 {
		t.Errorf("alerts %v, commits timed %v", m[`stakhanov_alerts_total{type="record_shift"}`], m["stakhanov_sink_commit_duration_seconds_count"])
	}
	for k, v := range m {
		if strings.HasPrefix(k, "stakhanov_consumer_lag_messages{") && v != 0 {
			t.Errorf("%s = %v once caught up", k, v)
		}
		// the simulated plants work in the 1930s: negative Unix seconds
		if strings.HasPrefix(k, "stakhanov_stream_time_seconds{") && time.Unix(int64(v), 0).Year() != 1935 {
			t.Errorf("%s = %v", k, v)
		}
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("metrics still served after the pipeline stopped")
	}
}

// parseMetrics reads Prometheus' text format into name{labels} → value
// (labels as printed, sorted by the client library).
func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}
