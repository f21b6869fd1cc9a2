package processors_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
	"github.com/stakhanov/stakhanov/simulator"
)

// BenchmarkProcess is the rules' cost per event, day closing included, in
// one partition with the events decoded up front: what a processor spends
// besides Kafka and the results codec.
//
//   - default: the simulator's default stream (24 plants, groups of 12).
//   - workers=N/in_order: one plant, one peer group of N workers, in the
//     simulator's order (within a slot's 90 minutes of disorder).
//   - workers=N/shuffled: the same shifts with each day's reports in a
//     random order (simulator.Config.ShuffleDays) — within the allowed
//     lateness, since a day stays open until stream time passes its end by
//     6 h. The shuffled rate must stay at least half the in-order one.
func BenchmarkProcess(b *testing.B) {
	b.Run("default", func(b *testing.B) {
		benchProcess(b, decodeAll(b, simulator.DefaultConfig()))
	})
	for _, c := range []struct{ workers, days int }{{1000, 36}, {5000, 31}} {
		name := "workers=" + strconv.Itoa(c.workers)
		for _, shuffled := range []bool{false, true} {
			cfg := bigGroup(c.workers, c.days)
			cfg.ShuffleDays = shuffled
			evs := decodeAll(b, cfg)
			b.Run(name+map[bool]string{false: "/in_order", true: "/shuffled"}[shuffled], func(b *testing.B) { benchProcess(b, evs) })
		}
	}
}

// bigGroup is one plant with one peer group of workers, over days.
func bigGroup(workers, days int) simulator.Config {
	c := simulator.DefaultConfig()
	c.Plants, c.Industries = 1, []string{"machine-building"}
	c.MinGroupsPerPlant, c.MaxGroupsPerPlant = 1, 1
	c.WorkersPerGroup, c.Days = workers, days
	c.Stakhanov = false
	c.DiscardTruth = true
	return c
}

func decodeAll(b *testing.B, c simulator.Config) []shift.Event {
	b.Helper()
	sim, err := simulator.New(c)
	if err != nil {
		b.Fatal(err)
	}
	var evs []shift.Event
	for m, ok := sim.Next(); ok; m, ok = sim.Next() {
		if ev, err := shift.Decode(m.Value); err == nil {
			evs = append(evs, ev)
		}
	}
	return evs
}

func benchProcess(b *testing.B, evs []shift.Event) {
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := processors.NewPartition(processors.DefaultOptions(), 0)
		if err != nil {
			b.Fatal(err)
		}
		var out processors.Output
		for i := range evs {
			if err := p.Process(&evs[i], processors.Input{Offset: int64(i)}, &out); err != nil && !errors.Is(err, processors.ErrDuplicate) {
				b.Fatal(err)
			}
			if len(out.Shifts) > 4096 {
				out.Reset()
			}
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}
