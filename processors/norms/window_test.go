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
		{"pruned into the span", 3 * 3600, 0.05, 0.02},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			const span = 28 * 86400
			w := NewWindow(span, 0.1)
			var held []entry
			now := int64(0)
			floor := int64(math.MinInt64)
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
				// nothing older than a cut is inserted again: that is what
				// Prune promises its callers
				ts = max(ts, floor)
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
				if tc.name == "pruned into the span" && i%7 == 0 {
					// a cut inside the current span, or exactly at a held
					// start, as a late shift's judgement makes
					cut := ts - rng.Int64N(span)
					if len(held) > 0 && rng.IntN(2) == 0 {
						cut = held[rng.IntN(len(held))].t
					}
					floor = max(floor, cut)
					w.Prune(cut)
					held = slices.DeleteFunc(held, func(e entry) bool { return e.t < cut })
					if w.Len() != len(held) {
						t.Fatalf("len %d, want %d", w.Len(), len(held))
					}
				}
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

// TestSummarize: hand-computed summaries. p90 interpolates between closest
// ranks at h = 0.9·(n − 1); MAD is the median of |x − median|; bulk counts
// the rates within [0.9, 1.1] × median, both ends included.
func TestSummarize(t *testing.T) {
	cases := []struct {
		name   string
		in     []float64
		median float64
		mean   float64
		p90    float64
		mad    float64
		bulk   float64
	}{
		{"one", []float64{5}, 5, 5, 5, 0, 1},
		// h = 0.9: 2 + 0.9·2; deviations 1, 1
		{"two", []float64{2, 4}, 3, 3, 3.8, 1, 0},
		// h = 3.6: 4 + 0.6·96; deviations 0 1 1 2 97
		{"odd", []float64{1, 2, 3, 4, 100}, 3, 22, 61.6, 1, 1.0 / 5},
		// h = 6.3: 9 + 0.3·1; deviations 1 1 1 2 2 3 6 7
		{"even", []float64{1, 1, 2, 2, 4, 6, 9, 10}, 3, 35.0 / 8, 9.3, 2, 0},
		// h = 6.3: 20 + 0.3·10; deviations 0 0 0 0 0.5 0.5 10 20
		{"common level", []float64{10, 10, 10, 10.5, 9.5, 20, 30, 10}, 10, 110.0 / 8, 23, 0.25, 6.0 / 8},
		// 9 and 11 are exactly ±10 % of 10 and count; 8.99 and 11.01 do not
		{"bulk edges", []float64{8.99, 9, 10, 10, 10, 11, 11.01}, 10, 70.0 / 7, 11.004, 1, 5.0 / 7},
		// the median at the top: every deviation lies below it
		{"one-sided", []float64{1, 2, 3, 10, 10, 10, 10}, 10, 46.0 / 7, 10, 0, 4.0 / 7},
		{"one-sided even", []float64{1, 2, 10, 10}, 6, 23.0 / 4, 10, 4, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := slices.Clone(c.in)
			slices.Sort(s)
			n := Summarize(s, 0.1)
			if n.Median != c.median || math.Abs(n.P90-c.p90) > 1e-12 || n.MAD != c.mad || n.Bulk != c.bulk ||
				n.Count != len(c.in) || math.Abs(n.Mean-c.mean) > 1e-12 {
				t.Fatalf("got %+v, want median %v mean %v p90 %v mad %v bulk %v", n, c.median, c.mean, c.p90, c.mad, c.bulk)
			}
		})
	}
	if e := Summarize(nil, 0.1); e.Count != 0 || !math.IsNaN(e.Median) || !math.IsNaN(e.Mean) || !math.IsNaN(e.Bulk) {
		t.Fatalf("empty: %+v", e)
	}
	if q := Quantile(nil, 0.9); !math.IsNaN(q) {
		t.Fatalf("quantile of nothing %v, want NaN", q)
	}
}

// TestMADMatchesBruteForce: the outward walk from the median gives the
// median of the sorted absolute deviations, on sets of every shape. With
// decimal rates the mean of the middle two may round closer to the upper
// one ([0.1, 0.2]: 0.2 − 0.15000000000000002 < 0.15000000000000002 − 0.1),
// and the walk must then be able to run out of values above the median.
func TestMADMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for i := 0; i < 20000; i++ {
		n := 1 + rng.IntN(12)
		xs := make([]float64, n)
		skew := rng.IntN(3) // 0 spread, 1 piled low, 2 piled high
		scale := []float64{1, 10}[i%2]
		for j := range xs {
			xs[j] = float64(1+rng.IntN(8)) / scale
			if skew == 1 && j > 0 {
				xs[j] = 1 / scale
			}
			if skew == 2 && j > 0 {
				xs[j] = 8 / scale
			}
		}
		slices.Sort(xs)
		m := Median(xs)
		dev := make([]float64, n)
		for j, x := range xs {
			dev[j] = math.Abs(x - m)
		}
		slices.Sort(dev)
		if got, want := Summarize(xs, 0.1).MAD, Median(dev); got != want {
			t.Fatalf("%v: MAD %v, want %v", xs, got, want)
		}
	}
	if got := Summarize([]float64{0.1, 0.2}, 0.1).MAD; math.Abs(got-0.05) > 1e-15 {
		t.Fatalf("MAD of 0.1 and 0.2: %v", got)
	}
}

// TestWindowEdgeCases: steps the brute-force test reaches only by chance.
func TestWindowEdgeCases(t *testing.T) {
	const span = 100
	// after a gap longer than the window, the span is empty and the jump
	// skips what lies before the window: a shift exactly at its start stays
	t.Run("jump to a shift at the window's start", func(t *testing.T) {
		w := NewWindow(span, 0.1)
		w.Norm(1000)
		w.Insert(1000, 1, 1)
		w.Insert(1010, 2, 2)
		if n, _ := w.Norm(1010 + span); n.Count != 1 || n.Median != 2 {
			t.Fatalf("%+v, want the shift at 1010 alone", n)
		}
	})
	// sliding forward keeps a shift exactly at the window's new start
	t.Run("slide to a shift at the window's start", func(t *testing.T) {
		w := NewWindow(span, 0.1)
		w.Insert(100, 1, 1)
		if n, _ := w.Norm(150); n.Count != 1 {
			t.Fatalf("Norm(150) %+v, want the shift at 100", n)
		}
		if n, _ := w.Norm(200); n.Count != 1 {
			t.Fatalf("Norm(200) %+v: the shift at 100 = 200 − span is in the window", n)
		}
		if n, _ := w.Norm(201); n.Count != 0 {
			t.Fatalf("Norm(201) %+v, want nothing", n)
		}
	})
	// a cut past the span's end drops shifts both in the span and after it
	t.Run("prune past the span", func(t *testing.T) {
		w := NewWindow(span, 0.1)
		w.Insert(10, 1, 1)
		w.Norm(20) // span [−80, 20): the shift at 10
		w.Insert(30, 2, 2)
		w.Prune(40)
		if w.Len() != 0 {
			t.Fatalf("%d held after Prune(40)", w.Len())
		}
		w.Insert(50, 3, 3)
		if n, _ := w.Norm(60); n.Count != 1 || n.Median != 3 {
			t.Fatalf("Norm(60) %+v, want the shift at 50 alone", n)
		}
	})
	// the counters TestViewsStayFew reads: a first view with shifts in it
	// is sorted from nothing, one behind it copied from it
	t.Run("counts", func(t *testing.T) {
		w := NewWindow(span, 0.1)
		for _, ts := range []int64{10, 20, 30, 40} {
			w.Insert(ts, float64(ts), 1)
		}
		w.Norm(50)
		w.Norm(35)
		if w.made != 2 || w.built != 1 || w.copied != 1 {
			t.Fatalf("%d made, %d built, %d copied; want 2, 1, 1", w.made, w.built, w.copied)
		}
	})
	// shifts with equal starts come out in the order they went in
	t.Run("equal starts keep their order", func(t *testing.T) {
		w := NewWindow(span, 0.1)
		for _, r := range []float64{3, 1, 2} {
			w.Insert(50, r, r)
		}
		var got []float64
		w.Entries(func(_ int64, rate, _ float64) bool { got = append(got, rate); return true })
		if !slices.Equal(got, []float64{3, 1, 2}) {
			t.Fatalf("entries %v, want 3 1 2", got)
		}
	})
	// a cut exactly at a shift's start keeps it; one inside the current
	// span drops what lies before it from the span too
	t.Run("prune at a start", func(t *testing.T) {
		w := NewWindow(span, 0.1)
		for i, ts := range []int64{10, 20, 30, 40} {
			w.Insert(ts, float64(i+1), 1)
		}
		w.Norm(90) // span [−10, 90): all four
		w.Prune(20)
		if w.Len() != 3 {
			t.Fatalf("%d held after Prune(20), want 3", w.Len())
		}
		if n := w.NormAt(90); n.Count != 3 || n.Median != 3 {
			t.Fatalf("NormAt(90) %+v, want 2 3 4", n)
		}
		w.Insert(85, 10, 1)
		if n, _ := w.Norm(95); n.Count != 4 || n.Median != 3.5 {
			t.Fatalf("Norm(95) %+v, want 2 3 4 10", n)
		}
		if t0, ok := w.Latest(); !ok || t0 != 85 {
			t.Fatalf("latest %v %v, want 85", t0, ok)
		}
		w.Prune(1000)
		if _, ok := w.Latest(); ok || w.Len() != 0 {
			t.Fatalf("%d held after pruning everything", w.Len())
		}
	})
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

// TestMergeSorted holds the bulk edit of a view to removing and inserting
// one value at a time, on small multisets full of repeats.
func TestMergeSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for k := 0; k < 20000; k++ {
		var have, out, in []float64
		for range rng.IntN(20) {
			have = append(have, float64(rng.IntN(10)))
		}
		slices.Sort(have)
		for _, h := range have {
			if rng.IntN(3) == 0 {
				out = append(out, h)
			}
		}
		for range rng.IntN(10) {
			in = append(in, float64(rng.IntN(10)))
		}
		slices.Sort(in)
		want := slices.Clone(have)
		for _, v := range out {
			want = removeSorted(want, v)
		}
		for _, v := range in {
			want = insertSorted(want, v)
		}
		if got := mergeSorted(nil, have, out, in); !slices.Equal(got, want) {
			t.Fatalf("have %v less %v plus %v: got %v, want %v", have, out, in, got, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("removing a value not held did not panic")
		}
	}()
	mergeSorted(nil, []float64{1, 2}, []float64{3}, nil)
}

// TestViewsStayFew holds the choice of views to what makes out-of-order
// input cheap, the way a processor asks (a norm per shift before inserting
// it, a closing norm per day once its start + 30 h passes, pruning behind
// the window): a shop of 3 slots a day, 40 workers a slot, 60 days. In
// order it keeps one view, moved forward in place, never sorted afresh;
// with each day's shifts shuffled it keeps a view per slot of the day and
// the next day's first, made once per slot and day from the nearest, never
// sorted afresh — but on the first day, before any question came behind,
// where a view may move on in place and be made again. Every answer is
// checked against the rule read literally.
func TestViewsStayFew(t *testing.T) {
	const (
		span = 28 * 86400
		days = 60
		slot = 8 * 3600
		per  = 40
	)
	for _, order := range []string{"in order", "shuffled", "shuffled, then in order"} {
		t.Run(order, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 9))
			w := NewWindow(span, 0.1)
			var held []entry
			maxViews, closed := 0, 0
			stream := int64(-1)
			for d := range days {
				var starts []int64
				for s := range 3 {
					for range per {
						starts = append(starts, int64(d)*86400+int64(s)*slot)
					}
				}
				if shuffled := order == "shuffled" || order != "in order" && d < days/2; shuffled {
					rng.Shuffle(len(starts), func(i, j int) { starts[i], starts[j] = starts[j], starts[i] })
				}
				for i, ts := range starts {
					rate := 10 + float64(rng.IntN(400))/100
					got, _ := w.Norm(ts)
					if i%17 == 0 {
						if want, _ := bruteNorm(held, ts, span, 0.1); !sameNorm(got, want) {
							t.Fatalf("day %d t=%d: %+v, want %+v", d, ts, got, want)
						}
					}
					w.Insert(ts, rate, rate/2)
					held = append(held, entry{ts, rate, rate / 2})
					stream = max(stream, ts)
					// days close once stream time passes their end + 6 h
					for closed < d && stream >= int64(closed+1)*86400+6*3600 {
						end := int64(closed+1) * 86400
						if got, want := w.NormAt(end), func() Norm { n, _ := bruteNorm(held, end, span, 0.1); return n }(); !sameNorm(got, want) {
							t.Fatalf("closing norm of day %d: %+v, want %+v", closed, got, want)
						}
						closed++
						w.Prune(end - span - 86400)
					}
					maxViews = max(maxViews, len(w.views))
				}
			}
			slots := 3 * days
			switch order {
			case "shuffled, then in order":
				// a shop that stops shuffling gives the views' memory back
				if len(w.views) != 1 || w.built != 0 {
					t.Fatalf("%d views, %d built after %d days in order; want 1, 0", len(w.views), w.built, days/2)
				}
				return
			case "in order":
				if maxViews != 1 || w.built != 0 || w.copied != 0 || w.made != slots {
					t.Fatalf("in order: up to %d views, %d made, %d built, %d copied; want 1, %d, 0, 0", maxViews, w.made, w.built, w.copied, slots)
				}
				return
			}
			if maxViews > 4 || w.built != 0 || w.made > slots+2 {
				t.Fatalf("shuffled: up to %d views, %d made, %d built; want at most 4, at most %d, 0", maxViews, w.made, w.built, slots+2)
			}
		})
	}
}
