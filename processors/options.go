package processors

import (
	"errors"
	"fmt"
	"time"
)

// Options are the rules' thresholds and the event-time bounds. The zero value
// is not usable; start from DefaultOptions.
type Options struct {
	// Window is the trailing span of a shift's norm: [start − Window, start).
	// Default 28 days.
	Window time.Duration
	// AllowedLateness is how far a partition's stream time must pass a day's
	// end before the day closes. Default 6 h.
	AllowedLateness time.Duration

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
		RecordMinShifts:     20,
		RecordRatio:         3.0,
		SuspectScrapShare:   0.05,
		PaceMinWorkers:      8,
		PaceSetterRatio:     1.5,
		CommonPaceTolerance: 0.10,
		CommonPaceShare:     0.70,
	}
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

// Retention is how far behind its partition's stream time a shift can still
// matter: a shift of a day that is still open looks back one Window, and the
// oldest open day starts up to one day plus AllowedLateness behind stream
// time. State older than this is dropped, and a restore replays only shifts
// newer than stream time − Retention.
func (o Options) Retention() time.Duration {
	return o.Window + o.AllowedLateness + 24*time.Hour
}
