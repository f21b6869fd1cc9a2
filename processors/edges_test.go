package processors

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/shift"
)

// The edges of every threshold, each with a case on either side, under the
// default options of the contract (28-day window, 6 h lateness, 20 shifts,
// 3×, 5 % scrap, 8 workers, 1.5×, ±10 % for 70 %). Rates are chosen so
// that the arithmetic is exact in float64: 8 h shifts, outputs that divide
// by 8 exactly, medians of 8 or 10.

// at is a time of the scenarios: 1935-08-d hh:mm UTC.
func at(d, hh, mm int) time.Time { return time.Date(1935, 8, d, hh, mm, 0, 0, time.UTC) }

// hewer is a shift of the peer group (irmino, hewer, t): 8 hours, so its
// rate is output / 8.
func hewer(id, worker string, start time.Time, output float64) shift.Event {
	return shift.Event{EventID: id, PlantID: "irmino", Industry: "coal", Role: "hewer", WorkerID: worker,
		CrewSize: 1, ShiftStart: start, ShiftHours: 8, Output: output, Unit: "t"}
}

// clock is a shift of another group of the same plant: it moves the
// plant's stream time and nothing else the cases look at.
func clock(id string, t time.Time) shift.Event {
	return shift.Event{EventID: id, PlantID: "irmino", Industry: "coal", Role: "stoker", WorkerID: "c",
		CrewSize: 1, ShiftStart: t, ShiftHours: 8, Output: 8, Unit: "t"}
}

// history is n shifts of the group at rate 8 (output 64), one an hour from
// 1935-08-01 00:00, by n different workers.
func history(n int) []shift.Event {
	evs := make([]shift.Event, n)
	for i := range evs {
		evs[i] = hewer(fmt.Sprintf("h%d", i), fmt.Sprintf("h%d", i), at(1, 0, 0).Add(time.Duration(i)*time.Hour), 64)
	}
	return evs
}

func with(evs []shift.Event, more ...shift.Event) []shift.Event {
	return append(slices.Clone(evs), more...)
}

// run processes evs in order on a fresh partition under opts, failing on
// anything but ErrDuplicate, and returns the output and the duplicates'
// ids.
func run(t *testing.T, opts Options, evs []shift.Event) (*Output, []string) {
	t.Helper()
	p, err := NewPartition(opts, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := &Output{}
	var dups []string
	for i := range evs {
		ev := evs[i]
		switch err := p.Process(&ev, Input{Offset: int64(i)}, out); {
		case errors.Is(err, ErrDuplicate):
			dups = append(dups, ev.EventID)
		case err != nil:
			t.Fatal(err)
		}
	}
	return out, dups
}

// normRows are the group's daily norm rows of the day of t.
func normRows(out *Output, t time.Time) []NormRow {
	var rows []NormRow
	for _, n := range out.Norms {
		if n.Group.PlantID == "irmino" && n.Group.Role == "hewer" && n.Day == shift.DayOf(t) {
			rows = append(rows, n)
		}
	}
	return rows
}

func shiftOf(t *testing.T, out *Output, id string) Shift {
	t.Helper()
	for _, s := range out.Shifts {
		if s.EventID == id {
			return s
		}
	}
	t.Fatalf("no shift %s in the output", id)
	return Shift{}
}

// alertKeys lists the alerts of the group (irmino, hewer, t) as
// "type worker" ("type event" for shift alerts), sorted; only shift alerts
// when shiftOnly.
func alertKeys(out *Output, shiftOnly ...bool) []string {
	var keys []string
	for _, a := range out.Alerts {
		if a.PlantID != "irmino" || a.Role != "hewer" || len(shiftOnly) > 0 && a.EventID == "" {
			continue
		}
		who := a.WorkerID
		if a.EventID != "" {
			who = a.EventID
		}
		keys = append(keys, strings.TrimSpace(string(a.Type)+" "+who))
	}
	slices.Sort(keys)
	return keys
}

// TestRecordEdges: a shift against 20 (or 19) earlier shifts of its group at
// rate 8, so that its norm is exactly 8 and its ratio its rate over 8.
func TestRecordEdges(t *testing.T) {
	judged := func(output, scrap float64) shift.Event {
		ev := hewer("x", "stakhanov", at(2, 6, 0), output)
		ev.Scrap = scrap
		return ev
	}
	tests := []struct {
		name  string
		evs   []shift.Event
		count int      // the judged shift's norm count
		ratio float64  // its ratio
		want  []string // the group's shift alerts (its history days make day alerts too)
	}{
		// 24 / 8 = 3.00: the ratio reaches the record mark.
		{"ratio 3.00", with(history(20), judged(192, 0)), 20, 3, []string{"record_shift x"}},
		// 23.92 / 8 = 2.99: just short of it.
		{"ratio 2.99", with(history(20), judged(191.36, 0)), 20, 2.99, nil},
		// 19 shifts in the window: too little history, whatever the ratio.
		{"19 shifts", with(history(19), judged(192, 0)), 19, 3, nil},
		{"19 shifts at 10x", with(history(19), judged(640, 0)), 19, 10, nil},
		// scrap 12 of 240 is 5.00 % (exactly 0.05 in float64, as 9.6 of
		// 192 is not): not above the mark, a record at 3.75×.
		{"scrap 5.00 %", with(history(20), judged(240, 12)), 20, 3.75, []string{"record_shift x"}},
		// 12.024 of 240 is 5.01 %: above it, a suspect record.
		{"scrap 5.01 %", with(history(20), judged(240, 12.024)), 20, 3.75, []string{"suspect_record x"}},
		// a group whose shifts produced nothing: the median is 0, the ratio
		// undefined, and nothing is judged.
		{"zero norm", with(zeroHistory(20), judged(192, 0)), 20, math.NaN(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := run(t, DefaultOptions(), tt.evs)
			s := shiftOf(t, out, "x")
			if s.Norm.Count != tt.count || !sameFloat(s.Ratio, tt.ratio, 1e-12) {
				t.Fatalf("norm count %d ratio %v, want %d and %v", s.Norm.Count, s.Ratio, tt.count, tt.ratio)
			}
			if got := alertKeys(out, true); !slices.Equal(got, tt.want) {
				t.Fatalf("alerts %q, want %q", got, tt.want)
			}
			for _, a := range out.Alerts {
				if a.EventID == "x" {
					if end := at(2, 14, 0); !a.DetectedAt.Equal(end) {
						t.Errorf("detected at %v, want the shift's end %v", a.DetectedAt, end)
					}
					if a.GroupSize != tt.count || a.NormRate != 8 || a.Rate != 8*tt.ratio {
						t.Errorf("alert %+v: want group size %d, norm 8, rate %v", a, tt.count, 8*tt.ratio)
					}
				}
			}
		})
	}
}

func zeroHistory(n int) []shift.Event {
	evs := history(n)
	for i := range evs {
		evs[i].Output = 0
	}
	return evs
}

func sameFloat(a, b, tol float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b))
}

// TestWindowEdges: the norm of a shift at T is over [T − 28 d, T): a shift
// exactly 28 days earlier is in it, one a second earlier is not, and
// shifts starting at T itself are not.
func TestWindowEdges(t *testing.T) {
	T := at(30, 6, 0)
	edge := T.Add(-DefaultOptions().Window) // 1935-07-02 06:00
	// 19 shifts at rate 8 well inside the window, after the edge shift
	inside := func() []shift.Event {
		evs := make([]shift.Event, 19)
		for i := range evs {
			evs[i] = hewer(fmt.Sprintf("i%d", i), fmt.Sprintf("i%d", i), at(20, 0, 0).Add(time.Duration(i)*time.Hour), 64)
		}
		return evs
	}
	judged := hewer("x", "stakhanov", T, 192)
	peer := hewer("peer", "peer", T, 64) // same start: not in x's window
	tests := []struct {
		name  string
		evs   []shift.Event
		count int
		want  []string
	}{
		{"at start - 28 d", append([]shift.Event{hewer("e", "e", edge, 64)}, with(inside(), judged)...), 20, []string{"record_shift x"}},
		{"1 s before start - 28 d", append([]shift.Event{hewer("e", "e", edge.Add(-time.Second), 64)}, with(inside(), judged)...), 19, nil},
		{"a peer at the same start", append([]shift.Event{hewer("e", "e", edge, 64)}, with(inside(), peer, judged)...), 20, []string{"record_shift x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := run(t, DefaultOptions(), tt.evs)
			if s := shiftOf(t, out, "x"); s.Norm.Count != tt.count || s.Late {
				t.Fatalf("norm count %d late %v, want %d on time", s.Norm.Count, s.Late, tt.count)
			}
			if got := alertKeys(out, true); !slices.Equal(got, tt.want) {
				t.Fatalf("alerts %q, want %q", got, tt.want)
			}
		})
	}
}

// TestClosingNormEdges: the norm written when day D closes is over
// [D end − 28 d, D end): a shift exactly 28 days before the day's end is
// counted, one a second earlier is not, and one at the day's end (the next
// day's first second) is not.
func TestClosingNormEdges(t *testing.T) {
	end := at(20, 0, 0) // day 1935-08-19 ends
	w := DefaultOptions().Window
	// With a shift at the day's end the group's window has slid to it when
	// the day closes; without one it stands at the last shift before.
	tests := []struct {
		name  string
		first time.Time
		next  bool
		count int
	}{
		{"at end - 28 d", end.Add(-w), true, 3},
		{"1 s before end - 28 d", end.Add(-w - time.Second), true, 2},
		{"at end - 28 d, no shift after", end.Add(-w), false, 3},
		{"1 s before end - 28 d, no shift after", end.Add(-w - time.Second), false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := []shift.Event{
				hewer("a", "a", tt.first, 64),
				hewer("b", "b", at(19, 6, 0), 64),
				hewer("c", "c", at(19, 23, 0), 64),
			}
			if tt.next {
				evs = append(evs, hewer("d", "d", end, 64)) // day 20: after the window
			}
			evs = append(evs, clock("tick", end.Add(6*time.Hour)))
			out, _ := run(t, DefaultOptions(), evs)
			if rows := normRows(out, at(19, 0, 0)); len(rows) != 1 || rows[0].Norm.Count != tt.count {
				t.Fatalf("norm rows of 1935-08-19 %+v, want one of %d shifts", rows, tt.count)
			}
		})
	}
}

// workday is one day group of 8 h shifts on 1935-08-10, one worker per rate,
// worker ids w0, w1, …
func workday(rates ...float64) []shift.Event {
	evs := make([]shift.Event, len(rates))
	for i, r := range rates {
		id := fmt.Sprintf("w%d", i)
		evs[i] = hewer(id, id, at(10, 6, 0), r*8)
	}
	return evs
}

// closeDay moves stream time to the end of 1935-08-10 plus the lateness,
// which closes it.
var closeDay = clock("tick", at(11, 6, 0))

func repeat(n int, r float64) []float64 {
	rs := make([]float64, n)
	for i := range rs {
		rs[i] = r
	}
	return rs
}

func rates(parts ...[]float64) []float64 { return slices.Concat(parts...) }

// TestPaceEdges: each day group's verdict when the day closes.
func TestPaceEdges(t *testing.T) {
	tests := []struct {
		name  string
		rates []float64
		want  []string
	}{
		// median 10; w7 at 15 = 1.50×: a pace-setter; 7 of 8 within ±10 %.
		{"1.50x", rates(repeat(7, 10), []float64{15}), []string{"common_pace", "pace_setter w7"}},
		// w7 at 14.92 = 1.492×: not.
		{"1.49x", rates(repeat(7, 10), []float64{14.92}), []string{"common_pace"}},
		// 7 workers: not judged at all, even with one at 3×.
		{"7 workers", rates(repeat(6, 10), []float64{30}), nil},
		// 8 workers, the same pattern: judged.
		{"8 workers", rates(repeat(7, 10), []float64{30}), []string{"common_pace", "pace_setter w7"}},
		// 100 workers, median 10: 70 at 10 is 70 % at the common level.
		{"70 percent", rates(repeat(70, 10), repeat(15, 5), repeat(15, 14)), []string{"common_pace"}},
		// 69 at 10 and one at 11.04, just outside +10 %: 69 %.
		{"69 percent", rates(repeat(69, 10), []float64{11.04}, repeat(15, 5), repeat(15, 14)), nil},
		// 5 at 10 and one each exactly at 9 and 11 (−10 %, +10 %): with
		// them 7 of 10 are at the common level, 70 %.
		{"exactly at 10 percent", rates(repeat(5, 10), []float64{9, 11}, []float64{5, 5, 20}), []string{"common_pace", "pace_setter w9"}},
		// a shade beyond either edge: 5 of 10.
		{"beyond 10 percent", rates(repeat(5, 10), []float64{8.99, 11.01}, []float64{5, 5, 20}), []string{"pace_setter w9"}},
		// an idle shop: median 0, nothing is judged.
		{"idle shop", rates(repeat(8, 0), []float64{3}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := run(t, DefaultOptions(), with(workday(tt.rates...), closeDay))
			if got := alertKeys(out); !slices.Equal(got, tt.want) {
				t.Fatalf("alerts %q, want %q", got, tt.want)
			}
			for _, a := range out.Alerts {
				if a.PlantID != "irmino" || a.Role != "hewer" {
					continue
				}
				if want := at(11, 6, 0); !a.DetectedAt.Equal(want) {
					t.Errorf("%s detected at %v, want the day's end + 6 h %v", a.Type, a.DetectedAt, want)
				}
				if a.GroupSize != len(tt.rates) || a.Day != shift.DayOf(at(10, 0, 0)) {
					t.Errorf("%s: group size %d day %v, want %d and 1935-08-10", a.Type, a.GroupSize, a.Day, len(tt.rates))
				}
			}
		})
	}
}

// TestDayCloseEdges: a day closes when stream time reaches exactly its end
// plus the lateness; a second before, a shift of the day is still on time
// and joins its group; at or after, it is late and changes nothing.
func TestDayCloseEdges(t *testing.T) {
	seven := workday(repeat(7, 10)...)
	eighth := hewer("w7", "w7", at(10, 14, 0), 20*8) // 2× the median
	tests := []struct {
		name     string
		evs      []shift.Event
		late     bool
		want     []string
		normRows int
	}{
		{"1 s before end + 6 h", with(seven, clock("t1", at(11, 5, 59).Add(59*time.Second)), eighth, clock("t2", at(11, 6, 0)), clock("t3", at(12, 6, 0))),
			false, []string{"common_pace", "pace_setter w7"}, 1},
		{"at end + 6 h", with(seven, clock("t1", at(11, 6, 0)), eighth, clock("t3", at(12, 6, 0))),
			true, nil, 1},
		// a shift starting at midnight belongs to the day it starts: on
		// time until that day's end + 6 h, though the day before closed
		{"a midnight start", with(seven, clock("t1", at(11, 6, 0).Add(time.Second)), hewer("w7", "w7", at(11, 0, 0), 64), clock("t3", at(12, 6, 0))),
			false, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := run(t, DefaultOptions(), tt.evs)
			if s := shiftOf(t, out, "w7"); s.Late != tt.late {
				t.Fatalf("the eighth worker's shift late %v, want %v", s.Late, tt.late)
			}
			if got := alertKeys(out); !slices.Equal(got, tt.want) {
				t.Fatalf("alerts %q, want %q", got, tt.want)
			}
			if n := len(normRows(out, at(10, 0, 0))); n != tt.normRows {
				t.Fatalf("%d norm rows for the day, want %d", n, tt.normRows)
			}
		})
	}
}

// TestLateRepeatOfUnknownGroup: a late shift of a group its plant holds no
// state for is stored once, with no norm, counted as too late; its repeat
// is a duplicate.
func TestLateRepeatOfUnknownGroup(t *testing.T) {
	late := hewer("old", "w", at(1, 6, 0), 64)
	out, dups := run(t, DefaultOptions(), []shift.Event{clock("t", at(20, 6, 0)), late, late})
	if s := shiftOf(t, out, "old"); !s.Late || s.Unchecked || s.Norm.Count != 0 {
		t.Fatalf("late %v unchecked %v count %d, want late, checked, no norm", s.Late, s.Unchecked, s.Norm.Count)
	}
	if len(out.Shifts) != 2 || !slices.Equal(dups, []string{"old"}) || out.Duplicates != 1 || out.TooLate != 1 {
		t.Fatalf("%d shifts, duplicates %v (%d), %d too late, want 2, [old] and 1", len(out.Shifts), dups, out.Duplicates, out.TooLate)
	}
}

// TestBehindTheWindowEdge: a shift more than one window behind stream time
// is late even when its day is still open. Under the defaults a day closes
// long before (6 h against 28 days), so this edge shows only with a
// lateness longer than the window: 3 days against 2.
func TestBehindTheWindowEdge(t *testing.T) {
	opts := DefaultOptions()
	opts.Window, opts.AllowedLateness = 48*time.Hour, 72*time.Hour
	now := at(20, 12, 0)
	tests := []struct {
		name  string
		start time.Time
		late  bool
	}{
		{"exactly one window behind", now.Add(-opts.Window), false},
		{"1 s more", now.Add(-opts.Window - time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := run(t, opts, []shift.Event{hewer("now", "a", now, 64), hewer("x", "b", tt.start, 64)})
			if s := shiftOf(t, out, "x"); s.Late != tt.late {
				t.Fatalf("late %v, want %v", s.Late, tt.late)
			}
		})
	}
}

// runLogged is run with each event's record timestamp given beside it.
func runLogged(t *testing.T, opts Options, evs []shift.Event, logs []time.Time) (*Output, []error) {
	t.Helper()
	p, err := NewPartition(opts, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := &Output{}
	errs := make([]error, len(evs))
	for i := range evs {
		ev := evs[i]
		errs[i] = p.Process(&ev, Input{Offset: int64(i), LogTime: logs[i]}, out)
	}
	return out, errs
}

// TestLateShiftsJudged: a late shift whose plant still holds its whole
// trailing window gets its norm from it and may be a (late) record; it
// enters no window and no day. One whose window the plant no longer holds
// whole gets no norm and is counted.
func TestLateShiftsJudged(t *testing.T) {
	// 20 shifts at rate 8 on 1935-08-01 (history), then the clock moves to
	// 08-03 06:00, closing 08-01 and 08-02
	base := with(history(20), clock("t1", at(3, 6, 0)))
	tests := []struct {
		name    string
		late    shift.Event
		count   int // its norm count; 0: no norm
		alert   string
		tooLate int
	}{
		// 08-02 06:00: its day closed, its window [07-05, 08-02) all held
		{"record on a closed day", hewer("x", "stakhanov", at(2, 6, 0), 192), 20, "record_shift x", 0},
		{"ordinary on a closed day", hewer("x", "stakhanov", at(2, 6, 0), 64), 20, "", 0},
		// 07-05 00:00: its window [06-07, 07-05) starts before what the
		// plant holds, everything from 08-03 06:00 − 29 d 6 h = 07-04 00:00
		{"too late for the state", hewer("x", "stakhanov", at(1, 0, 0).Add(-27*24*time.Hour), 192), 0, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after := hewer("y", "w", at(3, 7, 0), 64) // on time, after the late one
			out, _ := run(t, DefaultOptions(), with(base, tt.late, after))
			x := shiftOf(t, out, "x")
			if !x.Late || x.Norm.Count != tt.count || (tt.count == 0) != math.IsNaN(x.Ratio) {
				t.Fatalf("late %v, norm count %d ratio %v; want late with %d", x.Late, x.Norm.Count, x.Ratio, tt.count)
			}
			var alerts []string
			for _, a := range out.Alerts {
				if a.EventID == "x" {
					alerts = append(alerts, string(a.Type)+" x")
					if !a.Late {
						t.Errorf("the alert of a late shift does not say so: %+v", a)
					}
				}
			}
			if want := []string{tt.alert}; tt.alert != "" && !slices.Equal(alerts, want) || tt.alert == "" && len(alerts) > 0 {
				t.Fatalf("alerts %q, want %q", alerts, tt.alert)
			}
			if out.TooLate != tt.tooLate {
				t.Fatalf("%d too late, want %d", out.TooLate, tt.tooLate)
			}
			// the late shift entered no window: the next one sees the 20
			if y := shiftOf(t, out, "y"); y.Norm.Count != 20 {
				t.Fatalf("the next shift's window holds %d, want the 20 of the history", y.Norm.Count)
			}
			if n := len(normRows(out, at(2, 0, 0))); n != 0 {
				t.Fatalf("%d norm rows for the late shift's day, which had no on-time shift", n)
			}
		})
	}
}

// TestFutureGuard: a shift that starts more than the margin (24 h) after
// its record's timestamp is refused and moves no clock; at the margin it is
// taken; a record without a timestamp is not judged.
func TestFutureGuard(t *testing.T) {
	written := at(10, 12, 0)
	tests := []struct {
		name  string
		start time.Time
		log   time.Time
		err   error
	}{
		{"at the margin", written.Add(24 * time.Hour), written, nil},
		{"a second past it", written.Add(24*time.Hour + time.Second), written, ErrFromFuture},
		{"in 2099", time.Date(2099, 12, 31, 6, 0, 0, 0, time.UTC), written, ErrFromFuture},
		{"no timestamp", time.Date(2099, 12, 31, 6, 0, 0, 0, time.UTC), time.Time{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := hewer("x", "w", tt.start, 64)
			next := hewer("y", "w", at(10, 14, 0), 64)
			out, errs := runLogged(t, DefaultOptions(), []shift.Event{ev, next}, []time.Time{tt.log, written})
			if !errors.Is(errs[0], tt.err) && !(tt.err == nil && errs[0] == nil) {
				t.Fatalf("err %v, want %v", errs[0], tt.err)
			}
			y := shiftOf(t, out, "y")
			if tt.err != nil {
				if out.FromFuture != 1 || len(out.Shifts) != 1 || y.Late {
					t.Fatalf("%d from the future, %d shifts, next late %v: the refused shift left a trace", out.FromFuture, len(out.Shifts), y.Late)
				}
				return
			}
			if out.FromFuture != 0 || len(out.Shifts) != 2 {
				t.Fatalf("%d from the future, %d shifts", out.FromFuture, len(out.Shifts))
			}
		})
	}
}

// TestIdleClose: a plant silent for 24 h of the log's time has its open
// days closed, judged as if its clock had passed them; a second earlier
// they are open. Another plant's records move the log's time.
func TestIdleClose(t *testing.T) {
	last := at(10, 20, 0) // the written time of irmino's last record
	for _, tt := range []struct {
		name   string
		other  time.Time // the other plant's record's timestamp
		closed bool
	}{
		{"after 24 h of silence", last.Add(24 * time.Hour), true},
		{"a second before", last.Add(24*time.Hour - time.Second), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			evs := workday(rates(repeat(7, 10), []float64{20})...) // irmino, 08-10 06:00
			logs := make([]time.Time, len(evs))
			for i := range logs {
				logs[i] = last
			}
			other := shift.Event{EventID: "o", PlantID: "zil", Industry: "automotive", Role: "fitter", WorkerID: "f",
				CrewSize: 1, ShiftStart: at(11, 8, 0), ShiftHours: 8, Output: 8, Unit: "parts"}
			lateOne := hewer("w8", "w8", at(10, 6, 0), 80)
			out, errs := runLogged(t, DefaultOptions(), with(evs, other, lateOne), append(logs, tt.other, tt.other))
			for i, err := range errs {
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
			}
			want := []string(nil)
			if tt.closed {
				want = []string{"common_pace", "pace_setter w7"}
			}
			if got := alertKeys(out); !slices.Equal(got, want) {
				t.Fatalf("alerts %q, want %q", got, want)
			}
			if n := len(normRows(out, at(10, 0, 0))); n != map[bool]int{true: 1}[tt.closed] {
				t.Fatalf("%d norm rows of the day", n)
			}
			for _, a := range out.Alerts {
				if a.PlantID == "irmino" && !a.DetectedAt.Equal(at(11, 6, 0)) {
					t.Fatalf("detected at %v: a day's alerts are detected at its end + 6 h however it closed", a.DetectedAt)
				}
			}
			// a report of the closed day arriving after is late
			if s := shiftOf(t, out, "w8"); s.Late != tt.closed {
				t.Fatalf("a report of the day after it fell idle: late %v, want %v", s.Late, tt.closed)
			}
		})
	}
}

// TestPlantsDoNotShareClocks: a plant whose backfill of 1939 history is
// interleaved with another plant's live reports of 1935 changes nothing of
// the live plant's analysis, and is analysed itself.
func TestPlantsDoNotShareClocks(t *testing.T) {
	live := with(history(20), hewer("x", "stakhanov", at(2, 6, 0), 192), clock("t", at(3, 6, 0)))
	alone, _ := run(t, DefaultOptions(), live)
	var mixed []shift.Event
	for i, ev := range live {
		back := ev
		back.EventID, back.PlantID = "b-"+ev.EventID, "backfill-works"
		back.ShiftStart = ev.ShiftStart.AddDate(4, 0, 0)
		mixed = append(mixed, back, live[i])
	}
	both, _ := run(t, DefaultOptions(), mixed)
	// an alert as the rules see it: type, worker, ratio
	judged := func(as []Alert, plant string) []string {
		var out []string
		for _, a := range as {
			if a.PlantID == plant {
				out = append(out, fmt.Sprintf("%s %s %.6f late=%v", a.Type, a.WorkerID, a.Ratio, a.Late))
			}
		}
		return out
	}
	want := judged(alone.Alerts, "irmino")
	if len(want) != 2 {
		t.Fatalf("the live plant alone raises %q: want a record and a common pace", want)
	}
	if got := judged(both.Alerts, "irmino"); !slices.Equal(got, want) {
		t.Fatalf("the live plant's alerts beside a backfill: %q, alone %q", got, want)
	}
	if got := judged(both.Alerts, "backfill-works"); !slices.Equal(got, want) {
		t.Fatalf("the backfilled plant's alerts %q; the same reports four years later raise %q", got, want)
	}
	for _, s := range both.Shifts {
		if s.Late {
			t.Fatalf("%s of %s is late: no plant's report is late here", s.EventID, s.PlantID)
		}
	}
}

// TestSilentPlants: what a plant's silence in the log's time does, at the
// edges, with other plants going on beside it: after IdleClose (24 h) its
// open days close; after Retention its state is dropped, its clock kept,
// and its old shifts come back unchecked; after twice Retention the plant
// itself is forgotten. A second plant, silent 12 h less, is judged by its
// own silence, and a third keeps the log's time moving.
func TestSilentPlants(t *testing.T) {
	opts := DefaultOptions()
	idle, retention := opts.IdleClose, opts.Retention()
	t0 := at(10, 20, 0) // when irmino's reports were written; zil's 12 h later
	plantDay := func(plant string) []shift.Event {
		evs := workday(rates(repeat(7, 10), []float64{20})...)
		for i := range evs {
			evs[i].EventID, evs[i].PlantID = plant+"-"+evs[i].EventID, plant
		}
		return evs
	}
	type state struct{ closed, held, known bool }
	tests := []struct {
		name        string
		after       time.Duration // the ticker's record, after t0
		irmino, zil state
	}{
		{"a second before idle", idle - time.Second, state{false, true, true}, state{false, true, true}},
		{"idle", idle, state{true, true, true}, state{false, true, true}},
		{"a second before retention", retention - time.Second, state{true, true, true}, state{true, true, true}},
		{"retention", retention, state{true, false, true}, state{true, true, true}},
		{"a second before twice retention", 2*retention - time.Second, state{true, false, true}, state{true, false, true}},
		{"twice retention", 2 * retention, state{true, false, false}, state{true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := NewPartition(opts, 0)
			var out Output
			feed := func(evs []shift.Event, written time.Time) {
				for i := range evs {
					ev := evs[i]
					if err := p.Process(&ev, Input{Offset: int64(i), LogTime: written}, &out); err != nil {
						t.Fatal(err)
					}
				}
			}
			// a plant silent 12 h longer than irmino: the log's time passes
			// its deadlines first, and irmino's silence must be judged then
			// by its own length
			feed(plantDay("early"), t0.Add(-12*time.Hour))
			feed(plantDay("irmino"), t0)
			feed(plantDay("zil"), t0.Add(12*time.Hour))
			// the ticker's shifts start when they are written: on time,
			// never from the future
			tick := func(d time.Duration) {
				at := t0.Add(d)
				feed([]shift.Event{{EventID: "tick-" + at.String(), PlantID: "ticker", Industry: "power", Role: "stoker",
					WorkerID: "s", CrewSize: 1, ShiftStart: at, ShiftHours: 8, Output: 8, Unit: "t"}}, at)
			}
			tick(idle / 2)
			tick(tt.after)
			for plant, want := range map[string]state{"irmino": tt.irmino, "zil": tt.zil} {
				pl := p.plants[plant]
				got := state{closed: want.closed, known: pl != nil}
				if pl != nil {
					got.closed = len(pl.openDays) == 0
					got.held = len(pl.groups) > 0 && len(pl.seen) > 0
				}
				rows := 0
				for _, n := range out.Norms {
					if n.Group.PlantID == plant {
						rows++
					}
				}
				if got != want || (rows == 1) != want.closed {
					t.Fatalf("%s: closed %v (%d norm rows), state held %v, known %v; want %+v", plant, got.closed, rows, got.held, got.known, want)
				}
				if pl != nil && !want.held && (pl.forgotten != pl.streamTime || pl.streamTime == noTime) {
					t.Fatalf("%s: state dropped, but forgotten at %d with stream time %d", plant, pl.forgotten, pl.streamTime)
				}
			}
			// a repeat of irmino's first report, sent again now
			again := plantDay("irmino")[0]
			out.Reset()
			err := p.Process(&again, Input{Offset: 99, LogTime: t0.Add(tt.after)}, &out)
			switch {
			case tt.irmino.held:
				if !errors.Is(err, ErrDuplicate) {
					t.Fatalf("a repeat while its id is held: %v", err)
				}
			case tt.irmino.known:
				if err != nil || !out.Shifts[0].Unchecked || !out.Shifts[0].Late {
					t.Fatalf("a repeat after the ids were dropped: %v, %+v; want stored late and unchecked, for the sink to check", err, out.Shifts)
				}
			default:
				// forgotten altogether: a plant seen for the first time
				if err != nil || out.Shifts[0].Late || out.Shifts[0].Unchecked {
					t.Fatalf("the first report of a forgotten plant: %v, %+v", err, out.Shifts)
				}
			}
		})
	}
}
