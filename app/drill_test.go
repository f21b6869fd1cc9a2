package app

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/internal/testenv"
	"github.com/stakhanov/stakhanov/simulator"
)

// The fault drills of RELIABILITY.md: a pipeline SIGKILLed again and again
// while input streams in (TestCrashDrill), and a broker that goes away for
// half a minute under a running pipeline (TestBrokerOutage). Both end with
// the same audit of the DuckDB file and the alerts topic (drillAudit).

// The group's consumer session: a process SIGKILLed stays a member until
// it times out, so its successor gets partitions about this much later.
const drillSessionTimeout = 10 * time.Second

// TestCrashDrillShort is the crash drill every test run makes: 100 000
// events, 5 kills, on the embedded broker (or KAFKA_BROKERS), about a
// minute and a half. STAKHANOV_DRILL_SEED (default 1935) picks the kills.
func TestCrashDrillShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, runs and kills pipeline processes for about a minute and a half")
	}
	crashDrill(t, 100_000, 5, drillEnvInt(t, "STAKHANOV_DRILL_SEED", 1935))
}

// TestCrashDrill is the crash drill at any size: STAKHANOV_DRILL_EVENTS
// messages (default 100 000), STAKHANOV_DRILL_KILLS kills (default 5),
// STAKHANOV_DRILL_SEED (default 1935). Opt-in with STAKHANOV_DRILL=1;
// KAFKA_BROKERS runs it on a real broker; STAKHANOV_DRILL_DIR keeps the
// logs and DuckDB files.
func TestCrashDrill(t *testing.T) {
	if os.Getenv("STAKHANOV_DRILL") == "" {
		// minutes long at the sizes it is meant for
		t.Skip("crash drill: set STAKHANOV_DRILL=1 (see RELIABILITY.md)")
	}
	crashDrill(t, drillEnvInt(t, "STAKHANOV_DRILL_EVENTS", 100_000), drillEnvInt(t, "STAKHANOV_DRILL_KILLS", 5),
		drillEnvInt(t, "STAKHANOV_DRILL_SEED", 1935))
}

// crashDrill streams a simulated input of about events messages while one
// `stakhanov run` (role all) is SIGKILLed kills times at moments a seeded
// RNG picks, and started again after each kill on the same DuckDB file. An
// uninterrupted `stakhanov run` of another group reads the same topic from
// the start. At the end both DuckDB files hold the same rows, the shifts
// are exactly the distinct valid input, and the killed run's alerts topic
// holds exactly its table's alert ids (with repeats, which are counted).
//
// A kill comes, four times in five, a random 0.3–4 s after the process was
// assigned its partitions (while it processes, publishes, checkpoints and
// commits); otherwise a random 0–1.5 s after it was started (while it opens
// DuckDB, creates topics or joins the group).
func crashDrill(t *testing.T, events, kills, seed int) {
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	began := time.Now()

	bin := buildBinary(t)
	dir := drillDir(t)
	addr := brokerFor(t, bin, dir)
	ctx := context.Background()
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	run := fmt.Sprintf("drill%d", time.Now().UnixNano()%1e9)
	input := run + "-shift-events"
	if err := ingest.EnsureTopics(ctx, client, 8, input); err != nil {
		t.Fatal(err)
	}
	sim, msgs, valid := drillInput(t, simulator.ConfigForEvents(events))
	truth := sim.Truth()

	type round struct {
		early    bool          // killed while starting, not while processing
		delay    time.Duration // after start (early) or after assignment
		assigned time.Duration // from start to partitions assigned
		during   bool          // the producer was still producing
		at       map[int32]int64
	}
	plan := make([]round, kills)
	var planned time.Duration
	for i := range plan {
		r := &plan[i]
		if rng.IntN(5) == 0 {
			r.early, r.delay = true, time.Duration(rng.Int64N(int64(1500*time.Millisecond)))
		} else {
			r.delay = 300*time.Millisecond + time.Duration(rng.Int64N(int64(3700*time.Millisecond)))
		}
		planned += r.delay + drillSessionTimeout + time.Second
	}
	// the producer spreads the input over the planned kills and a little
	// more, so that every kill lands mid-stream
	produceFor := planned + planned/10 + 2*time.Second
	t.Logf("crash drill: %d messages (%d distinct valid events), %d kills, seed %d, producing over ~%s",
		len(msgs), truth.Valid, kills, seed, produceFor.Round(time.Second))

	args := func(group string) []string {
		return []string{"--brokers", addr, "--input", input, "--group", run + group,
			"--alerts", run + group + "-alerts", "--dlq", run + group + "-dlq",
			"--checkpoint-interval", "1s", "--duckdb", filepath.Join(dir, group+".duckdb")}
	}
	one := startProc(t, bin, dir, "one", args("one")...)
	cur := startProc(t, bin, dir, "killed-0", args("killed")...)
	started := time.Now()
	prod := drillProduce(t, addr, input, msgs, produceFor, 1000)

	procs := []*proc{cur}
	for i := range plan {
		r := &plan[i]
		if !r.early {
			r.assigned = drillAwait(t, cur, started, `msg="partitions assigned" role=process`, 2*time.Minute)
		}
		time.Sleep(r.delay)
		if drillExited(cur) || drillExited(one) {
			break // reported below
		}
		r.at = drillCommitted(ctx, client, run+"killed", input)
		r.during = !prod.finished()
		drillKill(t, cur)
		cur = startProc(t, bin, dir, fmt.Sprintf("killed-%d", i+1), args("killed")...)
		started = time.Now()
		procs = append(procs, cur)
	}
	for _, p := range []*proc{cur, one} {
		if drillExited(p) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited on its own (a restart that cannot open the DuckDB file or join the group?):\n%s", p.name, tail(string(b), 4000))
		}
	}
	if err := prod.wait(); err != nil {
		t.Fatalf("producing: %v", err)
	}
	produced := time.Since(began)
	// the last restart is up (and handles SIGTERM) before it is judged
	drillAwait(t, cur, started, `msg="partitions assigned" role=process`, 3*time.Minute)
	drillAwait(t, cur, started, `msg="partitions assigned" role=sink`, 3*time.Minute)
	for _, p := range []struct {
		p     *proc
		group string
	}{{cur, run + "killed"}, {one, run + "one"}} {
		deadline := time.Now().Add(3*time.Minute + time.Duration(len(msgs))*50*time.Microsecond)
		for !through(ctx, client, p.group, input) {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not get through the input in %s after the producer ended (committed %v, input ends %v);\n"+
					"members of group %s: %s\nits goroutines:\n%s",
					p.p.name, time.Since(began)-produced, drillCommitted(ctx, client, p.group, input), drillEnd(t, ctx, client, input),
					p.group, drillMembers(ctx, client, p.group), drillDump(p.p))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	caughtUp := time.Since(began)
	for _, l := range drillLog(t, cur.log) {
		if l.msg == "partitions assigned" && strings.Contains(l.text, " role=process ") {
			t.Logf("the last restart was assigned its partitions %s after it started", l.at.Sub(started).Round(100*time.Millisecond))
			break
		}
	}
	cur.stop(t)
	one.stop(t)

	// replay: input a restarted process processed again, from its
	// checkpoints up to where its killed predecessor had got
	replayed := int64(0)
	var perKill []int64
	for i := 1; i < len(procs); i++ {
		restored := drillRestored(t, procs[i].log)
		n := int64(0)
		for part, at := range plan[i-1].at {
			if from, ok := restored[part]; ok {
				n += max(at-from, 0)
			}
		}
		replayed += n
		perKill = append(perKill, n)
	}
	t.Logf("replayed after each kill (input processed again from the checkpoints): %v", perKill)
	var early, during int
	var delays, assigned []string
	for _, r := range plan {
		if r.early {
			early++
		}
		if r.during {
			during++
		}
		delays = append(delays, r.delay.Round(100*time.Millisecond).String())
		if !r.early {
			assigned = append(assigned, r.assigned.Round(100*time.Millisecond).String())
		}
	}
	t.Logf("kills %d (%d during start-up, %d while the producer was producing); delays %v; assigned after %v",
		kills, early, during, delays, assigned)

	db := openRO(t, filepath.Join(dir, "one.duckdb"))
	if _, err := db.Exec(fmt.Sprintf(`ATTACH '%s' AS killed (READ_ONLY)`, filepath.Join(dir, "killed.duckdb"))); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"shifts", "alerts", "rejects", "norms"} {
		n := column(t, db, fmt.Sprintf(`SELECT count(*)::VARCHAR FROM ((SELECT * FROM %[1]s EXCEPT ALL SELECT * FROM killed.%[1]s) UNION ALL (SELECT * FROM killed.%[1]s EXCEPT ALL SELECT * FROM %[1]s))`, table))
		if n[0] != "0" {
			t.Errorf("%s: %s rows differ between the killed run and the uninterrupted one", table, n[0])
		}
	}
	a := drillAudit(t, db, "killed.", addr, run+"killed-alerts", run+"killed-dlq", valid)
	b := drillAudit(t, db, "", addr, run+"one-alerts", run+"one-dlq", valid)
	t.Logf("uninterrupted run: %d shifts, %d alerts, %d repeats on its alerts topic", b.shifts, b.alerts, b.alertRepeats)
	t.Logf("CRASH DRILL: events %d (valid %d), rounds %d, lost %d, doubled %d, alert ids missing %d, extra %d; "+
		"alerts topic %d messages for %d ids (%d repeats); dead letters %d for %d rejects (%d repeats); "+
		"replayed %d messages; produced in %s, caught up at %s, whole test %s",
		len(msgs), truth.Valid, kills, a.lost, a.doubled, a.alertsMissing, a.alertsExtra,
		a.alertMessages, a.alerts, a.alertRepeats, a.deadLetters, a.rejects, a.deadLetterRepeats,
		replayed, produced.Round(time.Second), caughtUp.Round(time.Second), time.Since(began).Round(time.Second))
}

// TestBrokerOutage runs a real Apache Kafka of its own (local-kafka.sh on
// free ports the OS picks, or on STAKHANOV_OUTAGE_PORT and the port after
// it when that is set; state in a temporary directory), streams the simulated input into it while a `stakhanov run`
// processes it, stops the broker mid-stream for STAKHANOV_OUTAGE_SECONDS
// (default 30) keeping its data, starts it again and keeps producing. The
// pipeline must wait, not exit, say in its log what it is waiting for, back
// off, and end with exactly the distinct valid input in DuckDB and the same
// alert ids in its table as on its topic. Without Java (or Maven and no
// cached jars) it skips, or fails when CI is set.
func TestBrokerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Apache Kafka and stops it for 30 s")
	}
	testenv.Command(t, "java", "the broker outage drill runs Apache Kafka: make deps installs a JDK (apt-get install openjdk-17-jdk-headless)")
	port := drillEnvInt(t, "STAKHANOV_OUTAGE_PORT", 0) // 0: free ports from the OS
	outage := time.Duration(drillEnvInt(t, "STAKHANOV_OUTAGE_SECONDS", 30)) * time.Second
	script, err := filepath.Abs(filepath.Join("..", "deploy", "kafka", "local-kafka.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := drillDir(t)
	// stop and start find the ports in the state dir
	env := append(os.Environ(), "KAFKA_PORT=auto", "KAFKA_CONTROLLER_PORT=auto", "KAFKA_SASL_SSL_PORT=",
		"KAFKA_STATE_DIR="+filepath.Join(dir, "kafka"))
	if port != 0 {
		env = append(env, "KAFKA_PORT="+strconv.Itoa(port), "KAFKA_CONTROLLER_PORT="+strconv.Itoa(port+1))
	}
	kafkaSh := func(cmd string) (string, error) {
		c := exec.Command(script, cmd)
		c.Env = env
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		if err != nil {
			return "", fmt.Errorf("local-kafka.sh %s: %w\n%s", cmd, err, tail(stderr.String(), 3000))
		}
		return strings.TrimSpace(stdout.String()), nil
	}
	testenv.KafkaJars(t, func() error { _, err := kafkaSh("fetch"); return err })
	if port != 0 {
		for _, p := range []int{port, port + 1} {
			if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second); err == nil {
				c.Close()
				t.Fatalf("port %d is in use: set STAKHANOV_OUTAGE_PORT to the first of a free pair of ports, or unset it to take free ports from the OS", p)
			}
		}
	}
	began := time.Now()
	t.Cleanup(func() {
		if _, err := kafkaSh("down"); err != nil {
			t.Log(err)
		}
	})
	addr, err := kafkaSh("up")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	ctx := context.Background()
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 5 * time.Second}
	group, input := "outage", "outage-shift-events"
	if err := ingest.EnsureTopics(ctx, client, 8, input); err != nil {
		t.Fatal(err)
	}
	sim, msgs, valid := drillInput(t, simulator.DefaultConfig())

	p := startProc(t, bin, dir, "run", "--brokers", addr, "--input", input, "--group", group,
		"--alerts", group+"-alerts", "--dlq", group+"-dlq", "--checkpoint-interval", "1s",
		"--duckdb", filepath.Join(dir, "outage.duckdb"), "--report-every", "5s")
	// ~24 s of producing while the broker is up, half before the outage
	prod := drillProduce(t, addr, input, msgs, 24*time.Second, 500)
	for prod.sent.Load() < int64(len(msgs)/2) || drillSum(drillCommitted(ctx, client, group+"-sink", group+"-results")) == 0 {
		if drillExited(p) || prod.finished() || time.Since(began) > 2*time.Minute {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("the pipeline stored nothing before the outage:\n%s", tail(string(b), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}

	stopAt := time.Now()
	if _, err := kafkaSh("stop"); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	t.Logf("broker stopped in %s with %d of %d messages produced", down.Sub(stopAt).Round(100*time.Millisecond), prod.sent.Load(), len(msgs))
	for time.Since(down) < outage {
		if drillExited(p) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("the pipeline exited %s into the outage:\n%s", time.Since(down).Round(time.Second), tail(string(b), 4000))
		}
		time.Sleep(250 * time.Millisecond)
	}
	startAt := time.Now()
	if _, err := kafkaSh("start"); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("broker down for %s, answering again %s after start", back.Sub(stopAt).Round(100*time.Millisecond), back.Sub(startAt).Round(100*time.Millisecond))

	// recovered: everything in the input when the broker came back is
	// processed and its results stored
	inEnd := drillEnd(t, ctx, client, input)
	var recovered time.Time
	for deadline := time.Now().Add(2 * time.Minute); recovered.IsZero(); {
		if drillExited(p) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("the pipeline exited after the outage:\n%s", tail(string(b), 4000))
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("the pipeline did not resume within 2 min of the broker's return:\n%s", tail(string(b), 4000))
		}
		if drillAtLeast(drillCommitted(ctx, client, group, input), inEnd) {
			resEnd := drillEnd(t, ctx, client, group+"-results")
			for !drillAtLeast(drillCommitted(ctx, client, group+"-sink", group+"-results"), resEnd) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			recovered = time.Now()
			continue
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := prod.wait(); err != nil {
		t.Fatalf("producing: %v", err)
	}
	for deadline := time.Now().Add(2 * time.Minute); !through(ctx, client, group, input); {
		if time.Now().After(deadline) || drillExited(p) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("the pipeline did not get through the input:\n%s", tail(string(b), 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	done := time.Now()
	p.stop(t)

	// the log during the outage: what it waited for, and how often
	lines := drillLog(t, p.log)
	var waiting, during []drillLine
	for _, l := range lines {
		if l.at.Before(stopAt) || l.at.After(recovered) {
			continue
		}
		during = append(during, l)
		if strings.Contains(l.msg, "waiting") {
			waiting = append(waiting, l)
		}
	}
	perTask := map[string]int{}
	levels := map[string]int{}
	for _, l := range during {
		levels[l.level]++
		if l.level == "WARN" || l.level == "ERROR" {
			perTask[l.task()]++
		}
	}
	var tasks []string
	for k, n := range perTask {
		tasks = append(tasks, fmt.Sprintf("%4d × %s", n, k))
	}
	slices.Sort(tasks)
	slices.Reverse(tasks)
	t.Logf("log lines from the stop to recovery by level %v; warnings and errors by task:\n  %s", levels, strings.Join(tasks, "\n  "))
	for _, l := range waiting[:min(len(waiting), 5)] {
		t.Logf("  e.g. %s", l.text)
	}
	if len(waiting) == 0 {
		t.Errorf("no \"waiting\" line in the log during the outage: the log does not say what the pipeline waits for")
	}
	// Every retry is a wait: each retry line (a warning with a backoff)
	// says "waiting" and names what it waits for — a consumer group by its
	// name, anything else by a task, topic or partition — whichever loop
	// it comes from.
	groupNamed := regexp.MustCompile(`\bgroup[= ]"?` + group + `(-sink)?\b`)
	unclear := map[string][]drillLine{}
	for _, l := range during {
		if l.level != "WARN" || !strings.Contains(l.text, " backoff=") {
			continue
		}
		named := regexp.MustCompile(`waiting: \S`).MatchString(l.msg) || strings.Contains(l.text, " partition=") || strings.Contains(l.text, " topic=")
		if strings.Contains(l.msg, "group") {
			named = groupNamed.MatchString(l.text)
		}
		if !strings.Contains(l.msg, "waiting") || !named {
			unclear[l.msg] = append(unclear[l.msg], l)
		}
	}
	for msg, ls := range unclear {
		t.Errorf("%d retry lines during the outage do not say \"waiting\" and name what for (%q), e.g.\n%s", len(ls), msg, ls[0].text)
	}
	// exponential backoff from 100 ms to 10 s: about ten tries of one
	// task in a 30 s outage; three times that is spinning
	limit := 3 * (10 + int(back.Sub(stopAt)/(10*time.Second)))
	for k, n := range perTask {
		if n > limit {
			t.Errorf("%d warnings for %q during the outage (limit %d): retrying without backoff?", n, k, limit)
		}
	}
	if n := len(during); float64(n) > 50*recovered.Sub(stopAt).Seconds() {
		t.Errorf("%d log lines in %s of outage: spinning?", n, recovered.Sub(stopAt).Round(time.Second))
	}

	for _, l := range lines {
		if l.at.After(back.Add(-5*time.Second)) && !l.at.After(recovered) &&
			(l.msg == "partitions assigned" || l.msg == "recovered" || strings.Contains(l.msg, "gave up")) {
			t.Logf("  %+.1fs after the broker answered: %s", l.at.Sub(back).Seconds(), l.text)
		}
	}

	db := openRO(t, filepath.Join(dir, "outage.duckdb"))
	a := drillAudit(t, db, "", addr, group+"-alerts", group+"-dlq", valid)
	if n := column(t, db, `SELECT count(*)::VARCHAR FROM shifts`); n[0] != fmt.Sprint(sim.Truth().Valid) {
		t.Errorf("shifts %s, distinct valid events %d", n[0], sim.Truth().Valid)
	}
	t.Logf("BROKER OUTAGE: events %d (valid %d, %d produce retries), broker down %s (stop took %s, start %s), "+
		"recovered %s after the broker answered, caught up %s after; lost %d, doubled %d, alert ids missing %d, extra %d, "+
		"alerts topic %d messages for %d ids (%d repeats), dead letters %d for %d rejects (%d repeats); whole test %s",
		len(msgs), sim.Truth().Valid, prod.retries.Load(), back.Sub(stopAt).Round(100*time.Millisecond),
		down.Sub(stopAt).Round(100*time.Millisecond), back.Sub(startAt).Round(100*time.Millisecond),
		recovered.Sub(back).Round(100*time.Millisecond), done.Sub(back).Round(100*time.Millisecond),
		a.lost, a.doubled, a.alertsMissing, a.alertsExtra, a.alertMessages, a.alerts, a.alertRepeats,
		a.deadLetters, a.rejects, a.deadLetterRepeats, time.Since(began).Round(time.Second))
}

// drillInput is a simulated run as Kafka messages, and the ids of its
// distinct valid events (on time or late).
func drillInput(t *testing.T, cfg simulator.Config) (*simulator.Sim, []kafka.Message, map[string]bool) {
	t.Helper()
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	valid := map[string]bool{}
	for m, ok := sim.Next(); ok; m, ok = sim.Next() {
		msgs = append(msgs, kafka.Message{Key: m.Key, Value: m.Value})
		if m.Kind == simulator.KindValid || m.Kind == simulator.KindLate {
			valid[m.EventID] = true
		}
	}
	if int64(len(valid)) != sim.Truth().Valid {
		t.Fatalf("%d distinct valid ids, truth says %d", len(valid), sim.Truth().Valid)
	}
	return sim, msgs, valid
}

// drillProducer sends messages from a goroutine, keyed as a JVM producer
// would and acknowledged by all replicas, a chunk at a time, spread evenly
// over a duration. A chunk that fails (the broker is away) is sent again,
// only the messages that failed, until it goes through.
type drillProducer struct {
	sent    atomic.Int64
	retries atomic.Int64
	done    chan struct{}
	err     error
}

func drillProduce(t *testing.T, addr, topic string, msgs []kafka.Message, over time.Duration, chunk int) *drillProducer {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: chunk, BatchTimeout: time.Millisecond}
	p := &drillProducer{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		<-p.done
		w.Close()
	})
	chunks := (len(msgs) + chunk - 1) / chunk
	every := over / time.Duration(max(chunks, 1))
	go func() {
		defer close(p.done)
		next := time.Now()
		for i := 0; i < len(msgs); i += chunk {
			if wait := time.Until(next); wait > 0 {
				if !drillSleep(ctx, wait) {
					p.err = ctx.Err()
					return
				}
			}
			next = next.Add(every)
			part := msgs[i:min(i+chunk, len(msgs))]
			for {
				err := w.WriteMessages(ctx, part...)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					p.err = err
					return
				}
				var werr kafka.WriteErrors
				if errors.As(err, &werr) {
					var failed []kafka.Message
					for j, e := range werr {
						if e != nil {
							failed = append(failed, part[j])
						}
					}
					part = failed
				}
				p.retries.Add(1)
				drillSleep(ctx, 500*time.Millisecond)
			}
			p.sent.Add(int64(min(chunk, len(msgs)-i)))
			// a chunk held up (by an outage) does not make the ones after
			// it come in a burst: the pace goes on from now
			if now := time.Now(); now.After(next) {
				next = now
			}
		}
	}()
	return p
}

func (p *drillProducer) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *drillProducer) wait() error {
	<-p.done
	return p.err
}

// drillSleep waits d or until ctx ends; false if ctx ended.
func drillSleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// drillDump asks a stuck process for its goroutines (on SIGQUIT the Go
// runtime prints them and exits) and returns those in this module, and
// the log lines before them.
func drillDump(p *proc) string {
	if !drillExited(p) {
		p.cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
	}
	b, _ := os.ReadFile(p.log)
	log, stacks, _ := strings.Cut(string(b), "\ngoroutine ")
	var ours []string
	for _, g := range strings.Split("goroutine "+stacks, "\n\n") {
		if strings.Contains(g, "stakhanov/ingest") || strings.Contains(g, "stakhanov/app") {
			ours = append(ours, g)
		}
	}
	return tail(log, 3000) + "\n\n" + tail(strings.Join(ours, "\n\n"), 30000)
}

// drillMembers describes a consumer group's members as the coordinator
// sees them: id, client address and assigned partitions.
func drillMembers(ctx context.Context, c *kafka.Client, group string) string {
	res, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, g := range res.Groups {
		out = append(out, fmt.Sprintf("state %s", g.GroupState))
		for _, m := range g.Members {
			var parts []string
			for _, tp := range m.MemberAssignments.Topics {
				parts = append(parts, fmt.Sprintf("%s%v", tp.Topic, tp.Partitions))
			}
			out = append(out, fmt.Sprintf("%s (%s) %s", m.MemberID, m.ClientHost, strings.Join(parts, " ")))
		}
	}
	return strings.Join(out, "; ")
}

// drillExited says whether a started process has ended, reaped or not: a
// process that exits on its own stays a zombie until Wait.
func drillExited(p *proc) bool {
	if p.cmd.ProcessState != nil {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// drillKill SIGKILLs the process and reaps it; it fails the test if the
// process had ended on its own before.
func drillKill(t *testing.T, p *proc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		b, _ := os.ReadFile(p.log)
		t.Fatalf("%s had exited on its own (%v) before the kill:\n%s", p.name, p.cmd.ProcessState, tail(string(b), 4000))
	}
}

// drillAwait waits for a log line containing want and returns how long
// after since it came; it fails the test if the process exits or the line
// does not come in time.
func drillAwait(t *testing.T, p *proc, since time.Time, want string, timeout time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(p.log)
		if bytes.Contains(b, []byte(want)) {
			return time.Since(since)
		}
		if drillExited(p) {
			t.Fatalf("%s exited on its own before %q (a restart that cannot open the DuckDB file?):\n%s", p.name, want, tail(string(b), 4000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q within %s; its goroutines:\n%s", p.name, want, timeout, drillDump(p))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var drillRestoredLine = regexp.MustCompile(`msg="partition restored" partition=(\d+) .*next_offset=(-?\d+)`)

// drillRestored returns the input offset each partition's checkpoint let
// the process resume from (the first restore of each partition).
func drillRestored(t *testing.T, log string) map[int32]int64 {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for _, m := range drillRestoredLine.FindAllSubmatch(b, -1) {
		part, _ := strconv.Atoi(string(m[1]))
		next, _ := strconv.ParseInt(string(m[2]), 10, 64)
		if _, ok := out[int32(part)]; !ok {
			out[int32(part)] = max(next, 0) // -2: from the start of the log
		}
	}
	return out
}

// drillCommitted returns a group's committed offsets on topic (nil when
// the broker does not answer).
func drillCommitted(ctx context.Context, c *kafka.Client, group, topic string) map[int32]int64 {
	res, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2, 3, 4, 5, 6, 7}}})
	if err != nil || res.Error != nil {
		return nil
	}
	out := map[int32]int64{}
	for _, po := range res.Topics[topic] {
		if po.Error == nil && po.CommittedOffset >= 0 {
			out[int32(po.Partition)] = po.CommittedOffset
		}
	}
	return out
}

func drillEnd(t *testing.T, ctx context.Context, c *kafka.Client, topic string) map[int32]int64 {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; {
		_, end, err := ingest.EndOffsets(ctx, c, topic)
		if err == nil {
			return end
		}
		if time.Now().After(deadline) {
			t.Fatalf("end offsets of %s: %v", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func drillAtLeast(got, want map[int32]int64) bool {
	for p, e := range want {
		if e > 0 && got[p] < e {
			return false
		}
	}
	return true
}

func drillSum(m map[int32]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// drillAudited is what the audit of one run's outputs counted.
type drillAudited struct {
	shifts, alerts                        int
	lost, doubled, extra                  int // valid events missing from shifts; event ids twice; ids not in the input
	alertsMissing, alertsExtra            int // ids on the topic but not in the table, and the reverse
	alertMessages, alertRepeats           int
	rejects, deadLetters                  int
	deadLettersMissing, deadLetterRepeats int
}

// drillAudit checks one run's DuckDB tables (prefix: "" or "schema.")
// against the input and its alerts and dead-letter topics: every distinct
// valid event stored once, nothing else; the alert ids of the table and of
// the topic the same set; a dead letter for every reject.
func drillAudit(t *testing.T, db *sql.DB, prefix, addr, alerts, dlq string, valid map[string]bool) drillAudited {
	t.Helper()
	var a drillAudited
	ids := column(t, db, `SELECT event_id FROM `+prefix+`shifts`)
	a.shifts = len(ids)
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			a.doubled++
		}
		seen[id] = true
		if !valid[id] {
			a.extra++
		}
	}
	for id := range valid {
		if !seen[id] {
			a.lost++
		}
	}
	if a.lost > 0 || a.doubled > 0 || a.extra > 0 {
		t.Errorf("%sshifts: %d valid events lost, %d stored twice, %d not valid input", prefix, a.lost, a.doubled, a.extra)
	}

	topic := map[string]int{}
	for _, m := range readTopic(t, addr, alerts) {
		var al struct {
			ID string `json:"alert_id"`
		}
		if err := json.Unmarshal(m.Value, &al); err != nil {
			t.Fatal(err)
		}
		topic[al.ID]++
		a.alertMessages++
	}
	a.alertRepeats = a.alertMessages - len(topic)
	table := column(t, db, `SELECT alert_id FROM `+prefix+`alerts`)
	a.alerts = len(table)
	inTable := map[string]bool{}
	for _, id := range table {
		if inTable[id] {
			a.doubled++
		}
		inTable[id] = true
		if topic[id] == 0 {
			a.alertsExtra++
		}
	}
	for id := range topic {
		if !inTable[id] {
			a.alertsMissing++
		}
	}
	if a.alertsMissing > 0 || a.alertsExtra > 0 || len(table) == 0 {
		t.Errorf("%salerts: table %d ids, topic %d ids: %d missing from the table, %d not on the topic", prefix, len(table), len(topic), a.alertsMissing, a.alertsExtra)
	}

	letters := map[string]int{}
	for _, m := range readTopic(t, addr, dlq) {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		letters[h["source.partition"]+"/"+h["source.offset"]]++
		a.deadLetters++
	}
	a.deadLetterRepeats = a.deadLetters - len(letters)
	rejects := column(t, db, `SELECT kafka_partition || '/' || kafka_offset FROM `+prefix+`rejects`)
	a.rejects = len(rejects)
	for _, k := range rejects {
		if letters[k] == 0 {
			a.deadLettersMissing++
		}
	}
	if a.deadLettersMissing > 0 || len(letters) != len(rejects) {
		t.Errorf("%srejects: %d rows, %d distinct dead letters, %d rejects without one", prefix, len(rejects), len(letters), a.deadLettersMissing)
	}
	return a
}

// drillLine is one line of a process's log (slog's text format).
type drillLine struct {
	at               time.Time
	level, msg, text string
}

var (
	drillLineTime  = regexp.MustCompile(`^time=(\S+) level=(\S+) msg=("(?:[^"\\]|\\.)*"|\S+)`)
	drillLineWhere = regexp.MustCompile(` (partition|topic|group)=(\S+)`)
)

// task names what a warning is about: its message and the partition,
// topic or group it names.
func (l drillLine) task() string {
	k := l.msg
	for _, m := range drillLineWhere.FindAllStringSubmatch(l.text, -1) {
		k += " " + m[1] + "=" + m[2]
	}
	return k
}

func drillLog(t *testing.T, path string) []drillLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []drillLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := drillLineTime.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		msg := m[3]
		if s, err := strconv.Unquote(msg); err == nil {
			msg = s
		}
		out = append(out, drillLine{at: at, level: m[2], msg: msg, text: sc.Text()})
	}
	return out
}

// drillDir is where a drill keeps its logs and DuckDB files: a new
// directory under STAKHANOV_DRILL_DIR, kept afterwards, or a temporary one.
func drillDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("STAKHANOV_DRILL_DIR")
	if root == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(root, t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("logs and DuckDB files kept in %s", dir)
	return dir
}

func drillEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a whole number", name, s)
	}
	return n
}
