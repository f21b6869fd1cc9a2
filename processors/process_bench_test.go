package processors_test

import (
	"errors"
	"testing"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
	"github.com/stakhanov/stakhanov/simulator"
)

// BenchmarkProcess is the rules' cost per event, day closing included, over
// the simulator's default stream in one partition (decoded up front):
// what a processor spends besides Kafka and the results codec.
func BenchmarkProcess(b *testing.B) {
	sim, err := simulator.New(simulator.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	var evs []shift.Event
	for m, ok := sim.Next(); ok; m, ok = sim.Next() {
		if ev, err := shift.Decode(m.Value); err == nil {
			evs = append(evs, ev)
		}
	}
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
