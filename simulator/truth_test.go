package simulator

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/shift"
)

// The rules, applied by brute force to the on-time valid events of the
// default stream, independently of the generator's own bookkeeping.

func onTimeEvents(t *testing.T, msgs []Message) []shift.Event {
	var evs []shift.Event
	for _, m := range msgs {
		if m.Kind != KindValid {
			continue
		}
		ev, err := shift.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func TestRecordsBruteForce(t *testing.T) {
	msgs, truth := defaultRun(t)
	evs := onTimeEvents(t, msgs)
	byGroup := map[shift.GroupKey][]shift.Event{}
	for _, ev := range evs {
		byGroup[ev.Group()] = append(byGroup[ev.Group()], ev)
	}
	records, suspects := map[string]float64{}, map[string]float64{}
	maxOrdinary := 0.0
	norm := map[string]float64{} // event id → window median
	for _, ev := range evs {
		var window []float64
		from := ev.ShiftStart.Add(-28 * 24 * time.Hour)
		for _, o := range byGroup[ev.Group()] {
			if !o.ShiftStart.Before(from) && o.ShiftStart.Before(ev.ShiftStart) {
				window = append(window, o.Rate())
			}
		}
		if len(window) < 20 {
			continue
		}
		med := medianOf(window)
		norm[ev.EventID] = med
		ratio := ev.Rate() / med
		switch {
		case ratio < 3:
			maxOrdinary = max(maxOrdinary, ratio)
		case ev.ScrapShare() <= 0.05:
			records[ev.EventID] = ratio
		default:
			suspects[ev.EventID] = ratio
		}
	}
	same := func(name string, planted []string, found map[string]float64) {
		want := map[string]bool{}
		for _, id := range planted {
			want[id] = true
			if _, ok := found[id]; !ok {
				t.Errorf("planted %s %s not found by brute force", name, id)
			}
		}
		for id, r := range found {
			if !want[id] {
				t.Errorf("unplanted %s %s (ratio %.2f)", name, id, r)
			}
		}
	}
	same("record", truth.RecordShifts, records)
	same("suspect record", truth.SuspectRecords, suspects)
	t.Logf("%d records, %d suspects; highest ratio of any other shift %.3f", len(records), len(suspects), maxOrdinary)

	// several, across industries, never in the first days but where a
	// near miss shows the smallest window a record needs
	industries := map[string]bool{}
	first := DefaultConfig().Start.Add(4 * 24 * time.Hour)
	edge := map[string]bool{}
	for _, n := range truth.NearRecords {
		edge[n.EventID] = n.Threshold == ThresholdRecordMinShifts
	}
	for _, ev := range evs {
		if _, ok := records[ev.EventID]; ok {
			industries[ev.Industry] = true
		}
		_, r := records[ev.EventID]
		_, s := suspects[ev.EventID]
		if (r || s) && ev.ShiftStart.Before(first) && !edge[ev.EventID] {
			t.Errorf("record %s in the first days", ev.EventID)
		}
	}
	if len(records) < 5 || len(suspects) < 3 || len(industries) < 3 {
		t.Errorf("%d records in %d industries, %d suspects: too few", len(records), len(industries), len(suspects))
	}

	// the canonical one
	if truth.Stakhanov != "tsentralnaya-irmino-19350830-a.stakhanov-1" {
		t.Fatalf("canonical id %q", truth.Stakhanov)
	}
	for _, ev := range evs {
		if ev.EventID != truth.Stakhanov {
			continue
		}
		want := shift.Event{EventID: truth.Stakhanov, PlantID: "tsentralnaya-irmino", Industry: "coal", Section: "seam-nikanor",
			Role: "hewer", WorkerID: "a.stakhanov", CrewSize: 3, ShiftStart: time.Date(1935, 8, 30, 22, 0, 0, 0, time.UTC),
			ShiftHours: 6, Output: 102, Unit: "t"}
		if ev != want {
			t.Errorf("canonical record %+v", ev)
		}
		if n := norm[ev.EventID] * 6; n < 12.5 || n > 15.5 {
			t.Errorf("norm of the canonical group %.2f t a shift, want about 14", n)
		}
		t.Logf("Stakhanov: %v t against a norm of %.2f t: %.1f×", ev.Output, norm[ev.EventID]*6, records[ev.EventID])
	}
}

type workerDay struct {
	g   shift.GroupKey
	w   string
	day shift.Day
}

type groupDay struct {
	g   shift.GroupKey
	day shift.Day
}

func TestDayRulesBruteForce(t *testing.T) {
	msgs, truth := defaultRun(t)
	evs := onTimeEvents(t, msgs)
	type acc struct{ out, hours float64 }
	days := map[groupDay]map[string]*acc{}
	for _, ev := range evs {
		k := groupDay{ev.Group(), shift.DayOf(ev.ShiftStart)}
		if days[k] == nil {
			days[k] = map[string]*acc{}
		}
		a := days[k][ev.WorkerID]
		if a == nil {
			a = &acc{}
			days[k][ev.WorkerID] = a
		}
		a.out += ev.Output
		a.hours += ev.ShiftHours
	}
	borderline := map[groupDay]bool{}
	for _, b := range truth.Borderline {
		borderline[groupDay{b.Group, b.Day}] = true
	}
	pace := map[workerDay]bool{}
	common := map[groupDay]bool{}
	judged, maxOrdinary := 0, 0.0
	for k, ws := range days {
		if len(ws) < 8 {
			continue
		}
		judged++
		var rates []float64
		for _, a := range ws {
			rates = append(rates, a.out/a.hours)
		}
		med := medianOf(rates)
		held := 0
		for w, a := range ws {
			r := a.out / a.hours
			if r >= 1.5*med {
				pace[workerDay{k.g, w, k.day}] = true
			} else {
				maxOrdinary = max(maxOrdinary, r/med)
			}
			if r >= 0.9*med && r <= 1.1*med {
				held++
			}
		}
		if float64(held) >= 0.7*float64(len(ws))-1e-9 {
			common[k] = true
		}
	}
	if judged != truth.JudgedDays {
		t.Errorf("%d group-days of ≥ 8 workers, truth says %d", judged, truth.JudgedDays)
	}

	planted := map[workerDay]bool{}
	paceDays := map[groupDay]bool{}
	for _, p := range truth.PaceSetters {
		k := workerDay{p.Group, p.WorkerID, p.Day}
		planted[k] = true
		if p.Cause == "" {
			t.Errorf("pace-setter %+v was not planted", p)
		}
		if !pace[k] {
			t.Errorf("planted pace-setter %+v not found by brute force", p)
		}
		if p.Cause == CausePace {
			paceDays[groupDay{p.Group, p.Day}] = true
		}
	}
	for k := range pace {
		if !planted[k] {
			t.Errorf("unplanted pace-setter %+v", k)
		}
	}
	listed := map[groupDay]bool{}
	for _, d := range truth.CommonPaceDays {
		k := groupDay{d.Group, d.Day}
		listed[k] = true
		if !common[k] && !borderline[k] {
			t.Errorf("common-pace day %+v not common by brute force", d)
		}
	}
	for k := range common {
		if !listed[k] && !borderline[k] {
			t.Errorf("brute-force common-pace day %+v not listed", k)
		}
	}
	for k := range paceDays {
		if !listed[k] || borderline[k] {
			t.Errorf("pace-setter day %+v not a clear common-pace day", k)
		}
	}
	if len(paceDays) < 5 {
		t.Errorf("only %d planted pace-setter days", len(paceDays))
	}
	if len(truth.CommonPaceDays) == 0 || len(truth.CommonPaceDays) == judged {
		t.Errorf("%d of %d days common: the rule should go both ways", len(truth.CommonPaceDays), judged)
	}
	t.Logf("%d judged group-days, %d common pace (%d borderline), %d pace-setters on %d planted days; highest other worker %.3f× the median",
		judged, len(common), len(borderline), len(pace), len(paceDays), maxOrdinary)
}

// TestNearMisses recomputes every near miss from the on-time events, as the
// rules read them, and requires the exact values the truth lists; and it
// requires near misses on both sides of every threshold close enough to it
// that a threshold moved by a step (3 → 2.9 or 3.1, 0.05 → 0.051, 1.5 → 1.4
// or 1.6, 8 → 7 or 9 workers, 20 → 21 shifts, 0.70 → 0.71) changes an
// alert.
func TestNearMisses(t *testing.T) {
	msgs, truth := defaultRun(t)
	evs := onTimeEvents(t, msgs)
	byGroup := map[shift.GroupKey][]shift.Event{}
	byID := map[string]shift.Event{}
	for _, ev := range evs {
		byGroup[ev.Group()] = append(byGroup[ev.Group()], ev)
		byID[ev.EventID] = ev
	}
	alerts := map[string]string{}
	for _, id := range truth.RecordShifts {
		alerts[id] = AlertRecordShift
	}
	for _, id := range truth.SuspectRecords {
		alerts[id] = AlertSuspectRecord
	}
	// what moving each threshold by a step would change
	type side struct {
		th    Threshold
		alert bool
	}
	found := map[side]int{}
	step := map[string]int{}
	for _, n := range truth.NearRecords {
		ev, ok := byID[n.EventID]
		if !ok {
			t.Errorf("near miss %s is not an on-time event", n.EventID)
			continue
		}
		var window []float64
		from := ev.ShiftStart.Add(-28 * 24 * time.Hour)
		for _, o := range byGroup[ev.Group()] {
			if !o.ShiftStart.Before(from) && o.ShiftStart.Before(ev.ShiftStart) {
				window = append(window, o.Rate())
			}
		}
		norm := medianOf(window)
		want := NearRecord{Threshold: n.Threshold, EventID: ev.EventID, Group: ev.Group(), WorkerID: ev.WorkerID,
			Day: shift.DayOf(ev.ShiftStart), Alert: alerts[ev.EventID], Rate: ev.Rate(), Norm: norm, Count: len(window),
			Ratio: ev.Rate() / norm, ScrapShare: ev.ScrapShare()}
		if n != want {
			t.Errorf("near miss\n%+v, recomputed\n%+v", n, want)
		}
		rule := ""
		if len(window) >= 20 && want.Ratio >= 3 {
			rule = AlertRecordShift
			if want.ScrapShare > 0.05 {
				rule = AlertSuspectRecord
			}
		}
		if rule != n.Alert {
			t.Errorf("%s: the rule says %q, the truth %q", n.EventID, rule, n.Alert)
		}
		switch n.Threshold {
		case ThresholdRecordRatio:
			found[side{n.Threshold, n.Alert != ""}]++
			if n.Ratio >= 2.9 && n.Ratio < 3 {
				step["record ratio 2.9"]++
			}
			if n.Ratio >= 3 && n.Ratio < 3.1 {
				step["record ratio 3.1"]++
			}
			if n.Ratio < 2.8 || n.Ratio > 3.2 || n.Count < 20 {
				t.Errorf("%s: ratio %v over %d shifts", n.EventID, n.Ratio, n.Count)
			}
		case ThresholdSuspectScrap:
			found[side{n.Threshold, n.Alert == AlertSuspectRecord}]++
			if n.ScrapShare > 0.05 && n.ScrapShare <= 0.051 {
				step["suspect scrap 0.051"]++
			}
			if n.Alert == "" || n.ScrapShare < 0.049 || n.ScrapShare > 0.052 {
				t.Errorf("%s: %q with scrap share %v", n.EventID, n.Alert, n.ScrapShare)
			}
		case ThresholdRecordMinShifts:
			found[side{n.Threshold, n.Alert != ""}]++
			if n.Count != 19 && n.Count != 20 || !(n.Ratio >= 3) || n.ScrapShare > 0.05 {
				t.Errorf("%s: ratio %v over %d shifts, scrap share %v", n.EventID, n.Ratio, n.Count, n.ScrapShare)
			}
			if n.Count == 20 {
				step["record min shifts 21"]++
			}
		default:
			t.Errorf("%s: threshold %q", n.EventID, n.Threshold)
		}
	}

	type worker struct{ out, hours float64 }
	days := map[groupDay]map[string]*worker{}
	for _, ev := range evs {
		k := groupDay{ev.Group(), shift.DayOf(ev.ShiftStart)}
		if days[k] == nil {
			days[k] = map[string]*worker{}
		}
		w := days[k][ev.WorkerID]
		if w == nil {
			w = &worker{}
			days[k][ev.WorkerID] = w
		}
		w.out += ev.Output
		w.hours += ev.ShiftHours
	}
	for _, n := range truth.NearDays {
		ws := days[groupDay{n.Group, n.Day}]
		var rates []float64
		for _, w := range ws {
			rates = append(rates, w.out/w.hours)
		}
		med := medianOf(rates)
		within := 0
		for _, r := range rates {
			if r >= med*0.9 && r <= med*1.1 {
				within++
			}
		}
		judged := len(rates) >= 8
		want := NearDay{Threshold: n.Threshold, Group: n.Group, Day: n.Day, Workers: len(rates), Judged: judged,
			Median: med, Bulk: float64(within) / float64(len(rates)), WorkerID: n.WorkerID,
			Common: judged && float64(within)/float64(len(rates)) >= 0.7}
		if w := ws[n.WorkerID]; w != nil {
			want.Ratio = w.out / w.hours / med
			want.PaceSetter = judged && w.out/w.hours >= 1.5*med
		}
		if n != want {
			t.Errorf("near miss\n%+v, recomputed\n%+v", n, want)
		}
		switch n.Threshold {
		case ThresholdPaceSetterRatio:
			found[side{n.Threshold, n.PaceSetter}]++
			if n.Ratio >= 1.4 && n.Ratio < 1.5 {
				step["pace-setter ratio 1.4"]++
			}
			if n.Ratio >= 1.5 && n.Ratio < 1.6 {
				step["pace-setter ratio 1.6"]++
			}
			if !n.Judged || n.WorkerID == "" || n.Ratio < 1.4 || n.Ratio > 1.6 {
				t.Errorf("%+v", n)
			}
		case ThresholdPaceMinWorkers:
			found[side{n.Threshold, n.Judged}]++
			// a clear pace-setter and a common level, judged or not
			if n.Workers != 7 && n.Workers != 8 || n.Ratio < 1.79 || n.Bulk < 0.8 || n.PaceSetter != n.Judged || n.Common != n.Judged {
				t.Errorf("%+v", n)
			}
			// 8 workers are judged no more under 9, 7 are under 7
			step[fmt.Sprintf("pace min workers %d", map[int]int{7: 7, 8: 9}[n.Workers])]++
		case ThresholdCommonPaceShare:
			found[side{n.Threshold, n.Common}]++
			if n.Workers != 10 || n.Bulk != 0.7 && n.Bulk != 0.6 || n.WorkerID != "" {
				t.Errorf("%+v", n)
			}
			if n.Bulk == 0.7 {
				step["common pace share 0.71"]++
			}
		default:
			t.Errorf("%+v: threshold %q", n, n.Threshold)
		}
		// a near miss of the rule, not of floating-point detail
		if slices.ContainsFunc(truth.Borderline, func(b GroupDay) bool { return b.Group == n.Group && b.Day == n.Day }) {
			t.Errorf("near-miss day %+v is borderline", n)
		}
	}
	for _, th := range []Threshold{ThresholdRecordRatio, ThresholdSuspectScrap, ThresholdRecordMinShifts,
		ThresholdPaceSetterRatio, ThresholdPaceMinWorkers, ThresholdCommonPaceShare} {
		if found[side{th, false}] == 0 || found[side{th, true}] == 0 {
			t.Errorf("%s: %d near misses below, %d at or above", th, found[side{th, false}], found[side{th, true}])
		}
	}
	for _, s := range []string{"record ratio 2.9", "record ratio 3.1", "suspect scrap 0.051", "record min shifts 21",
		"pace-setter ratio 1.4", "pace-setter ratio 1.6", "pace min workers 7", "pace min workers 9", "common pace share 0.71"} {
		if step[s] == 0 {
			t.Errorf("no near miss changes its alert under %s", s)
		}
	}
	t.Logf("near misses: %v; within a step of the threshold: %v", found, step)
}

// Late reports are ordinary shifts of ordinary days, never on time too.
func TestLateAreOrdinary(t *testing.T) {
	msgs, truth := defaultRun(t)
	special := map[string]bool{}
	for _, id := range truth.RecordShifts {
		special[id] = true
	}
	for _, id := range truth.SuspectRecords {
		special[id] = true
	}
	for _, n := range truth.NearRecords {
		special[n.EventID] = true
	}
	paceDays := map[groupDay]bool{}
	for _, p := range truth.PaceSetters {
		paceDays[groupDay{p.Group, p.Day}] = true
	}
	for _, n := range truth.NearDays {
		paceDays[groupDay{n.Group, n.Day}] = true
	}
	onTime := map[string]bool{}
	for _, m := range msgs {
		if m.Kind == KindValid {
			onTime[m.EventID] = true
		}
	}
	for _, m := range msgs {
		if m.Kind != KindLate {
			continue
		}
		ev, _ := shift.Decode(m.Value)
		if special[m.EventID] || paceDays[groupDay{ev.Group(), shift.DayOf(ev.ShiftStart)}] || onTime[m.EventID] {
			t.Errorf("late report %s is special or also on time", m.EventID)
		}
	}
	if len(truth.Late) == 0 {
		t.Error("no late reports")
	}
}
