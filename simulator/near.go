package simulator

import (
	"math"
	"slices"

	"github.com/stakhanov/stakhanov/shift"
)

// A group's window. Its shifts start on a grid of its shift length, and the
// emit order puts every shift after each shift of its group that starts
// earlier (doc.go): so the shifts in a shift's window when the pipeline
// reads it are exactly the on-time shifts of the group generated before it
// whose slot lies in [start − 28 d, start). The group keeps their rates in
// order of day and slot, which makes that window a run of them.

// dropDay forgets day d, the oldest held, as day d + ringDays begins.
func (g *group) dropDay(d int) {
	if d < 0 {
		return
	}
	c := &g.winSlots[d%ringDays]
	n := 0
	for _, k := range c {
		n += int(k)
	}
	g.win = g.win[:copy(g.win, g.win[n:])]
	*c = [maxSlots]uint16{}
}

// dayCount is the number of on-time shifts of day d, one of the last
// ringDays.
func (g *group) dayCount(d int) int {
	n := 0
	for _, k := range g.winSlots[d%ringDays] {
		n += int(k)
	}
	return n
}

// addDay appends the on-time shifts of day d, slot by slot.
func (g *group) addDay(d int, sh []shiftRec) {
	c := &g.winSlots[d%ringDays]
	p := pow10[g.spec.decimals]
	for k := range maxSlots {
		for i := range sh {
			if rec := &sh[i]; !rec.late && rec.slot == k {
				g.win = append(g.win, int32(math.Round(rec.output*p)))
				c[k]++
			}
		}
	}
}

// rate is the rate of an output held in win: the output divided back into
// its decimals is the float64 round gave, and the one the pipeline parses.
func (g *group) rate(q int32) float64 {
	return float64(q) / pow10[g.spec.decimals] / g.hours
}

// windowFrom is the index in win of the first shift in the window of a
// shift of day d in slot k, before day d is added: day d − 28 from slot k
// on, then every later day.
func (g *group) windowFrom(d, k int) int {
	if d < windowDays {
		return 0
	}
	n := 0
	for _, c := range g.winSlots[(d-windowDays)%ringDays][:k] {
		n += int(c)
	}
	return n
}

// norm is the norm the pipeline computes for a shift of g in slot k of day
// d: the median rate of the group's on-time shifts that start in
// [start − 28 d, start) and their count. sh are day d's shifts, all on
// time (a planted day has no late reports); those of earlier slots are in
// the window.
func (s *Sim) norm(g *group, d, k int, sh []shiftRec) (median float64, count int) {
	xs := s.window[:0]
	for _, q := range g.win[g.windowFrom(d, k):] {
		xs = append(xs, g.rate(q))
	}
	for i := range sh {
		if sh[i].slot < k {
			xs = append(xs, sh[i].output/g.hours)
		}
	}
	s.window = xs
	if len(xs) == 0 {
		return math.NaN(), 0
	}
	slices.Sort(xs)
	return medianSorted(xs), len(xs)
}

// edgeCandidates are the shifts of day d whose window holds exactly want
// shifts, minHistory − 1 or minHistory: where a would-be record shows the
// smallest window a record needs. Only the first days of a group have them.
func (s *Sim) edgeCandidates(g *group, d int, sh []shiftRec, want int) []int {
	if len(g.win) > minHistory {
		return nil
	}
	out := s.perm[:0]
	for i := range sh {
		n := len(g.win) - g.windowFrom(d, sh[i].slot)
		for j := range sh {
			if sh[j].slot < sh[i].slot {
				n++
			}
		}
		if n == want {
			out = append(out, i)
		}
	}
	s.perm = out
	return out
}

// nearBand is where a near miss of kind must land, as a ratio to its norm
// (or the day's median): the half of its band nearer the threshold when
// closer, else the other half. Scrap near misses are records by their
// ratio; scrapBand has their share.
func nearBand(kind planting, closer bool) (lo, hi float64) {
	var b [3]float64 // low end, middle, high end
	upper := closer  // the half nearer the threshold is the upper one
	switch kind {
	case nearRatioBelow:
		b = [3]float64{2.8, 2.9, 2.99}
	case nearRatioAbove:
		b, upper = [3]float64{3.0, 3.1, 3.2}, !closer
	case nearPaceBelow:
		b = [3]float64{1.4, 1.45, 1.49}
	case nearPaceAbove:
		b, upper = [3]float64{1.5, 1.55, 1.6}, !closer
	case nearScrapBelow, nearScrapAbove:
		return nearScrapRatioMin, nearScrapRatioMax
	case plantEdge:
		return edgeRatioMin, edgeRatioMax
	}
	if upper {
		return b[1], b[2]
	}
	return b[0], b[1]
}

// scrapBand is where the scrap share of a scrap near miss must land.
func scrapBand(kind planting, closer bool) (lo, hi float64) {
	b, upper := [3]float64{0.049, 0.0495, 0.05}, closer
	if kind == nearScrapAbove {
		b, upper = [3]float64{0.0501, 0.051, 0.052}, !closer
	}
	if upper {
		return b[1], b[2]
	}
	return b[0], b[1]
}

// plantStars makes k distinct workers of a shop held at one level
// pace-setters at lo–hi× the day's median, which the others then set alone.
func (s *Sim) plantStars(r *rng, g *group, sh []shiftRec, k int, lo, hi float64) {
	dec := g.spec.decimals
	for k > 0 {
		i := r.intn(len(sh))
		if !sh[i].star {
			sh[i].star = true
			sh[i].cause = CausePace
			k--
		}
	}
	// the day's median with the pace-setters above everyone else
	rs := s.rates[:0]
	for i := range sh {
		if sh[i].star {
			rs = append(rs, math.Inf(1))
		} else {
			rs = append(rs, sh[i].output/g.hours)
		}
	}
	s.rates = rs
	med := median(rs)
	for i := range sh {
		if rec := &sh[i]; rec.star {
			rec.output = round(r.uniform(lo, hi)*med*g.hours, dec)
			if rec.hasScrap {
				rec.scrap = round(rec.output*r.uniform(0, normalScrapMax), dec)
			}
		}
	}
}

// plantCommonEdge spreads a shop of commonEdgeWorkers held at one level so
// that exactly held of them stay within ±10 % of the day's median, one of
// those just inside the band; of the others one lies just outside it and
// the rest well below. The median stays among the level's workers, who
// are more than half.
func (s *Sim) plantCommonEdge(r *rng, g *group, sh []shiftRec, held int) {
	n := len(sh)
	perm := s.perm[:0]
	for i := range n {
		perm = append(perm, i)
	}
	s.perm = perm
	low := n - held - 1
	for j := range 2 + low { // inside, outside, then the low ones
		x := j + r.intn(n-j)
		perm[j], perm[x] = perm[x], perm[j]
	}
	inside, outside, lows := perm[0], perm[1], perm[2:2+low]
	rs := s.rates[:0]
	for i := range sh {
		rs = append(rs, sh[i].output/g.hours)
	}
	s.rates = rs
	rs[inside], rs[outside] = math.Inf(1), math.Inf(1)
	for _, i := range lows {
		rs[i] = math.Inf(-1)
	}
	med := median(rs)
	dec := g.spec.decimals
	set := func(i int, lo, hi float64) {
		rec := &sh[i]
		rec.output = round(r.uniform(lo, hi)*med*g.hours, dec)
		if rec.hasScrap {
			rec.scrap = round(rec.output*r.uniform(0, normalScrapMax), dec)
		}
	}
	set(inside, commonInsideMin, commonInsideMax)
	set(outside, commonOutsideMin, commonOutsideMax)
	for _, i := range lows {
		set(i, commonLowMin, commonLowMax)
	}
}

// plantNearRecord sets the output (and scrap) of sh[i] against the shift's
// exact norm so that it lands in the band of kind, and says so; when no
// draw lands there after rounding, the shift stays as it was and ok is
// false.
func (s *Sim) plantNearRecord(r *rng, g *group, d int, sh []shiftRec, i int, kind planting, closer bool) (nr NearRecord, ok bool) {
	rec := &sh[i]
	norm, count := s.norm(g, d, rec.slot, sh)
	if !(norm > 0) {
		return nr, false
	}
	lo, hi := nearBand(kind, closer)
	want := AlertRecordShift
	th := ThresholdRecordRatio
	switch kind {
	case nearRatioBelow:
		want = ""
	case nearScrapBelow, nearScrapAbove:
		lo, hi, th = nearScrapRatioMin, nearScrapRatioMax, ThresholdSuspectScrap
		if kind == nearScrapAbove {
			want = AlertSuspectRecord
		}
	case plantEdge:
		lo, hi, th = edgeRatioMin, edgeRatioMax, ThresholdRecordMinShifts
		if count != minHistory {
			want = ""
		}
	}
	if th == ThresholdRecordMinShifts && count != minHistory-1 && count != minHistory ||
		th != ThresholdRecordMinShifts && count < minHistory {
		return nr, false
	}
	dec := g.spec.decimals
	for range nearTries {
		out := round(r.uniform(lo, hi)*norm*g.hours, dec)
		rate := out / g.hours
		ratio := rate / norm
		if !(ratio >= lo && ratio <= hi) || math.Abs(ratio-recordRatio) < nearMargin*recordRatio {
			continue
		}
		scrap := 0.0
		switch {
		case th == ThresholdSuspectScrap:
			var ok bool
			if scrap, ok = scrapNear(r, out, dec, kind, closer); !ok {
				continue
			}
		case rec.hasScrap:
			scrap = round(out*r.uniform(0, recordScrapMax), dec)
		}
		share := 0.0
		if out > 0 {
			share = scrap / out
		}
		alert := ""
		if count >= minHistory && ratio >= recordRatio {
			alert = AlertRecordShift
			if share > suspectScrapShare {
				alert = AlertSuspectRecord
			}
		}
		if alert != want {
			continue
		}
		rec.output, rec.scrap, rec.star, rec.alert = out, scrap, true, alert
		rec.cause = CauseNearMiss
		switch alert {
		case AlertRecordShift:
			rec.cause = CauseRecord
		case AlertSuspectRecord:
			rec.cause = CauseSuspect
		}
		return NearRecord{
			Threshold: th, Group: g.key, Day: s.firstDay + shift.Day(d), Alert: alert,
			Rate: rate, Norm: norm, Count: count, Ratio: ratio, ScrapShare: share,
		}, true
	}
	return nr, false
}

// scrapNear draws the scrap of an output just below (nearScrapBelow) or
// above the suspect share, and reports whether the rounded scrap landed in
// its band.
func scrapNear(r *rng, out float64, dec int, kind planting, closer bool) (float64, bool) {
	above := kind == nearScrapAbove
	lo, hi := scrapBand(kind, closer)
	for range nearTries {
		sc := round(out*r.uniform(lo, hi), dec)
		share := sc / out
		if share >= lo && share <= hi && (share > suspectScrapShare) == above &&
			math.Abs(share-suspectScrapShare) >= nearMargin*suspectScrapShare {
			return sc, true
		}
	}
	return 0, false
}

// nearDay is the truth of a day planted beside a threshold of the pace
// rule, from the day's actual rates and v, their verdict; ok is false for
// any other day and for a planting that rounding moved out of its band.
func (s *Sim) nearDay(g *group, day shift.Day, sh []shiftRec, kind planting, closer bool, v dayVerdict) (nd NearDay, ok bool) {
	n := 0
	for i := range sh {
		if !sh[i].late {
			n++
		}
	}
	nd = NearDay{Group: g.key, Day: day, Workers: n, Judged: v.judged, Median: v.median}
	// within as the pipeline counts it, which on a day that is not
	// borderline is v.within
	within := 0
	for i := range sh {
		x := sh[i].output / g.hours
		if !sh[i].late && x >= v.median*(1-commonTolerance) && x <= v.median*(1+commonTolerance) {
			within++
		}
	}
	nd.Bulk = float64(within) / float64(n)
	if v.borderline || within != v.within {
		return nd, false
	}
	nd.Common = v.common
	var lo, hi float64
	switch kind {
	case nearPaceBelow, nearPaceAbove:
		nd.Threshold = ThresholdPaceSetterRatio
		lo, hi = nearBand(kind, closer)
		if !v.judged {
			return nd, false
		}
	case nearWorkers7, nearWorkers8:
		nd.Threshold = ThresholdPaceMinWorkers
		lo, hi = paceFactorMin*(1-maxRoundingError), paceFactorMax*(1+maxRoundingError)
		// a day the rule would judge a common-pace day with a pace-setter,
		// were it judged
		if n != paceMinWorkers-1+int(kind-nearWorkers7) || float64(within)/float64(n) < commonShare+0.1 {
			return nd, false
		}
	case nearCommonBelow, nearCommonAbove:
		nd.Threshold = ThresholdCommonPaceShare
		held := 6 + int(kind-nearCommonBelow)
		if n != commonEdgeWorkers || within != held || !v.judged {
			return nd, false
		}
		return nd, true
	default:
		return nd, false
	}
	for i := range sh {
		if !sh[i].star {
			continue
		}
		x := sh[i].output / g.hours
		nd.WorkerID, nd.Ratio = g.workers[sh[i].w].id, x/v.median
		nd.PaceSetter = v.judged && x >= paceSetterRatio*v.median
		if !(nd.Ratio >= lo && nd.Ratio <= hi) || math.Abs(nd.Ratio-paceSetterRatio) < nearMargin*paceSetterRatio ||
			nd.PaceSetter != (kind == nearPaceAbove || kind == nearWorkers8) {
			return nd, false
		}
	}
	return nd, nd.WorkerID != ""
}
