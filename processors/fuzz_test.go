package processors

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/shift"
)

// FuzzProcess drives a partition with event sequences made from the fuzz
// input — any order, any lateness, repeats, zero outputs — and checks what
// must hold whatever comes: no panic, alerts only as the rules allow, late
// shifts inert, and a snapshot that continues exactly as the original.
func FuzzProcess(f *testing.F) {
	for _, seed := range fuzzProcessSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkProcess(t, data) })
}

// fuzzProcessSeeds are FuzzProcess's seed corpus: arbitrary bytes, and
// sequences made to reach every rule (TestFuzzProcessSeedsReachEveryRule
// holds them to it), so that a plain `go test` checks the rules' alerts
// and not only quiet input.
func fuzzProcessSeeds() [][]byte {
	const day = 8 // slots of 3 h
	// plant 0, workers 0-5 on one day: five at one pace (rate 10), one at
	// 3.3 times it — a pace-setter in a shop that holds a common pace
	var paceDay []seedShift
	for w := range 6 {
		out := 60
		if w == 5 {
			out = 200
		}
		paceDay = append(paceDay, seedShift{id: w, worker: w, slot: 2, hours: 6, output: out, crew: 1})
	}
	// the next day: a record (4 times the norm of 10), then a suspect one
	// (the same rate with 1/8 of it scrap); their day's first shift closes
	// the first day (stream time reaches its end plus the allowed lateness)
	records := append(slices.Clone(paceDay),
		seedShift{id: 10, worker: 0, slot: 2 + day, hours: 6, output: 60, crew: 1},
		seedShift{id: 11, worker: 1, slot: 2 + day, hours: 6, output: 240, crew: 1},
		seedShift{id: 12, worker: 2, slot: 2 + day, hours: 6, output: 240, crew: 2, scrapEighths: 1},
	)
	// then a shift of the closed first day (late), one of four times the
	// rate (a late record, judged against the window still held), one
	// written 36 h before it starts (from the future), and repeats of ids
	// still remembered (duplicates): of one seen before FuzzProcess's
	// snapshot in the middle, and of one seen after it
	lateAndRepeated := append(slices.Clone(records),
		seedShift{id: 20, worker: 6, slot: 3, hours: 8, output: 90, crew: 3, scrapEighths: 2},
		seedShift{id: 22, worker: 7, slot: 3, hours: 6, output: 240, crew: 1},
		seedShift{id: 23, worker: 8, slot: 4 + day, hours: 6, output: 60, crew: 1, log: -3},
		records[1], records[7],
		seedShift{id: 21, plant: 1, worker: 4, slot: 4 + day, hours: 4, output: 30, crew: 1},
		seedShift{id: 21, plant: 1, worker: 4, slot: 4 + day, hours: 4, output: 30, crew: 1},
	)
	return [][]byte{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		bytes.Repeat([]byte{1, 0, 10, 200, 0, 3}, 40),
		bytes.Repeat([]byte{7, 255, 0, 1, 90, 2, 4, 128}, 30),
		encodeSeed(records...),
		encodeSeed(lateAndRepeated...),
	}
}

// seedShift is one event of FuzzProcess's input as fields: its id, plant
// (0 or 1) and worker (0-8), its start in 3-hour slots from 1935-08-01,
// its hours (1-24), output (0-255), crew (1-3), scrap in eighths of the
// output (0-3), and its record's timestamp in 12-hour steps from its start
// (−3 to 4).
type seedShift struct {
	id, plant, worker, slot, hours, output, crew, scrapEighths, log int
}

// encodeSeed writes shifts as fuzzEvents reads them: six bytes each.
func encodeSeed(shifts ...seedShift) []byte {
	var out []byte
	for _, s := range shifts {
		b1, b5 := -1, -1
		for b := 0; b < 256 && b1 < 0; b++ {
			if b%2 == s.plant && b%9 == s.worker {
				b1 = b
			}
		}
		for b := (s.log + 3) * 32; b < (s.log+4)*32 && b5 < 0; b++ {
			if b%3 == s.crew-1 && b%4 == s.scrapEighths {
				b5 = b
			}
		}
		if b1 < 0 || b5 < 0 || s.log < -3 || s.log > 4 || s.id < 0 || s.id > 63 || s.slot+64 > 255 || s.hours < 1 || s.hours > 24 || s.output > 255 {
			panic(fmt.Sprintf("seed shift %+v cannot be encoded", s))
		}
		out = append(out, byte(s.id), byte(b1), byte(s.slot+64), byte(s.hours-1), byte(s.output), byte(b5))
	}
	return out
}

// fuzzProcessOptions are the rules FuzzProcess judges by: the defaults
// with small groups, so that short inputs reach them.
func fuzzProcessOptions() Options {
	opts := DefaultOptions()
	opts.RecordMinShifts, opts.PaceMinWorkers = 3, 2
	return opts
}

// fuzzEvents reads events from the fuzz input, six bytes each: id, plant
// and worker, start, hours, output, crew and scrap. Each record's
// timestamp is its start moved by −36 h to +48 h in steps of 12 h (from
// the last byte's high bits): some come from the future, and plants fall
// silent in the log's time while the other reports.
func fuzzEvents(data []byte) ([]shift.Event, []time.Time) {
	base := time.Date(1935, 8, 1, 0, 0, 0, 0, time.UTC)
	var evs []shift.Event
	var logs []time.Time
	for i := 0; i+6 <= len(data) && len(evs) < 300; i += 6 {
		b := data[i : i+6]
		start := base.Add(time.Duration(int(b[2])-64) * 3 * time.Hour)
		logs = append(logs, start.Add(time.Duration(int(b[5]>>5)-3)*12*time.Hour))
		evs = append(evs, shift.Event{
			EventID: fmt.Sprintf("e%d", b[0]%64), PlantID: fmt.Sprintf("p%d", b[1]%2), Industry: "coal", Role: "hewer", Unit: "t",
			WorkerID: fmt.Sprintf("w%d", b[1]%9), CrewSize: 1 + int(b[5]%3), ShiftStart: start,
			ShiftHours: float64(1 + b[3]%24), Output: float64(b[4]), Scrap: float64(b[4]) * float64(b[5]%4) / 8,
		})
	}
	return evs, logs
}

// checkProcess runs the events of data through a partition, snapshots it
// halfway and continues both, and checks what must hold whatever the
// input. It returns everything the original produced.
func checkProcess(t *testing.T, data []byte) Output {
	opts := fuzzProcessOptions()
	p, _ := NewPartition(opts, 0)
	evs, logs := fuzzEvents(data)
	cut := len(evs) / 2
	var out Output
	for i := range evs[:cut] {
		ev := evs[i]
		err := p.Process(&ev, Input{Offset: int64(i), LogTime: logs[i]}, &out)
		if err != nil && !errors.Is(err, ErrDuplicate) && !errors.Is(err, ErrFromFuture) {
			t.Fatal(err)
		}
		if errors.Is(err, ErrFromFuture) != ev.ShiftStart.After(logs[i].Add(opts.FutureMargin)) {
			t.Fatalf("start %v written %v: %v", ev.ShiftStart, logs[i], err)
		}
	}
	q, _ := NewPartition(opts, 0)
	if _, err := q.LoadSnapshot(p.AppendSnapshot(nil)); err != nil {
		t.Fatalf("snapshot of a live partition refused: %v", err)
	}
	var a, b Output
	for i := range evs[cut:] {
		e1, e2 := evs[cut+i], evs[cut+i]
		_ = p.Process(&e1, Input{Offset: int64(cut + i), LogTime: logs[cut+i]}, &a)
		_ = q.Process(&e2, Input{Offset: int64(cut + i), LogTime: logs[cut+i]}, &b)
	}
	if len(a.Shifts) != len(b.Shifts) || len(a.Alerts) != len(b.Alerts) || len(a.Norms) != len(b.Norms) {
		t.Fatalf("snapshot continues differently: %d/%d shifts, %d/%d alerts", len(a.Shifts), len(b.Shifts), len(a.Alerts), len(b.Alerts))
	}
	for i := range a.Alerts {
		if a.Alerts[i] != b.Alerts[i] && !(math.IsNaN(a.Alerts[i].Ratio) && math.IsNaN(b.Alerts[i].Ratio)) {
			t.Fatalf("alert %d differs after snapshot", i)
		}
	}
	out.Shifts = append(out.Shifts, a.Shifts...)
	out.Alerts = append(out.Alerts, a.Alerts...)
	// ids may repeat once the first is past retention, so an alert's
	// shift is known only as "some shift with this id", on time or late
	// as the alert says
	judged := map[string]map[bool]bool{}
	for _, s := range out.Shifts {
		if judged[s.EventID] == nil {
			judged[s.EventID] = map[bool]bool{}
		}
		judged[s.EventID][s.Late] = true
		if s.Norm.Count > 0 && s.Norm.Median > 0 && math.Abs(s.Ratio-s.Rate/s.Norm.Median) > 1e-9*s.Ratio {
			t.Fatalf("ratio %v is not rate/norm %v/%v", s.Ratio, s.Rate, s.Norm.Median)
		}
	}
	for _, al := range out.Alerts {
		switch al.Type {
		case RecordShift, SuspectRecord:
			if !judged[al.EventID][al.Late] || al.GroupSize < opts.RecordMinShifts || !(al.Ratio >= opts.RecordRatio) {
				t.Fatalf("record alert against the rule: %+v", al)
			}
			if (al.Type == SuspectRecord) != (al.ScrapShare > opts.SuspectScrapShare) {
				t.Fatalf("suspect flag against the scrap rule: %+v", al)
			}
		case PaceSetter:
			if al.GroupSize < opts.PaceMinWorkers || !(al.Ratio >= opts.PaceSetterRatio) {
				t.Fatalf("pace-setter against the rule: %+v", al)
			}
		case CommonPace:
			if !(al.BulkShare >= opts.CommonPaceShare) {
				t.Fatalf("common pace against the rule: %+v", al)
			}
		}
	}
	out.Duplicates += a.Duplicates
	out.FromFuture += a.FromFuture
	return out
}

// TestFuzzProcessSeedsReachEveryRule: FuzzProcess's seed corpus, which a
// plain `go test` runs, yields every alert type, late shifts and
// duplicates, so that its checks of each rule run on every test and not
// only when fuzzing finds such input.
func TestFuzzProcessSeedsReachEveryRule(t *testing.T) {
	alerts := map[AlertType]int{}
	late, duplicates, lateAlerts, fromFuture := 0, 0, 0, 0
	for _, seed := range fuzzProcessSeeds() {
		out := checkProcess(t, seed)
		for _, a := range out.Alerts {
			alerts[a.Type]++
			if a.Late {
				lateAlerts++
			}
		}
		fromFuture += out.FromFuture
		for _, s := range out.Shifts {
			if s.Late {
				late++
			}
		}
		duplicates += out.Duplicates
	}
	for _, typ := range AlertTypes {
		if alerts[typ] == 0 {
			t.Errorf("no seed of FuzzProcess yields a %s alert (alerts by type: %v): add one to fuzzProcessSeeds", typ, alerts)
		}
	}
	if late == 0 || duplicates == 0 || lateAlerts == 0 || fromFuture == 0 {
		t.Errorf("FuzzProcess's seeds yield %d late shifts, %d duplicates, %d late alerts and %d shifts from the future: add seeds with each to fuzzProcessSeeds",
			late, duplicates, lateAlerts, fromFuture)
	}
	t.Logf("FuzzProcess's seeds: alerts %v, %d late shifts, %d duplicates, %d late alerts, %d from the future", alerts, late, duplicates, lateAlerts, fromFuture)
}
