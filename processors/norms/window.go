package norms

import (
	"slices"
	"sort"
)

type entry struct {
	t    int64 // shift start, Unix seconds
	rate float64
	crew float64 // output per crew-hour
}

// Window is one peer group's recent shifts. It is not safe for concurrent
// use; a partition's processor owns its windows.
type Window struct {
	span int64   // window length in seconds
	tol  float64 // common-level tolerance for Norm.Bulk

	entries []entry // by t; equal t in insertion order
	// views are the windows lately asked about, each kept sorted as
	// shifts arrive; see view.
	views []*view
	// gen counts the views made; a view not used in the last maxViews
	// generations is stale: it gives its buffers to the next one, or is
	// dropped.
	gen uint64
	// backAt is the generation of the last question behind the newest
	// view (sawBack: there was one). While none came for maxViews
	// generations the input is in order, and a view moving forward is
	// moved in place rather than copied: the one it leaves is not asked
	// about again. A shuffled day asks behind every day.
	backAt  uint64
	sawBack bool
	// made counts the views made, built those with shifts sorted from
	// nothing, copied those made from a copy of another rather than in
	// place: what the tests hold the choice of views to.
	made, built, copied int

	// scratch for edits: the values leaving and entering a view
	out, in []float64
	merged  []float64
	scratch []float64 // a one-off norm's values
}

// view is the window [hiT − span, hiT) of one start time: entries[lo:hi]
// are exactly the shifts held with start in it, their rates and crew rates
// kept sorted. Shifts of one start time are mostly read together (a shop's
// shift slot), and a shuffled day interleaves only a few of them, so a
// handful of views answer nearly every question by index.
type view struct {
	hiT    int64
	lo, hi int
	rates  []float64
	crews  []float64
	used   uint64 // the generation it was last asked about in
}

// maxViews bounds the views of one window: a day of six-hour slots is
// four. When a day's reports are shuffled, the next day's views take the
// buffers of the last day's, least recently used first.
const maxViews = 4

// NewWindow makes an empty window of span seconds.
func NewWindow(span int64, tolerance float64) *Window {
	return &Window{span: span, tol: tolerance}
}

// Len is the number of shifts held.
func (w *Window) Len() int { return len(w.entries) }

// Latest is the start of the newest shift held; ok is false when empty.
func (w *Window) Latest() (t int64, ok bool) {
	if len(w.entries) == 0 {
		return 0, false
	}
	return w.entries[len(w.entries)-1].t, true
}

// Norm returns the norm of the window [t − span, t) for rates and crew
// rates.
func (w *Window) Norm(t int64) (rate Norm, crewMedian float64) {
	v := w.view(t)
	return Summarize(v.rates, w.tol), Median(v.crews)
}

// NormAt is Norm without the crew median, for one-off questions such as a
// day's closing norm: it makes no view, and so does not count as input out
// of order.
func (w *Window) NormAt(t int64) Norm {
	from, to := w.search(t-w.span), w.search(t)
	var src *view
	best := to - from
	for _, v := range w.views {
		if v.hiT == t {
			return Summarize(v.rates, w.tol)
		}
		if c := moves(v.lo, v.hi, from, to); c <= best {
			src, best = v, c
		}
	}
	if src == nil {
		w.scratch = w.scratch[:0]
		for _, e := range w.entries[from:to] {
			w.scratch = append(w.scratch, e.rate)
		}
		slices.Sort(w.scratch)
	} else {
		w.scratch = w.moveSorted(append(w.scratch[:0], src.rates...), rateOf, src.lo, src.hi, from, to)
	}
	return Summarize(w.scratch, w.tol)
}

// search returns the index of the first entry with start ≥ t.
func (w *Window) search(t int64) int {
	return sort.Search(len(w.entries), func(i int) bool { return w.entries[i].t >= t })
}

// view returns the view of t, made from the nearest one if there is none.
func (w *Window) view(t int64) *view {
	var match, newest *view
	for _, v := range w.views {
		if v.hiT == t {
			match = v
		}
		if newest == nil || v.hiT > newest.hiT {
			newest = v
		}
	}
	if newest != nil && t < newest.hiT {
		w.backAt, w.sawBack = w.gen, true
	}
	if match != nil {
		match.used = w.gen
		return match
	}
	from, to := w.search(t-w.span), w.search(t)
	// the source: the view with the fewest shifts to move in or out
	var src *view
	best := to - from // building from nothing
	for _, v := range w.views {
		if c := moves(v.lo, v.hi, from, to); c <= best {
			src, best = v, c
		}
	}
	w.gen++
	w.made++
	var dst *view
	if inOrder := !w.sawBack || w.gen-w.backAt > maxViews; inOrder && src != nil && src == newest && t > src.hiT {
		dst = src
	} else {
		dst = w.recycle(src)
	}
	// views no longer asked about give their memory back
	w.views = slices.DeleteFunc(w.views, func(v *view) bool { return v != dst && v != src && w.stale(v) })
	if src == nil {
		if to > from {
			w.built++
		}
		dst.rates, dst.crews = dst.rates[:0], dst.crews[:0]
		for _, e := range w.entries[from:to] {
			dst.rates = append(dst.rates, e.rate)
			dst.crews = append(dst.crews, e.crew)
		}
		slices.Sort(dst.rates)
		slices.Sort(dst.crews)
	} else {
		if dst != src {
			w.copied++
			dst.rates = append(dst.rates[:0], src.rates...)
			dst.crews = append(dst.crews[:0], src.crews...)
		}
		w.move(dst, src.lo, src.hi, from, to)
	}
	dst.hiT, dst.lo, dst.hi, dst.used = t, from, to, w.gen
	return dst
}

// moves is how many shifts differ between entries[lo:hi] and
// entries[from:to] when the two overlap. For two that do not, it is more
// than to − from, the cost of building from nothing, so a view that
// shares nothing is never taken as the source.
func moves(lo, hi, from, to int) int {
	return abs(from-lo) + abs(to-hi)
}

func abs(x int) int { return max(x, -x) }

// stale: v was not asked about in the last maxViews generations.
func (w *Window) stale(v *view) bool { return v.used+maxViews < w.gen }

// recycle returns the view to fill: src itself when it is stale, else a
// stale view's buffers, else a new view while there is room, else the
// least recently used.
func (w *Window) recycle(src *view) *view {
	var dst *view
	if src != nil && w.stale(src) {
		dst = src
	}
	for _, v := range w.views {
		if dst == nil && v != src && w.stale(v) {
			dst = v
		}
	}
	switch {
	case dst != nil:
	case len(w.views) < maxViews:
		dst = &view{}
		w.views = append(w.views, dst)
	default:
		dst = w.views[0]
		for _, v := range w.views {
			if v.used < dst.used && v != src {
				dst = v
			}
		}
	}
	return dst
}

// move turns v's sorted values from those of entries[lo:hi] into those of
// entries[from:to].
func (w *Window) move(v *view, lo, hi, from, to int) {
	v.rates = w.moveSorted(v.rates, rateOf, lo, hi, from, to)
	v.crews = w.moveSorted(v.crews, crewOf, lo, hi, from, to)
}

func rateOf(e entry) float64 { return e.rate }
func crewOf(e entry) float64 { return e.crew }

// moveSorted turns vals, the sorted values (of one field) of entries[lo:hi],
// into those of entries[from:to]: one value at a time when few differ, else
// by sorting what leaves and what enters and merging.
func (w *Window) moveSorted(vals []float64, field func(entry) float64, lo, hi, from, to int) []float64 {
	// what leaves: before from and from to on; what enters: before lo
	// and from hi on — each run clamped to its range, which also holds
	// when the two ranges do not overlap
	leave := [2][]entry{w.entries[lo:max(lo, min(hi, from))], w.entries[min(hi, max(lo, to)):hi]}
	enter := [2][]entry{w.entries[from:max(from, min(to, lo))], w.entries[min(to, max(from, hi)):to]}
	if len(leave[0])+len(leave[1])+len(enter[0])+len(enter[1]) <= 8 {
		for _, es := range leave {
			for _, e := range es {
				vals = removeSorted(vals, field(e))
			}
		}
		for _, es := range enter {
			for _, e := range es {
				vals = insertSorted(vals, field(e))
			}
		}
		return vals
	}
	collect := func(runs [2][]entry, dst []float64) []float64 {
		dst = dst[:0]
		for _, es := range runs {
			for _, e := range es {
				dst = append(dst, field(e))
			}
		}
		slices.Sort(dst)
		return dst
	}
	w.out, w.in = collect(leave, w.out), collect(enter, w.in)
	w.merged = mergeSorted(w.merged[:0], vals, w.out, w.in)
	vals, w.merged = w.merged, vals
	return vals
}

// mergeSorted appends to dst the sorted values of have, less one of each
// value in out, plus in; all three sorted, out a sub-multiset of have.
func mergeSorted(dst, have, out, in []float64) []float64 {
	for len(have) > 0 {
		// the run of have before the next value to leave
		end := len(have)
		if len(out) > 0 {
			end = sort.SearchFloat64s(have, out[0])
			if end == len(have) || have[end] != out[0] {
				panic("norms: view out of step with its entries")
			}
		}
		// merge have[:end] with the values entering below its end
		run := have[:end]
		for len(in) > 0 {
			i := sort.Search(len(run), func(i int) bool { return run[i] > in[0] })
			if i == len(run) {
				break // in[0] enters after this run
			}
			dst = append(dst, run[:i]...)
			dst = append(dst, in[0])
			run, in = run[i:], in[1:]
		}
		dst = append(dst, run...)
		if end == len(have) {
			break
		}
		have, out = have[end+1:], out[1:]
	}
	return append(dst, in...)
}

// Insert adds a shift.
func (w *Window) Insert(t int64, rate, crew float64) {
	pos := sort.Search(len(w.entries), func(i int) bool { return w.entries[i].t > t })
	w.entries = slices.Insert(w.entries, pos, entry{t: t, rate: rate, crew: crew})
	for _, v := range w.views {
		switch {
		case t < v.hiT-w.span:
			v.lo++
			v.hi++
		case t < v.hiT:
			v.rates = insertSorted(v.rates, rate)
			v.crews = insertSorted(v.crews, crew)
			v.hi++
		}
	}
}

// Prune drops shifts that started before t; they can no longer be in any
// window asked about.
func (w *Window) Prune(t int64) {
	n := w.search(t)
	if n == 0 {
		return
	}
	for _, v := range w.views {
		for i := v.lo; i < min(v.hi, n); i++ {
			e := w.entries[i]
			v.rates = removeSorted(v.rates, e.rate)
			v.crews = removeSorted(v.crews, e.crew)
		}
		v.lo = max(v.lo-n, 0)
		v.hi = max(v.hi-n, 0)
	}
	w.entries = slices.Delete(w.entries, 0, n)
	if len(w.entries) == 0 {
		w.entries, w.views = nil, nil
	}
}

func insertSorted(a []float64, v float64) []float64 {
	i := sort.SearchFloat64s(a, v)
	return slices.Insert(a, i, v)
}

func removeSorted(a []float64, v float64) []float64 {
	i := sort.SearchFloat64s(a, v)
	if i < len(a) && a[i] == v {
		return slices.Delete(a, i, i+1)
	}
	panic("norms: view out of step with its entries")
}
