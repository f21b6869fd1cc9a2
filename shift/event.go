package shift

import (
	"math"
	"time"
)

// Event is a decoded, validated shift report.
type Event struct {
	EventID    string
	PlantID    string
	Industry   string
	Section    string // optional; "" when absent
	Role       string
	WorkerID   string
	CrewSize   int       // ≥ 1; 1 when absent
	ShiftStart time.Time // UTC
	ShiftHours float64   // in (0, 24]
	Output     float64   // ≥ 0
	Unit       string
	Scrap      float64 // in [0, Output]; 0 when absent
}

// Rate is output per hour of the shift: the quantity norms are made of.
func (e *Event) Rate() float64 { return e.Output / e.ShiftHours }

// CrewRate is output per crew-hour: helpers' labour counted in.
func (e *Event) CrewRate() float64 {
	return e.Output / (e.ShiftHours * float64(e.CrewSize))
}

// ScrapShare is the share of the output rejected by quality control; 0 when
// nothing was produced.
func (e *Event) ScrapShare() float64 {
	if e.Output == 0 {
		return 0
	}
	return e.Scrap / e.Output
}

// GroupKey identifies a peer group: workers of one role at one plant whose
// output is counted in one unit.
type GroupKey struct {
	PlantID string
	Role    string
	Unit    string
}

// Group returns the event's peer group.
func (e *Event) Group() GroupKey {
	return GroupKey{PlantID: e.PlantID, Role: e.Role, Unit: e.Unit}
}

// Day is a UTC calendar day counted from the Unix epoch.
type Day int32

// DayOf returns the UTC day a timestamp falls on.
func DayOf(t time.Time) Day { return Day(floorDiv(t.Unix(), 86400)) }

// Start is the first instant of the day.
func (d Day) Start() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// End is the first instant of the next day.
func (d Day) End() time.Time { return time.Unix(int64(d+1)*86400, 0).UTC() }

// String formats the day as YYYY-MM-DD.
func (d Day) String() string { return d.Start().Format(time.DateOnly) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// finite reports whether f is neither NaN nor infinite.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
