package pace

import (
	"slices"

	"github.com/stakhanov/stakhanov/processors/norms"
)

// Rule holds the thresholds (see processors.Options for defaults).
type Rule struct {
	MinWorkers  int
	SetterRatio float64
	Tolerance   float64
	CommonShare float64
}

// Verdict is a day group's outcome.
type Verdict struct {
	Judged  bool    // enough workers to judge
	Median  float64 // median worker day rate
	Bulk    float64 // share of workers within ±Tolerance of Median
	Common  bool    // common_pace
	Setters []int   // indices into the rates judged, ascending
}

// Judge applies the rule to the workers' day rates. A median of zero (an
// idle shop) judges nothing: every ratio to it is undefined.
func (r Rule) Judge(rates []float64) Verdict {
	if len(rates) < r.MinWorkers {
		return Verdict{}
	}
	sorted := slices.Clone(rates)
	slices.Sort(sorted)
	m := norms.Median(sorted)
	if !(m > 0) {
		return Verdict{}
	}
	v := Verdict{Judged: true, Median: m}
	within := 0
	for i, x := range rates {
		if x >= r.SetterRatio*m {
			v.Setters = append(v.Setters, i)
		}
		if x >= m*(1-r.Tolerance) && x <= m*(1+r.Tolerance) {
			within++
		}
	}
	v.Bulk = float64(within) / float64(len(rates))
	v.Common = v.Bulk >= r.CommonShare
	return v
}
