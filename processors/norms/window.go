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
	// The current span: entries[lo:hi] are exactly those with t in
	// [loT, hiT), and their rates are kept sorted in rates and crews.
	lo, hi   int
	loT, hiT int64
	rates    []float64
	crews    []float64

	scratch, scratchCrew []float64
}

// NewWindow makes an empty window of span seconds.
func NewWindow(span int64, tolerance float64) *Window {
	return &Window{span: span, tol: tolerance, loT: minT, hiT: minT}
}

const minT = -1 << 62

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
// rates. It may slide the current span forward, which changes no answer.
func (w *Window) Norm(t int64) (rate Norm, crewMedian float64) {
	if t >= w.hiT {
		w.slide(t)
		return Summarize(w.rates, w.tol), Median(w.crews)
	}
	w.around(t)
	return Summarize(w.scratch, w.tol), Median(w.scratchCrew)
}

// NormAt is Norm without the crew median and without moving the span: for
// one-off questions such as a day's closing norm.
func (w *Window) NormAt(t int64) Norm {
	if t == w.hiT {
		return Summarize(w.rates, w.tol)
	}
	from := w.search(t - w.span)
	to := w.search(t)
	// The current span's rates are sorted already: when the window asked
	// for overlaps it mostly (a day closing a few hours behind stream
	// time), editing a copy costs a few binary searches instead of a sort.
	rem1, rem2 := span{w.lo, min(from, w.hi)}, span{max(to, w.lo), w.hi}
	add1, add2 := span{from, min(to, w.lo)}, span{max(from, w.hi), to}
	if changes := rem1.len() + rem2.len() + add1.len() + add2.len(); changes*8 > to-from {
		w.scratch = w.scratch[:0]
		for _, e := range w.entries[from:to] {
			w.scratch = append(w.scratch, e.rate)
		}
		slices.Sort(w.scratch)
		return Summarize(w.scratch, w.tol)
	}
	w.scratch = append(w.scratch[:0], w.rates...)
	for _, r := range [...]span{rem1, rem2} {
		for i := r.from; i < r.to; i++ {
			w.scratch = removeSorted(w.scratch, w.entries[i].rate)
		}
	}
	for _, a := range [...]span{add1, add2} {
		for i := a.from; i < a.to; i++ {
			w.scratch = insertSorted(w.scratch, w.entries[i].rate)
		}
	}
	return Summarize(w.scratch, w.tol)
}

// span is a range of entries, empty when to ≤ from.
type span struct{ from, to int }

func (s span) len() int { return max(0, s.to-s.from) }

// search returns the index of the first entry with start ≥ t.
func (w *Window) search(t int64) int {
	return sort.Search(len(w.entries), func(i int) bool { return w.entries[i].t >= t })
}

// slide moves the current span to [t − span, t).
func (w *Window) slide(t int64) {
	from := t - w.span
	for w.lo < w.hi && w.entries[w.lo].t < from {
		e := w.entries[w.lo]
		w.rates = removeSorted(w.rates, e.rate)
		w.crews = removeSorted(w.crews, e.crew)
		w.lo++
	}
	if w.lo == w.hi {
		// nothing left in the span: skip what the jump leaves behind
		// instead of adding and removing it
		for w.hi < len(w.entries) && w.entries[w.hi].t < from {
			w.hi++
		}
		w.lo = w.hi
	}
	for w.hi < len(w.entries) && w.entries[w.hi].t < t {
		e := w.entries[w.hi]
		w.rates = insertSorted(w.rates, e.rate)
		w.crews = insertSorted(w.crews, e.crew)
		w.hi++
	}
	w.loT, w.hiT = from, t
}

// around fills the scratch slices with the window [t − span, t) for t
// behind the current span: a copy of the span, less the shifts at or after
// t, plus those before the span's start but inside the window.
func (w *Window) around(t int64) {
	w.scratch = append(w.scratch[:0], w.rates...)
	w.scratchCrew = append(w.scratchCrew[:0], w.crews...)
	for i := max(w.search(t), w.lo); i < w.hi; i++ {
		w.scratch = removeSorted(w.scratch, w.entries[i].rate)
		w.scratchCrew = removeSorted(w.scratchCrew, w.entries[i].crew)
	}
	end := min(w.lo, w.search(t))
	for i := w.search(t - w.span); i < end; i++ {
		w.scratch = insertSorted(w.scratch, w.entries[i].rate)
		w.scratchCrew = insertSorted(w.scratchCrew, w.entries[i].crew)
	}
}

// Insert adds a shift.
func (w *Window) Insert(t int64, rate, crew float64) {
	pos := sort.Search(len(w.entries), func(i int) bool { return w.entries[i].t > t })
	w.entries = slices.Insert(w.entries, pos, entry{t: t, rate: rate, crew: crew})
	switch {
	case t < w.loT:
		w.lo++
		w.hi++
	case t < w.hiT:
		w.rates = insertSorted(w.rates, rate)
		w.crews = insertSorted(w.crews, crew)
		w.hi++
	}
}

// Prune drops shifts that started before t; they can no longer be in any
// window asked about.
func (w *Window) Prune(t int64) {
	n := 0
	for n < len(w.entries) && w.entries[n].t < t {
		if n >= w.lo && n < w.hi {
			e := w.entries[n]
			w.rates = removeSorted(w.rates, e.rate)
			w.crews = removeSorted(w.crews, e.crew)
		}
		n++
	}
	if n == 0 {
		return
	}
	w.entries = slices.Delete(w.entries, 0, n)
	w.lo = max(w.lo-n, 0)
	w.hi = max(w.hi-n, 0)
	if w.loT < t {
		w.loT = t
		if w.hiT < t {
			w.hiT = t
		}
	}
	if len(w.entries) == 0 {
		w.entries, w.rates, w.crews = nil, nil, nil
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
	panic("norms: window span out of step with its entries")
}
