package processors

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/shift"
)

// stream makes a partition's worth of events: several plants and groups,
// starts out of order within hours, a few late reports, repeats and bursts.
func stream(seed uint64, n int) []shift.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	t0 := time.Date(1935, 6, 1, 6, 0, 0, 0, time.UTC)
	var evs []shift.Event
	now := t0
	for i := 0; len(evs) < n; i++ {
		now = now.Add(time.Duration(rng.IntN(40)) * time.Minute)
		start := now.Add(-time.Duration(rng.IntN(180)) * time.Minute)
		if rng.IntN(100) == 0 {
			start = start.Add(-time.Duration(30+rng.IntN(24*40)) * time.Hour) // late
		}
		if rng.IntN(60) == 0 && len(evs) > 0 {
			evs = append(evs, evs[rng.IntN(len(evs))]) // repeat
			continue
		}
		plant := fmt.Sprintf("p%d", rng.IntN(3))
		w := rng.IntN(12)
		out := 10 + float64(w%4) + rng.Float64()
		if rng.IntN(300) == 0 {
			out *= 5
		}
		if w < 2 && rng.IntN(3) == 0 {
			out *= 2
		}
		scrap := 0.0
		if rng.IntN(4) == 0 {
			scrap = out * rng.Float64() * 0.2
		}
		evs = append(evs, shift.Event{
			EventID: fmt.Sprintf("e%d", i), PlantID: plant, Industry: "coal", Role: []string{"hewer", "loader"}[rng.IntN(2)],
			WorkerID: fmt.Sprintf("w%d", w), CrewSize: 1 + rng.IntN(3), ShiftStart: start,
			ShiftHours: []float64{6, 8}[rng.IntN(2)], Output: out * 6, Unit: "t", Scrap: scrap,
		})
	}
	return evs
}

// processLogged is process with each record written two hours after its
// shift starts: a plant reporting at the end of its shifts.
func processLogged(t testing.TB, p *Partition, evs []shift.Event, from int64, out *Output) {
	for i := range evs {
		ev := evs[i]
		in := Input{Offset: from + int64(i), LogTime: ev.ShiftStart.Add(2 * time.Hour)}
		if err := p.Process(&ev, in, out); err != nil && !errors.Is(err, ErrDuplicate) {
			t.Fatal(err)
		}
	}
}

func process(t testing.TB, p *Partition, evs []shift.Event, from int64, out *Output) {
	for i := range evs {
		ev := evs[i]
		if err := p.Process(&ev, Input{Offset: from + int64(i)}, out); err != nil && !errors.Is(err, ErrDuplicate) {
			t.Fatal(err)
		}
	}
}

func sameShift(a, b Shift) bool {
	f := func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }
	return a.EventID == b.EventID && a.Offset == b.Offset && a.Late == b.Late && a.Norm.Count == b.Norm.Count &&
		f(a.Norm.Median, b.Norm.Median) && f(a.Norm.P90, b.Norm.P90) && f(a.Norm.MAD, b.Norm.MAD) &&
		f(a.Norm.Mean, b.Norm.Mean) && f(a.Norm.Bulk, b.Norm.Bulk) && f(a.Ratio, b.Ratio) &&
		f(a.CrewNorm, b.CrewNorm) && f(a.CrewRatio, b.CrewRatio)
}

// TestStreamTimeIsPerPlant: a historic plant sharing a partition with a
// modern one is judged by its own clock, and the modern plant by its own.
func TestStreamTimeIsPerPlant(t *testing.T) {
	modern := shift.Event{EventID: "m1", PlantID: "zil", Industry: "automotive", Role: "assembly-brigade", WorkerID: "b1",
		CrewSize: 12, ShiftStart: time.Date(1938, 5, 1, 8, 0, 0, 0, time.UTC), ShiftHours: 8, Output: 40, Unit: "cars"}
	historic := shift.Event{EventID: "h1", PlantID: "irmino", Industry: "coal", Role: "hewer", WorkerID: "a.stakhanov",
		CrewSize: 1, ShiftStart: time.Date(1935, 8, 30, 22, 0, 0, 0, time.UTC), ShiftHours: 6, Output: 102, Unit: "t"}

	shared, _ := NewPartition(DefaultOptions(), 0)
	var out Output
	for i, ev := range []*shift.Event{&modern, &historic} {
		if err := shared.Process(ev, Input{Offset: int64(i)}, &out); err != nil {
			t.Fatal(err)
		}
	}
	if out.Shifts[1].Late {
		t.Fatal("a 1935 shift of its own plant is on time beside a 1938 plant")
	}
	for plant, want := range map[string]time.Time{"zil": modern.ShiftStart, "irmino": historic.ShiftStart} {
		if got, ok := shared.PlantStreamTime(plant); !ok || !got.Equal(want) {
			t.Fatalf("%s stream time %v, want %v", plant, got, want)
		}
	}
	if got := shared.StreamTime(); !got.Equal(modern.ShiftStart) {
		t.Fatalf("partition stream time %v, want the latest plant's", got)
	}
	if _, ok := shared.PlantStreamTime("nowhere"); ok {
		t.Fatal("a stream time for a plant never seen")
	}
}

// TestStateIsBounded: a stream of ever-new workers and plants keeps state
// proportional to the retention span, not to the distinct ids seen: each
// plant prunes its own state as its clock moves, and a plant that falls
// silent in the log's time is forgotten (its state after one retention
// span of silence, itself after two).
func TestStateIsBounded(t *testing.T) {
	opts := DefaultOptions()
	p, _ := NewPartition(opts, 0)
	var out Output
	start := time.Date(1935, 1, 1, 6, 0, 0, 0, time.UTC)
	perDay := 200
	days := 200
	peak := Stats{}
	for d := 0; d < days; d++ {
		for i := 0; i < perDay; i++ {
			id := fmt.Sprintf("d%d-%d", d, i)
			at := start.Add(time.Duration(d) * 24 * time.Hour)
			ev := shift.Event{EventID: id, PlantID: "plant-" + id, Industry: "x", Role: "r", WorkerID: "w-" + id,
				CrewSize: 1, ShiftStart: at, ShiftHours: 8, Output: 8, Unit: "u"}
			_ = p.Process(&ev, Input{Offset: int64(d*perDay + i), LogTime: at.Add(time.Hour)}, &out)
		}
		out.Reset()
		st := p.Stats()
		peak.Plants, peak.WindowShifts = max(peak.Plants, st.Plants), max(peak.WindowShifts, st.WindowShifts)
		peak.RememberedIDs, peak.OpenDays = max(peak.RememberedIDs, st.RememberedIDs), max(peak.OpenDays, st.OpenDays)
	}
	retentionDays := int(opts.Retention().Hours()/24) + 2
	idleDays := int(opts.IdleClose.Hours()/24) + 2
	if peak.WindowShifts > retentionDays*perDay || peak.RememberedIDs > retentionDays*perDay ||
		peak.Plants > 2*retentionDays*perDay || peak.OpenDays > idleDays*perDay {
		t.Fatalf("state not bounded: peak %+v (bounds %d held, %d plants, %d open days)", peak, retentionDays*perDay, 2*retentionDays*perDay, idleDays*perDay)
	}
	if peak.Plants < 2*(retentionDays-2)*perDay {
		t.Fatalf("peak %+v: plants were dropped before two retention spans of silence", peak)
	}
}

// TestUncheckedShifts: a repeat is recognised while its event id is within
// the retention span; past it the shift is marked Unchecked (and Late), so
// that the store checks it, and nothing newer is.
func TestUncheckedShifts(t *testing.T) {
	opts := DefaultOptions()
	base := time.Date(1935, 8, 1, 22, 0, 0, 0, time.UTC)
	at := func(id string, start time.Time) shift.Event {
		return shift.Event{EventID: id, PlantID: "irmino", Industry: "coal", Role: "hewer", WorkerID: "w-" + id,
			CrewSize: 1, ShiftStart: start, ShiftHours: 6, Output: 14, Unit: "t"}
	}
	tests := []struct {
		name          string
		now           time.Time // stream time reached before the last event
		last          shift.Event
		duplicate     bool
		late, uncheck bool
	}{
		{"repeat within retention", base.Add(opts.Retention() - time.Hour), at("a", base), true, false, false},
		// the edges: an id is remembered while its start ≥ stream time −
		// retention, and a shift is checked likewise
		{"repeat at the retention edge", base.Add(opts.Retention()), at("a", base), true, false, false},
		{"repeat 1 s past the edge", base.Add(opts.Retention() + time.Second), at("a", base), false, true, true},
		// no day closes between the last two stream times (days close at
		// 06:00, the edge is at 04:00), so no sweep has dropped the id:
		// the answer must not depend on when the sweep runs
		{"repeat 1 s past the edge, not yet swept", base.Add(opts.Retention() + time.Second), at("a", base), false, true, true},
		{"new shift at the edge", base.Add(opts.Retention()), at("b", base), false, true, false},
		{"new shift 1 s past the edge", base.Add(opts.Retention() + time.Second), at("b", base), false, true, true},
		{"repeat past retention", base.Add(opts.Retention() + time.Hour), at("a", base), false, true, true},
		{"new shift past retention", base.Add(opts.Retention() + time.Hour), at("b", base), false, true, true},
		{"late within retention", base.Add(opts.Window + 2*24*time.Hour), at("b", base.Add(24*time.Hour)), false, true, false},
		{"on time", base.Add(24 * time.Hour), at("b", base.Add(24*time.Hour+time.Minute)), false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := NewPartition(opts, 0)
			var out Output
			first, clock, last := at("a", base), at("clock", tt.now), tt.last
			evs := []*shift.Event{&first, &clock}
			if strings.HasSuffix(tt.name, "not yet swept") {
				// stream time an hour before the edge: days close and sweep
				early := at("early", tt.now.Add(-time.Hour-time.Second))
				evs = []*shift.Event{&first, &early, &clock}
			}
			for i, ev := range evs {
				if err := p.Process(ev, Input{Offset: int64(i)}, &out); err != nil {
					t.Fatal(err)
				}
			}
			out.Reset()
			err := p.Process(&last, Input{Offset: 2}, &out)
			if tt.duplicate {
				if !errors.Is(err, ErrDuplicate) || len(out.Shifts) != 0 {
					t.Fatalf("err %v and %d shifts, want ErrDuplicate and none", err, len(out.Shifts))
				}
				return
			}
			if err != nil || len(out.Shifts) != 1 {
				t.Fatalf("err %v and %d shifts, want one shift", err, len(out.Shifts))
			}
			if s := out.Shifts[0]; s.Late != tt.late || s.Unchecked != tt.uncheck {
				t.Fatalf("Late %v Unchecked %v, want %v %v", s.Late, s.Unchecked, tt.late, tt.uncheck)
			}
		})
	}
}
