package processors

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/stakhanov/stakhanov/processors/norms"
	"github.com/stakhanov/stakhanov/shift"
)

// Norm summarises a peer group's shift rates over a window.
type Norm = norms.Norm

// Shift is an event after processing: the input, where it came from, and
// what the pipeline derived from it.
type Shift struct {
	shift.Event
	Partition int32
	Offset    int64

	Rate       float64 // output per hour
	CrewRate   float64 // output per crew-hour
	ScrapShare float64

	Norm     Norm    // over the trailing window; Count 0 when the group has no history
	CrewNorm float64 // median output per crew-hour over the same window; NaN without history
	// Ratio is Rate / Norm.Median, NaN when the median is 0 or there is no
	// history; CrewRatio likewise per crew-hour.
	Ratio, CrewRatio float64

	// Late shifts arrived after their day closed for their plant, or start
	// more than a window before their plant's stream time. They enter no
	// state; while their plant still holds their whole trailing window
	// they get their norm from it and may raise a (late) record alert,
	// else their norm is undefined.
	Late bool
	// Unchecked shifts start before the retention span, past which the
	// processor forgets event ids: a repeat of one cannot be recognised
	// here, so the store checks these against the event ids it holds.
	// They are always Late.
	Unchecked bool
}

// AlertType names the kind of an alert.
type AlertType string

// The alert types of the contract.
const (
	RecordShift   AlertType = "record_shift"
	SuspectRecord AlertType = "suspect_record"
	PaceSetter    AlertType = "pace_setter"
	CommonPace    AlertType = "common_pace"
)

// AlertTypes lists every type, in a stable order.
var AlertTypes = []AlertType{RecordShift, SuspectRecord, PaceSetter, CommonPace}

// Alert is one finding. For shift alerts (record_shift, suspect_record) the
// rate is the shift's and NormRate its window median; for day alerts
// (pace_setter, common_pace) the rate is the worker's day rate (the median
// for common_pace) and NormRate the day's median worker rate.
type Alert struct {
	ID         string
	Type       AlertType
	PlantID    string
	Industry   string
	Role       string
	Unit       string
	WorkerID   string // empty for common_pace
	EventID    string // shift alerts only
	Day        shift.Day
	Rate       float64
	NormRate   float64
	Ratio      float64
	ScrapShare float64
	GroupSize  int     // shifts in the window (shift alerts) or workers that day (day alerts)
	BulkShare  float64 // share of the group at the common level
	// Late marks a shift alert of a late shift, judged against the window
	// its plant still held.
	Late bool
	// DetectedAt is event time, not wall time, and depends on nothing but
	// the alert: the end of the shift for shift alerts, the day's end plus
	// the allowed lateness (when the day closes) for day alerts. A replay,
	// another partitioning or another arrival order give the same value.
	DetectedAt time.Time
}

// ShiftAlertID is the deterministic id of a shift alert.
func ShiftAlertID(t AlertType, eventID string) string {
	return hashID(string(t), eventID)
}

// DayAlertID is the deterministic id of a day alert.
func DayAlertID(t AlertType, g shift.GroupKey, workerID string, day shift.Day) string {
	return hashID(string(t), g.PlantID, g.Role, g.Unit, workerID, day.String())
}

func hashID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		// length-prefix each part so that ("ab","c") and ("a","bc") differ
		var n [4]byte
		l := len(p)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		h.Write(n[:])
		h.Write([]byte(p))
	}
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
}

// NormRow is a group's norm as it stood when one of its days closed: over
// the window [day end − Window, day end).
type NormRow struct {
	Group shift.GroupKey
	Day   shift.Day
	Norm  Norm
}

// Output collects what processing a run of events produced. Reuse it across
// batches with Reset.
type Output struct {
	Shifts []Shift
	Alerts []Alert
	Norms  []NormRow
	// Duplicates counts events dropped as repeats of an event_id.
	Duplicates int
	// TooLate counts late shifts whose window the state no longer held
	// whole: stored without a norm, judged for nothing.
	TooLate int
	// FromFuture counts events refused with ErrFromFuture.
	FromFuture int
}

// Reset empties the output, keeping its capacity.
func (o *Output) Reset() {
	clear(o.Shifts) // drop references to strings
	o.Shifts = o.Shifts[:0]
	clear(o.Alerts)
	o.Alerts = o.Alerts[:0]
	clear(o.Norms)
	o.Norms = o.Norms[:0]
	o.Duplicates, o.TooLate, o.FromFuture = 0, 0, 0
}
