package simulator

import "github.com/stakhanov/stakhanov/shift"

// Cause says why a worker is a pace-setter.
type Cause string

// The causes of a pace-setter.
const (
	// CausePace: planted pace-setter, 1.8–2.3× the day's median while the
	// rest of the shop holds one level within ±4 %.
	CausePace Cause = "pace"
	// CauseRecord and CauseSuspect: the worker's planted record (or
	// suspect record) shift makes the day rate a pace-setter's too.
	CauseRecord  Cause = "record"
	CauseSuspect Cause = "suspect"
)

// GroupDay is one peer group's UTC day.
type GroupDay struct {
	Group shift.GroupKey
	Day   shift.Day
}

// PaceSetter is a worker whose day rate is a pace-setter's.
type PaceSetter struct {
	Group    shift.GroupKey
	WorkerID string
	Day      shift.Day
	Cause    Cause
}

// MalformedMessage is one malformed message of the stream.
type MalformedMessage struct {
	Index   int64  // position in the stream (Message.Index)
	EventID string // the id the message was made from (Message.EventID)
	Defect  string // what was done to it, such as "truncated"
	Reason  string // the shift.Reason… code shift.Decode returns for it
}

// Truth is what a correct pipeline must find in the stream, under the
// default processor options (28-day window, 20 shifts, ratio 3, scrap share
// 0.05, 8 workers, pace-setter 1.5×, common pace ±10 % for 70 %, 6 h
// allowed lateness) and with Kafka partitions keyed by plant_id.
//
// Shift-level lists hold event ids; every list is in generation order (by
// day, then plant, then group) except Duplicates, Late and Malformed, which
// are in emit order. With Config.DiscardTruth only the counts are kept.
//
// The stream never reaches 6 h past the end of its last day, so that day
// closes only if the pipeline closes open days at the end of its input; its
// PaceSetters and CommonPaceDays are in the lists all the same.
type Truth struct {
	// Stakhanov is the event id of the canonical record, "" when it was
	// not planted (no coal plant, Config.Stakhanov false, or too little
	// history on its day).
	Stakhanov string

	// RecordShifts are exactly the on-time shifts whose rate is at least 3×
	// the median rate of their group's ≥ 20 shifts in the trailing 28 days
	// and whose scrap share is at most 0.05: record_shift alerts, one
	// each. Stakhanov is among them.
	RecordShifts []string
	// SuspectRecords are exactly the on-time shifts that pass the same
	// ratio test with a scrap share above 0.05 (it is about 10–40 %):
	// suspect_record alerts. No other shift reaches 3× (see doc.go).
	SuspectRecords []string

	// PaceSetters are exactly the workers whose day rate (total output
	// over total hours of their on-time shifts of a group's UTC day) is at
	// least 1.5× the median worker rate of a day with at least 8 workers:
	// pace_setter alerts. Cause says whether they were planted as such or
	// follow from a record or suspect record. Ordinary workers stay below
	// 1.48× the median and planted ones at least 1.79×.
	PaceSetters []PaceSetter
	// CommonPaceDays are exactly the group-days with at least 8 workers at
	// which at least 70 % of the worker day rates lie within ±10 % of the
	// median (mean of the middle two for an even count): common_pace
	// alerts. Computed from the day's on-time shifts, late ones left out.
	// Every day of a CausePace pace-setter is among them.
	CommonPaceDays []GroupDay
	// Borderline are the group-days with at least 8 workers whose
	// common-pace verdict changes if the median or the tolerance moves by
	// a relative 1e-9: an implementation may differ from CommonPaceDays on
	// these alone, by floating-point detail. They hold no planted
	// pace-setter. (A median taken as the lower or upper middle value
	// instead of the mean of the two changes far more days: don't.)
	Borderline []GroupDay

	// Duplicates are the event ids of the KindDuplicate messages, each a
	// byte-identical re-send of an earlier KindValid message of that id,
	// 1–20 min of event time after it: dropped as duplicates.
	Duplicates []string
	// Late are the event ids of the KindLate messages: valid shifts of an
	// ordinary group-day emitted 48–72 h of event time after their day's
	// end, when the largest shift_start emitted is at least 30 h past their
	// own, and their plant's partition, since the plant reports every day,
	// far past the day's end plus the allowed lateness. Each is sent once,
	// never on time; none is a record, suspect or pace-setter, and the day
	// truths above leave them out.
	Late []string
	// Malformed lists the KindMalformed messages with the reason shift.Decode
	// gives each.
	Malformed []MalformedMessage

	// Counts, kept also with DiscardTruth.
	Messages        int64 // messages emitted
	Valid           int64 // distinct valid events: OnTime + LateCount
	OnTime          int64 // KindValid messages
	LateCount       int64 // KindLate messages
	DuplicateCount  int64 // KindDuplicate messages
	MalformedCount  int64 // KindMalformed messages
	RecordCount     int   // planted records, Stakhanov's included
	SuspectCount    int   // planted suspect records
	PaceSetterCount int   // len(PaceSetters)
	CommonPaceCount int   // len(CommonPaceDays)
	JudgedDays      int   // group-days with at least 8 workers on time
}
