package processors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stakhanov/stakhanov/shift"
)

func snapshotOpts() Options {
	opts := DefaultOptions()
	opts.Window = 10 * 24 * time.Hour // shorter, so that retention is crossed often
	opts.RecordMinShifts = 5
	opts.PaceMinWorkers = 4
	return opts
}

// checkContinuation compares what a processor emitted after a hand-over
// with what the uninterrupted one emitted from the same point on.
func checkContinuation(t *testing.T, all, before, after *Output) {
	t.Helper()
	wantShifts := all.Shifts[len(before.Shifts):]
	if len(after.Shifts) != len(wantShifts) {
		t.Fatalf("%d shifts after hand-over, want %d", len(after.Shifts), len(wantShifts))
	}
	for i := range after.Shifts {
		if !sameShift(after.Shifts[i], wantShifts[i]) || after.Shifts[i].Partition != wantShifts[i].Partition {
			t.Fatalf("shift %d differs:\n got %+v\nwant %+v", i, after.Shifts[i], wantShifts[i])
		}
	}
	wantAlerts := all.Alerts[len(before.Alerts):]
	if len(after.Alerts) != len(wantAlerts) || (len(wantAlerts) > 0 && !reflect.DeepEqual(after.Alerts, wantAlerts)) {
		t.Fatalf("alerts differ after hand-over: %d vs %d", len(after.Alerts), len(wantAlerts))
	}
	wantNorms := all.Norms[len(before.Norms):]
	if len(after.Norms) != len(wantNorms) {
		t.Fatalf("%d daily norms after hand-over, want %d", len(after.Norms), len(wantNorms))
	}
	for i := range after.Norms {
		a, w := after.Norms[i], wantNorms[i]
		if a.Group != w.Group || a.Day != w.Day || !sameShift(Shift{Norm: a.Norm}, Shift{Norm: w.Norm}) {
			t.Fatalf("daily norm %d differs:\n got %+v\nwant %+v", i, a, w)
		}
	}
	if before.Duplicates+after.Duplicates != all.Duplicates {
		t.Fatalf("duplicates %d+%d, want %d", before.Duplicates, after.Duplicates, all.Duplicates)
	}
}

func loaded(t testing.TB, opts Options, part int32, snap []byte) *Partition {
	t.Helper()
	p, err := NewPartition(opts, part)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := p.LoadSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) > 0 {
		t.Fatalf("loaded under the same options, yet changes %q", changed)
	}
	return p
}

// TestSnapshotMatchesUninterrupted cuts a stream at several points, hands
// the partition over through a snapshot, and checks that everything after
// the cut — shifts with their norms, alerts, daily norms, duplicates —
// equals the uninterrupted run's, and that both end in the same state.
func TestSnapshotMatchesUninterrupted(t *testing.T) {
	opts := snapshotOpts()
	for _, seed := range []uint64{1, 2} {
		evs := stream(seed, 6000)
		full, _ := NewPartition(opts, 3)
		var all Output
		process(t, full, evs, 0, &all)
		if len(all.Alerts) == 0 || all.Duplicates == 0 || len(all.Norms) == 0 {
			t.Fatalf("stream too tame: %d alerts, %d duplicates", len(all.Alerts), all.Duplicates)
		}
		final := full.AppendSnapshot(nil)

		for _, cut := range []int{0, 1, 500, 2500, 4999, 5999, 6000} {
			t.Run(fmt.Sprintf("seed%d/%d", seed, cut), func(t *testing.T) {
				first, _ := NewPartition(opts, 3)
				var before Output
				process(t, first, evs[:cut], 0, &before)
				snap := first.AppendSnapshot(nil)
				if again := first.AppendSnapshot(nil); !bytes.Equal(again, snap) {
					t.Fatal("two snapshots of one state differ")
				}

				next := loaded(t, opts, 3, snap)
				if again := next.AppendSnapshot(nil); !bytes.Equal(again, snap) {
					t.Fatalf("snapshot of the loaded partition differs: %d bytes vs %d", len(again), len(snap))
				}
				if next.Stats() != first.Stats() || !next.StreamTime().Equal(first.StreamTime()) {
					t.Fatalf("loaded %+v at %v, saved %+v at %v", next.Stats(), next.StreamTime(), first.Stats(), first.StreamTime())
				}
				var after Output
				process(t, next, evs[cut:], int64(cut), &after)
				checkContinuation(t, &all, &before, &after)
				if end := next.AppendSnapshot(nil); !bytes.Equal(end, final) {
					t.Fatal("state after the hand-over differs from the uninterrupted run's")
				}
			})
		}
	}
}

// TestSnapshotChainedHandovers hands one stream over from process to
// process many times, each starting from the last one's snapshot.
func TestSnapshotChainedHandovers(t *testing.T) {
	opts := snapshotOpts()
	evs := stream(5, 6000)
	full, _ := NewPartition(opts, 0)
	var all Output
	process(t, full, evs, 0, &all)

	var got Output
	p, _ := NewPartition(opts, 0)
	for from := 0; from < len(evs); {
		to := min(from+1+from%997, len(evs))
		process(t, p, evs[from:to], int64(from), &got)
		p = loaded(t, opts, 0, p.AppendSnapshot(nil))
		from = to
	}
	checkContinuation(t, &all, &Output{}, &got)
	if !bytes.Equal(p.AppendSnapshot(nil), full.AppendSnapshot(nil)) {
		t.Fatal("final state differs")
	}
}

func TestSnapshotAppends(t *testing.T) {
	p, _ := NewPartition(snapshotOpts(), 0)
	var out Output
	process(t, p, stream(1, 300), 0, &out)
	snap := p.AppendSnapshot(nil)
	prefix := []byte("chunk header")
	got := p.AppendSnapshot(bytes.Clone(prefix))
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], snap) {
		t.Fatal("AppendSnapshot does not append")
	}
	loaded(t, snapshotOpts(), 0, got[len(prefix):])
}

// TestSnapshotInterns: a loaded partition holds each plant, role, unit and
// industry once.
func TestSnapshotInterns(t *testing.T) {
	p, _ := NewPartition(snapshotOpts(), 0)
	var out Output
	process(t, p, stream(1, 3000), 0, &out)
	q := loaded(t, snapshotOpts(), 0, p.AppendSnapshot(nil))
	data := map[string]*byte{}
	same := func(s string) {
		if d, ok := data[s]; ok && d != unsafe.StringData(s) {
			t.Fatalf("%q held twice", s)
		}
		data[s] = unsafe.StringData(s)
	}
	for id, pl := range q.plants {
		same(id)
		same(pl.id)
		for k := range pl.groups {
			same(k.PlantID)
			same(k.Role)
			same(k.Unit)
		}
		for _, d := range pl.days {
			for k, dg := range d.groups {
				same(k.PlantID)
				same(dg.industry)
			}
		}
	}
	for s, v := range q.strings {
		if s != v {
			t.Fatal("intern map broken")
		}
		same(v)
	}
	ev := stream(9, 1)[0]
	q.internEvent(&ev)
	if unsafe.StringData(ev.PlantID) != data[ev.PlantID] {
		t.Fatal("a new event's plant is not shared with the loaded state")
	}
}

// optionChanges changes each option to another valid value.
var optionChanges = map[string]func(*Options){
	"window":                func(o *Options) { o.Window += time.Hour },
	"lateness":              func(o *Options) { o.AllowedLateness += time.Second },
	"idle_close":            func(o *Options) { o.IdleClose += time.Second },
	"future_margin":         func(o *Options) { o.FutureMargin += time.Second },
	"record_min_shifts":     func(o *Options) { o.RecordMinShifts++ },
	"record_ratio":          func(o *Options) { o.RecordRatio += 1e-9 },
	"suspect_scrap_share":   func(o *Options) { o.SuspectScrapShare += 0.01 },
	"pace_min_workers":      func(o *Options) { o.PaceMinWorkers++ },
	"pace_setter_ratio":     func(o *Options) { o.PaceSetterRatio += 0.1 },
	"common_pace_tolerance": func(o *Options) { o.CommonPaceTolerance += 0.01 },
	"common_pace_share":     func(o *Options) { o.CommonPaceShare -= 0.1 },
}

// TestSnapshotOptionsChanged: a snapshot loads under other options, which
// apply from the next event on, and LoadSnapshot names each that changed;
// only a snapshot of another partition is refused.
func TestSnapshotOptionsChanged(t *testing.T) {
	opts := snapshotOpts()
	p, _ := NewPartition(opts, 2)
	var out Output
	process(t, p, stream(1, 1000), 0, &out)
	snap := p.AppendSnapshot(nil)
	tail := stream(3, 300)

	for _, param := range opts.Params() {
		change, ok := optionChanges[param.Key]
		if !ok {
			t.Errorf("option %s: add a change of it to optionChanges", param.Key)
			continue
		}
		t.Run(param.Key, func(t *testing.T) {
			o := opts
			change(&o)
			q, err := NewPartition(o, 2)
			if err != nil {
				t.Fatal(err)
			}
			changed, err := q.LoadSnapshot(snap)
			if err != nil {
				t.Fatal(err)
			}
			if len(changed) != 1 || !strings.HasPrefix(changed[0], param.Key+": ") {
				t.Fatalf("changes %q, want one naming %s", changed, param.Key)
			}
			if q.opts != o {
				t.Fatal("the partition does not run under its own options")
			}
			var out Output
			process(t, q, tail, 1000, &out)
		})
	}
	t.Run("two", func(t *testing.T) {
		o := opts
		o.Window = 28 * 24 * time.Hour
		o.PaceSetterRatio = 2
		q, _ := NewPartition(o, 2)
		changed, err := q.LoadSnapshot(snap)
		want := []string{"window: 240h0m0s in snapshot → 672h0m0s", "pace_setter_ratio: 1.5 in snapshot → 2"}
		if err != nil || !slices.Equal(changed, want) {
			t.Fatalf("changes %q (%v), want %q", changed, err, want)
		}
	})
	t.Run("partition", func(t *testing.T) {
		q, _ := NewPartition(opts, 5)
		_, err := q.LoadSnapshot(snap)
		if !errors.Is(err, ErrSnapshotOptions) || !strings.Contains(err.Error(), "partition 2 in snapshot, 5 here") {
			t.Fatalf("got %v, want ErrSnapshotOptions naming the partitions", err)
		}
		if q.Stats() != (Stats{}) || !q.StreamTime().IsZero() {
			t.Fatal("a refused snapshot changed the partition")
		}
	})
	loaded(t, opts, 2, snap) // and the same options load, with no changes
}

func testSnapshot(t testing.TB, n int) []byte {
	p, _ := NewPartition(snapshotOpts(), 0)
	var out Output
	process(t, p, stream(1, n), 0, &out)
	return p.AppendSnapshot(nil)
}

// isSnapshotError: every failure is classified.
func isSnapshotError(err error) bool {
	return errors.Is(err, ErrSnapshotCorrupt) || errors.Is(err, ErrSnapshotVersion) || errors.Is(err, ErrSnapshotOptions)
}

func TestSnapshotCorruption(t *testing.T) {
	snap := testSnapshot(t, 2500)
	t.Logf("snapshot of %d bytes", len(snap))
	p, _ := NewPartition(snapshotOpts(), 0)
	for i := range len(snap) {
		if _, err := p.LoadSnapshot(snap[:i]); !errors.Is(err, ErrSnapshotCorrupt) {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
	}
	if _, err := p.LoadSnapshot(append(bytes.Clone(snap), 0)); !errors.Is(err, ErrSnapshotCorrupt) {
		t.Fatalf("trailing byte: %v", err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b := bytes.Clone(snap)
	for i := range b {
		for range 2 {
			mask := byte(1 + rng.IntN(255))
			b[i] ^= mask
			_, err := p.LoadSnapshot(b)
			b[i] ^= mask
			want := ErrSnapshotCorrupt
			if i == len(snapshotMagic) {
				want = ErrSnapshotVersion
			}
			if !errors.Is(err, want) {
				t.Fatalf("byte %d ^ %#x: %v, want %v", i, mask, err, want)
			}
		}
	}
	if p.Stats() != (Stats{}) || !p.StreamTime().IsZero() {
		t.Fatal("a refused snapshot changed the partition")
	}
	b[len(snapshotMagic)] = snapshotVersion + 1
	if _, err := p.LoadSnapshot(b); !errors.Is(err, ErrSnapshotVersion) {
		t.Fatalf("next version: %v", err)
	}
}

// withCRC returns b with its last four bytes replaced by the checksum of
// the rest: what a corruption that kept its checksum looks like.
func withCRC(b []byte) []byte {
	if len(b) < 4 {
		return b
	}
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	return b
}

// loadAny loads b, which may be anything, and checks what must hold
// whether it loads or not.
func loadAny(t *testing.T, b []byte, tail []shift.Event) {
	opts := snapshotOpts()
	p, _ := NewPartition(opts, 0)
	if _, err := p.LoadSnapshot(b); err != nil {
		if !isSnapshotError(err) {
			t.Fatalf("unclassified error %v", err)
		}
		if p.Stats() != (Stats{}) || !p.StreamTime().IsZero() {
			t.Fatal("a refused snapshot changed the partition")
		}
		return
	}
	// whatever loaded is a state: its snapshot loads back to itself
	s1 := p.AppendSnapshot(nil)
	q := loaded(t, opts, 0, s1)
	if s2 := q.AppendSnapshot(nil); !bytes.Equal(s1, s2) {
		t.Fatal("snapshot of a loaded state is not stable")
	}
	var out Output
	process(t, q, tail, 0, &out)
}

// TestSnapshotCorruptionWithValidCRC: content damaged behind a valid
// checksum is refused or loads a usable state; never a panic.
func TestSnapshotCorruptionWithValidCRC(t *testing.T) {
	snap := testSnapshot(t, 400)
	t.Logf("snapshot of %d bytes", len(snap))
	tail := stream(3, 100)
	rng := rand.New(rand.NewPCG(3, 4))
	b := bytes.Clone(snap)
	for range 1000 {
		i := rng.IntN(len(b) - 4)
		mask := byte(1 + rng.IntN(255))
		b[i] ^= mask
		loadAny(t, withCRC(b), tail)
		b[i] ^= mask
	}
	for range 300 {
		i := rng.IntN(len(b) - 4)
		loadAny(t, withCRC(append(bytes.Clone(snap[:i]), 0, 0, 0, 0)), tail)
	}
}

func FuzzLoadSnapshot(f *testing.F) {
	empty, _ := NewPartition(snapshotOpts(), 0)
	f.Add(testSnapshot(f, 300))
	f.Add(empty.AppendSnapshot(nil))
	f.Add([]byte{})
	f.Add([]byte(snapshotMagic))
	f.Add([]byte(snapshotMagic + "\x01"))
	f.Add([]byte(snapshotMagic + "\x02garbage"))
	f.Add([]byte("garbage, not a snapshot at all"))
	tail := stream(3, 50)
	f.Fuzz(func(t *testing.T, b []byte) {
		loadAny(t, b, tail)
		loadAny(t, withCRC(b), tail)
	})
}

// dense feeds p shifts of groups peer groups with workers workers each,
// every day in [from, to): a third of the workers on each of three shifts,
// starts scattered over half an hour. It returns the number of shifts. The
// output goes to out, or is dropped day by day when out is nil.
func dense(t testing.TB, p *Partition, out *Output, groups, workers, from, to int) int {
	rng := rand.New(rand.NewPCG(uint64(groups), uint64(from)))
	t0 := time.Date(1936, 1, 1, 0, 0, 0, 0, time.UTC)
	units := []string{"t", "m3", "pcs", "m"}
	drop := out == nil
	if drop {
		out = &Output{}
	}
	n := 0
	for d := from; d < to; d++ {
		for s, h := range []int{6, 14, 22} {
			for g := range groups {
				plant := "plant-" + strconv.Itoa(g/20)
				role := "role-" + strconv.Itoa(g%20/4)
				for w := s; w < workers; w += 3 {
					ev := shift.Event{
						EventID: "d" + strconv.Itoa(d) + "-g" + strconv.Itoa(g) + "-w" + strconv.Itoa(w),
						PlantID: plant, Industry: "industry-" + strconv.Itoa(g%7), Role: role,
						WorkerID: "worker-" + strconv.Itoa(g) + "-" + strconv.Itoa(w), CrewSize: 1 + g%3,
						ShiftStart: t0.Add(time.Duration(d*24+h)*time.Hour + time.Duration(rng.IntN(30))*time.Minute),
						ShiftHours: 8, Output: 8 * (30 + 20*rng.Float64()), Unit: units[g%4],
					}
					if err := p.Process(&ev, Input{Offset: int64(n)}, out); err != nil {
						t.Fatal(err)
					}
					n++
				}
			}
		}
		if drop {
			out.Reset()
		}
	}
	return n
}

// TestSnapshotSize builds ~50,000 shifts of state in one partition and
// checks the snapshot's size, and that the loaded state goes on exactly as
// the original.
func TestSnapshotSize(t *testing.T) {
	opts := DefaultOptions()
	p, _ := NewPartition(opts, 0)
	n := dense(t, p, nil, 50, 36, 0, 28)
	if st := p.Stats(); st.WindowShifts != n || st.RememberedIDs != n {
		t.Fatalf("state %+v, want %d shifts", st, n)
	}
	start := time.Now()
	snap := p.AppendSnapshot(nil)
	took := time.Since(start)
	start = time.Now()
	q := loaded(t, opts, 0, snap)
	tookLoad := time.Since(start)
	perShift := float64(len(snap)) / float64(n)
	t.Logf("%d shifts: %d bytes, %.1f bytes/shift; snapshot %v, load %v", n, len(snap), perShift, took, tookLoad)
	if perShift > 30 {
		t.Errorf("%.1f bytes per shift", perShift)
	}
	if !bytes.Equal(q.AppendSnapshot(nil), snap) {
		t.Fatal("snapshot of the loaded partition differs")
	}
	var all, after Output
	// the next days, on both
	dense(t, p, &all, 50, 36, 28, 30)
	dense(t, q, &after, 50, 36, 28, 30)
	if !bytes.Equal(q.AppendSnapshot(nil), p.AppendSnapshot(nil)) {
		t.Fatal("states differ after two more days")
	}
	checkContinuation(t, &all, &Output{}, &after)
}

// BenchmarkSnapshot builds state of ~1,000,000 shifts in one partition (1000
// peer groups of 36 workers, 28 days) and times AppendSnapshot and
// LoadSnapshot of it.
func BenchmarkSnapshot(b *testing.B) {
	opts := DefaultOptions()
	p, _ := NewPartition(opts, 0)
	n := dense(b, p, nil, 1000, 36, 0, 28)
	if st := p.Stats(); st.WindowShifts != n {
		b.Fatalf("state %+v, want %d shifts", st, n)
	}
	snap := p.AppendSnapshot(nil)
	b.Logf("%d shifts: %d bytes, %.2f bytes/shift", n, len(snap), float64(len(snap))/float64(n))
	b.Run("Append", func(b *testing.B) {
		buf := make([]byte, 0, len(snap))
		for b.Loop() {
			buf = p.AppendSnapshot(buf[:0])
		}
		b.SetBytes(int64(len(snap)))
		b.ReportMetric(float64(len(snap)), "snapshot-B")
		b.ReportMetric(float64(len(snap))/float64(n), "B/shift")
	})
	b.Run("Load", func(b *testing.B) {
		for b.Loop() {
			q, _ := NewPartition(opts, 0)
			if _, err := q.LoadSnapshot(snap); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(snap)))
	})
}

func TestSortIDs(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	const across = 1<<33 + 6
	for _, span := range []int64{1, 100, 3_000_000, 1 << 40, -1, across} {
		for _, n := range []int{0, 1, 1000, 1024, 5000} {
			base := int64(-2_000_000_000)
			if span == across {
				// across 1970, from −2³² to 2³² + 5: starts of both
				// signs, whose sum is small and whose span is not
				base = -1 << 32
			}
			ids := make([]idAt, n)
			for i := range ids {
				ids[i] = idAt{t: base + rng.Int64N(max(span, 1)), h: rng.Uint64()}
				if span == -1 { // anything at all
					ids[i].t = int64(rng.Uint64())
				}
				if i > 0 && rng.IntN(4) == 0 {
					ids[i].h = ids[i-1].h // equal hashes of other starts
				}
			}
			if span == across && n > 1 {
				ids[0].t, ids[n-1].t = base, base+span-1
			}
			want := slices.Clone(ids)
			slices.SortFunc(want, func(a, b idAt) int {
				if a.t != b.t {
					return cmp.Compare(a.t, b.t)
				}
				return cmp.Compare(a.h, b.h)
			})
			if got := sortIDs(ids); !slices.Equal(got, want) {
				t.Fatalf("span %d, %d ids: misordered", span, n)
			}
		}
	}
}

func TestSnapshotStreamTime(t *testing.T) {
	opts := snapshotOpts()
	evs := stream(1, 500)
	tests := []struct {
		name string
		n    int // events processed first
	}{{"before any shift", 0}, {"after one", 1}, {"after many", 500}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := NewPartition(opts, 3)
			var out Output
			process(t, p, evs[:tt.n], 0, &out)
			got, ok, err := SnapshotStreamTime(p.AppendSnapshot(nil))
			if err != nil {
				t.Fatal(err)
			}
			if ok != (tt.n > 0) || ok && !got.Equal(p.StreamTime()) {
				t.Fatalf("stream time %v (%v), want %v", got, ok, p.StreamTime())
			}
		})
	}
	snap := testSnapshot(t, 10)
	snap[len(snap)/2] ^= 0xff
	if _, _, err := SnapshotStreamTime(snap); !errors.Is(err, ErrSnapshotCorrupt) {
		t.Errorf("damaged snapshot: %v", err)
	}
}
