package norms

import (
	"math"
	"sort"
)

// Norm summarises a set of rates.
type Norm struct {
	Count  int
	Median float64 // the norm; NaN when Count is 0
	Mean   float64
	P90    float64
	MAD    float64 // median absolute deviation from the median
	// Bulk is the share of rates within ±tolerance of the median: how many
	// stand at the common level.
	Bulk float64
}

// Empty is the norm of no shifts.
var Empty = Norm{Median: math.NaN(), Mean: math.NaN(), P90: math.NaN(), MAD: math.NaN(), Bulk: math.NaN()}

// Summarize computes the norm of rates sorted ascending. tol is the relative
// half-width of the common level used for Bulk.
func Summarize(sorted []float64, tol float64) Norm {
	n := len(sorted)
	if n == 0 {
		return Empty
	}
	m := Median(sorted)
	var sum float64
	for _, v := range sorted {
		sum += v
	}
	lo := sort.SearchFloat64s(sorted, m*(1-tol))
	hi := sort.Search(n, func(i int) bool { return sorted[i] > m*(1+tol) })
	return Norm{
		Count:  n,
		Median: m,
		Mean:   sum / float64(n),
		P90:    Quantile(sorted, 0.9),
		MAD:    mad(sorted, m),
		Bulk:   float64(hi-lo) / float64(n),
	}
}

// Median of sorted values: the middle one, or the mean of the middle two.
func Median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// Quantile of sorted values by linear interpolation between closest ranks
// (DuckDB's quantile_cont, numpy's default).
func Quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	h := q * float64(n-1)
	i := int(h)
	if i >= n-1 {
		return sorted[n-1]
	}
	return sorted[i] + (h-float64(i))*(sorted[i+1]-sorted[i])
}

// mad walks outward from the median: the absolute deviations of sorted
// values come in order by merging the two sides, so the middle one is found
// in n/2 steps without a second sort.
func mad(sorted []float64, m float64) float64 {
	n := len(sorted)
	// left: indices < j going down; right: indices ≥ j going up
	j := sort.SearchFloat64s(sorted, m)
	l, r := j-1, j
	next := func() float64 {
		if l < 0 {
			d := sorted[r] - m
			r++
			return d
		}
		if r >= n {
			d := m - sorted[l]
			l--
			return d
		}
		dl, dr := m-sorted[l], sorted[r]-m
		if dl <= dr {
			l--
			return dl
		}
		r++
		return dr
	}
	var prev, cur float64
	for k := 0; k <= n/2; k++ {
		prev, cur = cur, next()
	}
	if n%2 == 1 {
		return cur
	}
	return (prev + cur) / 2
}
