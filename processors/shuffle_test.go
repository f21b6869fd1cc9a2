package processors_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
	"github.com/stakhanov/stakhanov/simulator"
)

// TestShuffledDays: a shop of 60 workers uploads each day's reports in a
// random order. Every shift is on time (a day stays open until stream
// time passes its end by the allowed lateness), and every norm is the rule
// read literally over the shifts read before it: the median and count of
// the rates of its group's earlier-read shifts that start in
// [start − 28 d, start).
func TestShuffledDays(t *testing.T) {
	cfg := simulator.DefaultConfig()
	cfg.Plants, cfg.Industries = 1, []string{"machine-building"}
	cfg.MinGroupsPerPlant, cfg.MaxGroupsPerPlant = 1, 1
	cfg.WorkersPerGroup, cfg.Days = 60, 40
	cfg.Stakhanov, cfg.ShuffleDays = false, true
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := processors.NewPartition(processors.DefaultOptions(), 0)
	if err != nil {
		t.Fatal(err)
	}
	const span = 28 * 86400
	type read struct {
		t    int64
		rate float64
	}
	held := map[shift.GroupKey][]read{}
	var out processors.Output
	shifts, maxBehind := 0, int64(0)
	stream := int64(math.MinInt64)
	for m, ok := sim.Next(); ok; m, ok = sim.Next() {
		ev, err := shift.Decode(m.Value)
		if err != nil || m.Kind == simulator.KindLate {
			continue
		}
		out.Reset()
		if err := p.Process(&ev, processors.Input{Offset: int64(m.Index)}, &out); errors.Is(err, processors.ErrDuplicate) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		s := out.Shifts[0]
		start := ev.ShiftStart.Unix()
		if stream != math.MinInt64 {
			maxBehind = max(maxBehind, stream-start)
		}
		stream = max(stream, start)
		if s.Late || out.TooLate > 0 {
			t.Fatalf("%s (start %v) late in a shuffled day", ev.EventID, ev.ShiftStart)
		}
		var rates []float64
		for _, r := range held[ev.Group()] {
			if r.t >= start-span && r.t < start {
				rates = append(rates, r.rate)
			}
		}
		slices.Sort(rates)
		if s.Norm.Count != len(rates) {
			t.Fatalf("%s: norm over %d shifts, want %d", ev.EventID, s.Norm.Count, len(rates))
		}
		if len(rates) > 0 {
			want := rates[len(rates)/2]
			if len(rates)%2 == 0 {
				want = (rates[len(rates)/2-1] + want) / 2
			}
			if s.Norm.Median != want {
				t.Fatalf("%s: norm %v, want %v", ev.EventID, s.Norm.Median, want)
			}
		}
		held[ev.Group()] = append(held[ev.Group()], read{start, s.Rate})
		shifts++
	}
	if maxBehind < 12*3600 {
		t.Fatalf("at most %d s of disorder: not shuffled", maxBehind)
	}
	t.Logf("%d shifts, up to %.1f h behind stream time", shifts, float64(maxBehind)/3600)
}
