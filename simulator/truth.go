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
	// CauseNearMiss: the worker's shift planted just short of a record (a
	// NearRecord without an alert) makes the day rate a pace-setter's.
	CauseNearMiss Cause = "near-miss"
)

// Threshold names the rule option a near miss lies beside: its key in the
// `rules` section of the configuration (docs/contract.md).
type Threshold string

// The thresholds near misses are planted beside.
const (
	ThresholdRecordRatio     Threshold = "record_ratio"
	ThresholdRecordMinShifts Threshold = "record_min_shifts"
	ThresholdSuspectScrap    Threshold = "suspect_scrap_share"
	ThresholdPaceSetterRatio Threshold = "pace_setter_ratio"
	ThresholdPaceMinWorkers  Threshold = "pace_min_workers"
	ThresholdCommonPaceShare Threshold = "common_pace_share"
)

// Alert types, as the contract names them, for the truth's verdicts.
const (
	AlertRecordShift   = "record_shift"
	AlertSuspectRecord = "suspect_record"
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

// NearRecord is a shift planted just either side of a threshold of the
// record rule, with the quantities the rule compares exactly as the
// pipeline computes them: float64 values a test may compare with ==.
type NearRecord struct {
	Threshold Threshold
	EventID   string
	Group     shift.GroupKey
	WorkerID  string
	Day       shift.Day
	// Alert is the alert the shift raises: AlertRecordShift,
	// AlertSuspectRecord, or "" for none.
	Alert string
	// Rate is output / shift_hours; Norm the median rate of the group's
	// on-time shifts starting in [shift_start − 28 d, shift_start) (the
	// mean of the middle two for an even count), Count how many they are,
	// and Ratio = Rate / Norm.
	Rate, Norm float64
	Count      int
	Ratio      float64
	ScrapShare float64 // scrap / output
}

// NearDay is a group-day planted just either side of a threshold of the
// pace rule, with what the rule computes from its workers' day rates.
type NearDay struct {
	Threshold Threshold
	Group     shift.GroupKey
	Day       shift.Day
	Workers   int  // on-time workers that day
	Judged    bool // Workers ≥ 8: the day raises its pace alerts
	// Median is the median worker day rate, Bulk the share of workers
	// within ±10 % of it.
	Median, Bulk float64
	// WorkerID is the worker planted beside the pace-setter mark
	// (ThresholdPaceSetterRatio) or far above it (ThresholdPaceMinWorkers);
	// "" on ThresholdCommonPaceShare days. Ratio is that worker's day rate
	// over Median.
	WorkerID string
	Ratio    float64
	// PaceSetter says whether WorkerID raises a pace_setter alert, Common
	// whether the day raises common_pace.
	PaceSetter, Common bool
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
	// each. Stakhanov is among them, and so are the NearRecords whose
	// Alert is AlertRecordShift.
	RecordShifts []string
	// SuspectRecords are exactly the on-time shifts that pass the same
	// ratio test with a scrap share above 0.05 (about 10–40 %, or just
	// above 5 % for a NearRecord): suspect_record alerts. No other shift
	// reaches 3× (see doc.go).
	SuspectRecords []string

	// NearRecords are the shifts planted just either side of a threshold
	// of the record rule, those that raise no alert included:
	//   - record_ratio: 2.8–2.99× the norm (no alert) and 3.0–3.2× (a
	//     record), with ≥ 20 shifts in the window and scrap ≤ 1 %;
	//   - suspect_scrap_share: 4–6× the norm with 4.9–5.0 % scrap (a
	//     record) or 5.01–5.2 % (a suspect record);
	//   - record_min_shifts: 3.5–5× the norm early in the run, where the
	//     window holds exactly 19 shifts (no alert) or 20 (a record).
	// Each value is checked after the output and scrap are rounded; a
	// planting that misses its band is dropped, never listed.
	NearRecords []NearRecord
	// NearDays are the group-days planted just either side of a threshold
	// of the pace rule. The shop holds one level within ±4 % of the base
	// rate but for the planted workers:
	//   - pace_setter_ratio: one worker at 1.4–1.49× the day's median (no
	//     alert) or 1.5–1.6× (a pace-setter);
	//   - pace_min_workers: exactly 7 workers on time (not judged: no day
	//     alert at all) or exactly 8 (judged), one of them at 1.8–2.3× the
	//     median;
	//   - common_pace_share: exactly 10 workers, 6 (no common_pace) or 7
	//     (common_pace: the share is exactly 0.7) of them within ±10 % of
	//     the median, one of those at 1.08–1.09×; of the rest one at
	//     1.11–1.12× and the others at 0.75–0.85×.
	// Checked like NearRecords, and never Borderline.
	NearDays []NearDay

	// PaceSetters are exactly the workers whose day rate (total output
	// over total hours of their on-time shifts of a group's UTC day) is at
	// least 1.5× the median worker rate of a day with at least 8 workers:
	// pace_setter alerts, computed from the day's rates. Cause says what
	// was planted that lifts them. Ordinary workers stay below 1.48× the
	// median (see doc.go), planted pace-setters reach at least 1.79× but
	// for the NearDays' 1.5–1.6×.
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
	RecordCount     int   // len(RecordShifts)
	SuspectCount    int   // len(SuspectRecords)
	NearRecordCount int   // len(NearRecords)
	NearDayCount    int   // len(NearDays)
	PaceSetterCount int   // len(PaceSetters)
	CommonPaceCount int   // len(CommonPaceDays)
	JudgedDays      int   // group-days with at least 8 workers on time
}
