package norms

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// bruteNorm is the rule read literally: every held shift with start in
// [t − span, t), sorted afresh.
func bruteNorm(es []entry, t, span int64, tol float64) (Norm, float64) {
	var r, c []float64
	for _, e := range es {
		if e.t >= t-span && e.t < t {
			r = append(r, e.rate)
			c = append(c, e.crew)
		}
	}
	slices.Sort(r)
	slices.Sort(c)
	return Summarize(r, tol), Median(c)
}

func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

func sameNorm(a, b Norm) bool {
	return a.Count == b.Count && sameFloat(a.Median, b.Median) && sameFloat(a.P90, b.P90) &&
		sameFloat(a.MAD, b.MAD) && sameFloat(a.Bulk, b.Bulk) && math.Abs(a.Mean-b.Mean) <= 1e-9*math.Abs(b.Mean) ||
		(a.Count == 0 && b.Count == 0)
}

// TestWindowMatchesBruteForce drives windows with streams that are mostly in
// order, sometimes out of order, sometimes far behind, with pruning, and
// checks every answer against the literal rule.
func TestWindowMatchesBruteForce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		jitter   int64 // how far out of order starts may be
		lateProb float64
		jump     float64 // chance of a long gap
	}{
		{"in order", 0, 0, 0},
		{"jitter", 3 * 3600, 0, 0},
		{"late and gaps", 6 * 3600, 0.05, 0.02},
		{"ties only", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			const span = 28 * 86400
			w := NewWindow(span, 0.1)
			var held []entry
			now := int64(0)
			for i := 0; i < 4000; i++ {
				if tc.name != "ties only" || i%25 == 0 {
					now += int64(rng.IntN(8 * 3600))
				}
				if rng.Float64() < tc.jump {
					now += int64(rng.IntN(40 * 86400))
				}
				ts := now
				if tc.jitter > 0 {
					ts -= rng.Int64N(tc.jitter)
				}
				if rng.Float64() < tc.lateProb {
					ts -= rng.Int64N(40 * 86400)
				}
				rate := math.Round(rng.Float64()*100) / 4 // ties in values too
				crew := rate / float64(1+rng.IntN(3))
				got, gotCrew := w.Norm(ts)
				want, wantCrew := bruteNorm(held, ts, span, 0.1)
				if !sameNorm(got, want) || !sameFloat(gotCrew, wantCrew) {
					t.Fatalf("step %d t=%d: got %+v crew %v, want %+v crew %v", i, ts, got, gotCrew, want, wantCrew)
				}
				// NormAt ahead of the span, and behind it as when a day
				// closes hours or days behind stream time
				for _, at := range []int64{now + 3600, ts - rng.Int64N(2*86400), ts - rng.Int64N(span)} {
					if got := w.NormAt(at); !sameNorm(got, func() Norm { n, _ := bruteNorm(held, at, span, 0.1); return n }()) {
						t.Fatalf("step %d NormAt(%d) = %+v, differs from the brute force", i, at, got)
					}
				}
				w.Insert(ts, rate, crew)
				held = append(held, entry{ts, rate, crew})
				if i%50 == 0 {
					cut := now - span - 2*86400
					w.Prune(cut)
					held = slices.DeleteFunc(held, func(e entry) bool { return e.t < cut })
					if w.Len() != len(held) {
						t.Fatalf("len %d, want %d", w.Len(), len(held))
					}
				}
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	cases := []struct {
		name   string
		in     []float64
		median float64
		p90    float64
		mad    float64
		bulk   float64
	}{
		{"one", []float64{5}, 5, 5, 0, 1},
		{"two", []float64{2, 4}, 3, 3.8, 1, 0},
		{"odd", []float64{1, 2, 3, 4, 100}, 3, 61.6, 1, 1.0 / 5},
		{"even", []float64{1, 1, 2, 2, 4, 6, 9, 10}, 3, 9.3, 2, 0},
		{"common level", []float64{10, 10, 10, 10.5, 9.5, 20, 30, 10}, 10, 23, 0.25, 6.0 / 8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := slices.Clone(c.in)
			slices.Sort(s)
			n := Summarize(s, 0.1)
			if n.Median != c.median || math.Abs(n.P90-c.p90) > 1e-12 || n.MAD != c.mad || n.Bulk != c.bulk || n.Count != len(c.in) {
				t.Fatalf("got %+v, want median %v p90 %v mad %v bulk %v", n, c.median, c.p90, c.mad, c.bulk)
			}
		})
	}
	if e := Summarize(nil, 0.1); e.Count != 0 || !math.IsNaN(e.Median) {
		t.Fatalf("empty: %+v", e)
	}
}

func BenchmarkWindowInOrder(b *testing.B) {
	// a group of 12 workers, one shift a day each: ~336 shifts in 28 days
	w := NewWindow(28*86400, 0.1)
	rng := rand.New(rand.NewPCG(1, 2))
	t := int64(0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%12 == 0 {
			t += 86400
		}
		w.Norm(t)
		w.Insert(t, 10+rng.Float64(), 5+rng.Float64())
		if i%1000 == 0 {
			w.Prune(t - 30*86400)
		}
	}
}
