package processors

import (
	"errors"
	"fmt"
	"time"

	"github.com/stakhanov/stakhanov/processors/pace"
	"github.com/stakhanov/stakhanov/processors/records"
)

// Options are the rules' thresholds and the event-time bounds. The zero value
// is not usable; start from DefaultOptions.
type Options struct {
	// Window is the trailing span of a shift's norm: [start − Window, start).
	// Default 28 days.
	Window time.Duration
	// AllowedLateness is how far a plant's stream time must pass a day's
	// end before the day closes. Default 6 h.
	AllowedLateness time.Duration
	// IdleClose closes a plant's open days when the plant has sent nothing
	// for this long of the log's time (Kafka record timestamps): a plant
	// that stops reporting gets its last days judged. Default 24 h.
	IdleClose time.Duration
	// FutureMargin is how far a shift may start after its Kafka record's
	// timestamp; one that starts later is a bad record (from_future) and
	// moves no clock. Default 24 h.
	FutureMargin time.Duration

	// RecordMinShifts is the smallest window that can make a record.
	// Default 20.
	RecordMinShifts int
	// RecordRatio is the rate-to-norm ratio of a record. Default 3.0.
	RecordRatio float64
	// SuspectScrapShare is the scrap share above which a record is suspect.
	// Default 0.05.
	SuspectScrapShare float64

	// PaceMinWorkers is the smallest day group judged for pace. Default 8.
	PaceMinWorkers int
	// PaceSetterRatio is a pace-setter's day rate over the day's median
	// worker rate. Default 1.5.
	PaceSetterRatio float64
	// CommonPaceTolerance is the half-width, relative to the median, of the
	// common level. Default 0.10 (±10 %).
	CommonPaceTolerance float64
	// CommonPaceShare is the share of workers that must hold the common
	// level. Default 0.70.
	CommonPaceShare float64
}

// DefaultOptions returns the contract's defaults.
func DefaultOptions() Options {
	return Options{
		Window:              28 * 24 * time.Hour,
		AllowedLateness:     6 * time.Hour,
		IdleClose:           24 * time.Hour,
		FutureMargin:        24 * time.Hour,
		RecordMinShifts:     20,
		RecordRatio:         3.0,
		SuspectScrapShare:   0.05,
		PaceMinWorkers:      8,
		PaceSetterRatio:     1.5,
		CommonPaceTolerance: 0.10,
		CommonPaceShare:     0.70,
	}
}

// Param is one option as the outside sees it: its key in the `rules`
// section of the configuration file, its flag of `stakhanov run`, what it
// means, and its field. The contract (docs/contract.md) lists the same keys
// with their defaults, and a test holds the two together.
type Param struct {
	Key   string // snake_case: "record_ratio"
	Flag  string // "record-ratio"
	Usage string
	// Value points at the field of the Options Params was called on:
	// *time.Duration, *int or *float64.
	Value any
}

// Params lists every option of o, in a stable order.
func (o *Options) Params() []Param {
	return []Param{
		{"window", "window", "trailing window of a shift's norm", &o.Window},
		{"lateness", "lateness", "allowed lateness before a day closes", &o.AllowedLateness},
		{"idle_close", "idle-close", "log time a plant may stay silent before its open days close", &o.IdleClose},
		{"future_margin", "future-margin", "how far a shift may start after its record's timestamp", &o.FutureMargin},
		{"record_min_shifts", "record-min-shifts", "shifts in the window needed to judge a record", &o.RecordMinShifts},
		{"record_ratio", "record-ratio", "rate over the norm that makes a record", &o.RecordRatio},
		{"suspect_scrap_share", "suspect-scrap-share", "scrap share above which a record is suspect", &o.SuspectScrapShare},
		{"pace_min_workers", "pace-min-workers", "workers a day group needs to be judged for pace", &o.PaceMinWorkers},
		{"pace_setter_ratio", "pace-setter-ratio", "day rate over the day's median that makes a pace-setter", &o.PaceSetterRatio},
		{"common_pace_tolerance", "common-pace-tolerance", "half-width of the common level, relative to the median", &o.CommonPaceTolerance},
		{"common_pace_share", "common-pace-share", "share of workers at the common level for common_pace", &o.CommonPaceShare},
	}
}

// RecordRule is the record rule under o.
func (o Options) RecordRule() records.Rule {
	return records.Rule{MinShifts: o.RecordMinShifts, Ratio: o.RecordRatio, SuspectScrapShare: o.SuspectScrapShare}
}

// PaceRule is the pace rule under o.
func (o Options) PaceRule() pace.Rule {
	return pace.Rule{MinWorkers: o.PaceMinWorkers, SetterRatio: o.PaceSetterRatio, Tolerance: o.CommonPaceTolerance, CommonShare: o.CommonPaceShare}
}

// ErrInvalidOptions is wrapped by every Validate failure.
var ErrInvalidOptions = errors.New("invalid processor options")

// Validate reports the first option outside its domain.
func (o Options) Validate() error {
	fail := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(f, a...))
	}
	switch {
	case o.Window < time.Hour:
		return fail("window %v shorter than 1h", o.Window)
	case o.Window%time.Second != 0:
		return fail("window %v not whole seconds", o.Window)
	case o.AllowedLateness < 0:
		return fail("allowed lateness %v negative", o.AllowedLateness)
	case o.AllowedLateness%time.Second != 0:
		return fail("allowed lateness %v not whole seconds", o.AllowedLateness)
	case o.IdleClose < time.Minute || o.IdleClose > o.Retention():
		return fail("idle close %v not within [1m, retention %v]", o.IdleClose, o.Retention())
	case o.IdleClose%time.Second != 0:
		return fail("idle close %v not whole seconds", o.IdleClose)
	case o.FutureMargin < 0:
		return fail("future margin %v negative", o.FutureMargin)
	case o.FutureMargin%time.Second != 0:
		return fail("future margin %v not whole seconds", o.FutureMargin)
	case o.RecordMinShifts < 1:
		return fail("record min shifts %d < 1", o.RecordMinShifts)
	case !(o.RecordRatio > 1):
		return fail("record ratio %v must exceed 1", o.RecordRatio)
	case !(o.SuspectScrapShare >= 0 && o.SuspectScrapShare < 1):
		return fail("suspect scrap share %v not in [0, 1)", o.SuspectScrapShare)
	case o.PaceMinWorkers < 2:
		return fail("pace min workers %d < 2", o.PaceMinWorkers)
	case !(o.PaceSetterRatio > 1):
		return fail("pace-setter ratio %v must exceed 1", o.PaceSetterRatio)
	case !(o.CommonPaceTolerance > 0 && o.CommonPaceTolerance < 1):
		return fail("common pace tolerance %v not in (0, 1)", o.CommonPaceTolerance)
	case !(o.CommonPaceShare > 0 && o.CommonPaceShare <= 1):
		return fail("common pace share %v not in (0, 1]", o.CommonPaceShare)
	}
	return nil
}

// Retention is how far behind its plant's stream time a shift can still
// matter: a shift of a day that is still open looks back one Window, and the
// oldest open day starts up to one day plus AllowedLateness behind stream
// time. A plant's state older than this is dropped.
func (o Options) Retention() time.Duration {
	return o.Window + o.AllowedLateness + 24*time.Hour
}
