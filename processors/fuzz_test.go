package processors

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/shift"
)

// FuzzProcess drives a partition with event sequences made from the fuzz
// input — any order, any lateness, repeats, zero outputs — and checks what
// must hold whatever comes: no panic, alerts only as the rules allow, late
// shifts inert, and a snapshot that continues exactly as the original.
func FuzzProcess(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add(bytes.Repeat([]byte{1, 0, 10, 200, 0, 3}, 40))
	f.Add(bytes.Repeat([]byte{7, 255, 0, 1, 90, 2, 4, 128}, 30))
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := DefaultOptions()
		opts.RecordMinShifts, opts.PaceMinWorkers = 3, 2
		p, _ := NewPartition(opts, 0)
		base := time.Date(1935, 8, 1, 0, 0, 0, 0, time.UTC)
		var evs []shift.Event
		for i := 0; i+6 <= len(data) && len(evs) < 300; i += 6 {
			b := data[i : i+6]
			start := base.Add(time.Duration(int(b[2])-64) * 3 * time.Hour)
			evs = append(evs, shift.Event{
				EventID: fmt.Sprintf("e%d", b[0]%64), PlantID: fmt.Sprintf("p%d", b[1]%2), Industry: "coal", Role: "hewer", Unit: "t",
				WorkerID: fmt.Sprintf("w%d", b[1]%9), CrewSize: 1 + int(b[5]%3), ShiftStart: start,
				ShiftHours: float64(1 + b[3]%24), Output: float64(b[4]), Scrap: float64(b[4]) * float64(b[5]%4) / 8,
			})
		}
		cut := len(evs) / 2
		var out Output
		for i := range evs[:cut] {
			ev := evs[i]
			if err := p.Process(&ev, int64(i), &out); err != nil && !errors.Is(err, ErrDuplicate) {
				t.Fatal(err)
			}
		}
		q, _ := NewPartition(opts, 0)
		if err := q.LoadSnapshot(p.AppendSnapshot(nil)); err != nil {
			t.Fatalf("snapshot of a live partition refused: %v", err)
		}
		var a, b Output
		for i := range evs[cut:] {
			e1, e2 := evs[cut+i], evs[cut+i]
			_ = p.Process(&e1, int64(cut+i), &a)
			_ = q.Process(&e2, int64(cut+i), &b)
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
		// shift is known only as "some on-time shift with this id"
		onTime := map[string]bool{}
		for _, s := range out.Shifts {
			if !s.Late {
				onTime[s.EventID] = true
			}
			if s.Norm.Count > 0 && s.Norm.Median > 0 && math.Abs(s.Ratio-s.Rate/s.Norm.Median) > 1e-9*s.Ratio {
				t.Fatalf("ratio %v is not rate/norm %v/%v", s.Ratio, s.Rate, s.Norm.Median)
			}
		}
		for _, al := range out.Alerts {
			switch al.Type {
			case RecordShift, SuspectRecord:
				if !onTime[al.EventID] || al.GroupSize < opts.RecordMinShifts || !(al.Ratio >= opts.RecordRatio) {
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
	})
}
