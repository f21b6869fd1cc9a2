package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/ingest"
)

// buildBinary builds the stakhanov command once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stakhanov")
	cmd := exec.Command("go", "build", "-tags", "duckdb_arrow", "-o", bin, "github.com/stakhanov/stakhanov/cmd/stakhanov")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building stakhanov: %v\n%s", err, out)
	}
	return bin
}

// brokerFor returns KAFKA_BROKERS, or starts `stakhanov broker` in its own
// process so that several pipeline processes can share it; its log goes to
// broker.log in dir.
func brokerFor(t *testing.T, bin, dir string) string {
	t.Helper()
	if b := os.Getenv("KAFKA_BROKERS"); b != "" {
		return strings.Split(b, ",")[0]
	}
	cmd := exec.Command(bin, "broker", "--listen", "127.0.0.1:0", "--topics", "")
	logFile, err := os.Create(filepath.Join(dir, "broker.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("broker said nothing: %v", err)
	}
	f := strings.Fields(line) // "embedded broker serving on ADDR (…"
	for i, w := range f {
		if w == "on" && i+1 < len(f) {
			return f[i+1]
		}
	}
	t.Fatalf("no address in %q", line)
	return ""
}

type proc struct {
	cmd  *exec.Cmd
	name string
	log  string
}

func startProc(t *testing.T, bin, dir, name string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"run", "--log-level", "debug", "--report-every", "0", "--metrics-addr", "127.0.0.1:0"}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, name: name, log: logPath}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		f.Close()
	})
	return p
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		b, _ := os.ReadFile(p.log)
		t.Fatalf("%s exited with %v:\n%s", p.name, err, tail(string(b), 3000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// through reports whether the group has processed all of input and the
// sink group has stored all of its results (Kafka's copy of the sink's
// offsets, committed after each DuckDB commit).
func through(ctx context.Context, c *kafka.Client, group, input string) bool {
	for _, pair := range [][2]string{{group, input}, {group + "-sink", group + "-results"}} {
		_, end, err := ingest.EndOffsets(ctx, c, pair[1])
		if err != nil {
			return false
		}
		parts := make([]int, 0, len(end))
		for p := range end {
			parts = append(parts, int(p))
		}
		res, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: pair[0], Topics: map[string][]int{pair[1]: parts}})
		if err != nil {
			return false
		}
		got := map[int32]int64{}
		for _, po := range res.Topics[pair[1]] {
			got[int32(po.Partition)] = po.CommittedOffset
		}
		for p, e := range end {
			if e > 0 && got[p] < e {
				return false
			}
		}
	}
	return true
}

// TestProcessesKilledAndAdded: three `stakhanov run --role process`
// processes and one `--role sink` over an 8-partition input; one is killed
// with SIGKILL mid-stream and another started later. The DuckDB file equals
// that of one uninterrupted `stakhanov run`, table by table, and each run's
// alerts topic holds exactly its table's alert ids.
func TestProcessesKilledAndAdded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs five processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := brokerFor(t, bin, dir)
	ctx := context.Background()
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	run := fmt.Sprintf("mp%d", time.Now().UnixNano()%1e9)
	input := run + "-shift-events"
	if err := ingest.EnsureTopics(ctx, client, 8, input); err != nil {
		t.Fatal(err)
	}
	sim, msgs, produce := simulatedInput(t, addr, input)
	common := func(group string) []string {
		return []string{"--brokers", addr, "--input", input, "--group", run + group,
			"--alerts", run + group + "-alerts", "--dlq", run + group + "-dlq", "--checkpoint-interval", "200ms"}
	}
	wait := func(what, group string) {
		deadline := time.Now().Add(3 * time.Minute)
		for !through(ctx, client, run+group, input) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	many := filepath.Join(dir, "many.duckdb")
	sink := startProc(t, bin, dir, "sink", append(common("many"), "--role", "sink", "--duckdb", many)...)
	p1 := startProc(t, bin, dir, "p1", append(common("many"), "--role", "process")...)
	p2 := startProc(t, bin, dir, "p2", append(common("many"), "--role", "process")...)
	p3 := startProc(t, bin, dir, "p3", append(common("many"), "--role", "process")...)
	half := len(msgs) / 2
	for i := 0; i < half; i += 2000 { // arriving while the group settles
		produce(msgs[i:min(i+2000, half)])
		time.Sleep(150 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	p2.cmd.Process.Signal(syscall.SIGKILL) // mid-stream, no goodbye
	p2.cmd.Wait()
	for i := half; i < len(msgs); i += 2000 {
		produce(msgs[i:min(i+2000, len(msgs))])
		time.Sleep(100 * time.Millisecond)
	}
	p4 := startProc(t, bin, dir, "p4", append(common("many"), "--role", "process")...)
	wait("the scaled-out group to get through the input", "many")
	for _, p := range []*proc{p1, p3, p4, sink} {
		p.stop(t)
	}
	if b, _ := os.ReadFile(p2.log); !strings.Contains(string(b), "partitions assigned") {
		t.Fatalf("the killed process never owned partitions:\n%s", tail(string(b), 2000))
	}

	one := filepath.Join(dir, "one.duckdb")
	single := startProc(t, bin, dir, "single", append(common("one"), "--duckdb", one)...)
	wait("one process to get through the input", "one")
	single.stop(t)

	db := openRO(t, one)
	if _, err := db.Exec(fmt.Sprintf(`ATTACH '%s' AS many (READ_ONLY)`, many)); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"shifts", "alerts", "rejects", "norms"} {
		n := column(t, db, fmt.Sprintf(`SELECT count(*)::VARCHAR FROM ((SELECT * FROM %[1]s EXCEPT ALL SELECT * FROM many.%[1]s) UNION ALL (SELECT * FROM many.%[1]s EXCEPT ALL SELECT * FROM %[1]s))`, table))
		if n[0] != "0" {
			t.Errorf("%s: %s rows differ between the scaled-out run and one process", table, n[0])
		}
	}
	if n := column(t, db, `SELECT count(*)::VARCHAR FROM many.shifts`); n[0] != fmt.Sprint(sim.Truth().Valid) {
		t.Errorf("scaled-out run stored %s shifts, want %d", n[0], sim.Truth().Valid)
	}
	for _, g := range []string{"one", "many"} {
		topic := map[string]bool{}
		for _, m := range readTopic(t, addr, run+g+"-alerts") {
			var a struct {
				ID string `json:"alert_id"`
			}
			if err := json.Unmarshal(m.Value, &a); err != nil {
				t.Fatal(err)
			}
			topic[a.ID] = true
		}
		prefix := ""
		if g == "many" {
			prefix = "many."
		}
		ids := column(t, db, `SELECT alert_id FROM `+prefix+`alerts`)
		if len(ids) != len(topic) {
			t.Errorf("%s: alerts table %d ids, topic %d", g, len(ids), len(topic))
		}
		for _, id := range ids {
			if !topic[id] {
				t.Errorf("%s: alert %s stored but not published", g, id)
				break
			}
		}
	}
}
