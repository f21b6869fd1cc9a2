package simulator

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config sets up a simulated run. Start from DefaultConfig (or
// ConfigForEvents) and change what you need: the zero Config is not valid,
// since zero is a meaningful value for most fields.
type Config struct {
	// Seed selects the run. The same Config, seed included, gives a
	// byte-identical stream. Default 1935.
	Seed int64
	// Start is the first day of the run: a UTC midnight. Default
	// 1935-06-01T00:00:00Z.
	Start time.Time
	// Days is the length of the run in days. Default 92 (June to August
	// 1935: the last day is 1935-08-31).
	Days int
	// Plants is the number of plants. Default 24.
	Plants int
	// Industries the plants belong to, dealt out in turn (plant i is of
	// Industries[i % len]). Names come from Industries(). Default: all
	// seven, coal first.
	Industries []string
	// WorkersPerGroup is the number of workers (or brigades) of each peer
	// group. Default 12.
	WorkersPerGroup int
	// MinGroupsPerPlant and MaxGroupsPerPlant bound the number of peer
	// groups (role and unit) of a plant, within 1–3. Defaults 1 and 3.
	MinGroupsPerPlant, MaxGroupsPerPlant int
	// RestEvery is the length of a worker's week: a worker rests one day in
	// RestEvery, the rest days staggered across the group as in the
	// continuous working week of the 1930s. 0 means no rest days. Default 6.
	RestEvery int
	// AbsenceRate is the chance a worker misses a working day. Default 0.03.
	AbsenceRate float64

	// DuplicateRate is the chance an on-time report is sent twice.
	// Default 0.01.
	DuplicateRate float64
	// LateRate is the chance a shift of an ordinary group-day is reported
	// only two to three days later (late). Default 0.003.
	LateRate float64
	// MalformedRate is the chance a shift comes with an extra malformed
	// message. Default 0.005.
	MalformedRate float64

	// RecordRate, SuspectRate and PaceRate are the chances that a group-day
	// with enough history gets a planted record shift, a suspect record or
	// pace-setters (pace-setters need at least 8 workers that day).
	// Defaults 0.004, 0.002 and 0.005; their sum is at most 0.1.
	RecordRate, SuspectRate, PaceRate float64
	// NearMissRate is the chance that a group-day with enough history gets
	// a near miss: a shift or a day planted just either side of one
	// threshold of the rules (Truth.NearRecords, Truth.NearDays), the kinds
	// in turn. At most 0.05; default 0.012.
	NearMissRate float64
	// MinShiftsEdgeRate is the chance that a group-day early in the run,
	// on which a worker's shift finds exactly 19 or 20 shifts in its window,
	// gets a would-be record in that shift: one short of the 20 shifts a
	// record needs, or just enough. Default 0.3.
	MinShiftsEdgeRate float64
	// Stakhanov plants the canonical record: a.stakhanov, hewer at
	// tsentralnaya-irmino, 102 t in the 6 h night shift of 1935-08-30 (or of
	// the last day when the run does not include that date). Needs a coal
	// plant. Default true.
	Stakhanov bool

	// MaxDisorder bounds how far, in event time, an on-time message may be
	// emitted after messages of later shifts. Whole seconds, at most 3 h.
	// Default 90 min.
	MaxDisorder time.Duration

	// ShuffleDays emits each day's messages (those due within one UTC day)
	// in a random order, as a plant that uploads a day's reports in one
	// batch does: up to a day of disorder, which the rules allow, since a
	// day stays open until stream time passes its end by the allowed
	// lateness. A shift's norm then depends on which of its day's earlier
	// shifts arrived before it, so Truth's near misses, placed against the
	// ordered stream, are no longer guaranteed; its counts are. Default
	// false.
	ShuffleDays bool

	// DiscardTruth keeps only the counts of the Truth and none of its
	// lists: for long benchmark runs that do not check results.
	DiscardTruth bool
}

// DefaultConfig returns the default run: 24 plants of 7 industries over the
// 92 days of summer 1935, about 43,000 messages.
func DefaultConfig() Config {
	return Config{
		Seed:              1935,
		Start:             time.Date(1935, 6, 1, 0, 0, 0, 0, time.UTC),
		Days:              92,
		Plants:            24,
		Industries:        Industries(),
		WorkersPerGroup:   12,
		MinGroupsPerPlant: 1,
		MaxGroupsPerPlant: 3,
		RestEvery:         6,
		AbsenceRate:       0.03,
		DuplicateRate:     0.01,
		LateRate:          0.003,
		MalformedRate:     0.005,
		RecordRate:        0.004,
		SuspectRate:       0.002,
		PaceRate:          0.005,
		NearMissRate:      0.012,
		MinShiftsEdgeRate: 0.3,
		Stakhanov:         true,
		MaxDisorder:       90 * time.Minute,
	}
}

// ErrInvalidConfig is wrapped by every Validate failure.
var ErrInvalidConfig = errors.New("invalid simulator config")

var (
	minStart = time.Date(1900, 1, 2, 0, 0, 0, 0, time.UTC)
	maxEnd   = time.Date(2099, 12, 1, 0, 0, 0, 0, time.UTC)
)

// Validate reports the first field outside its domain.
func (c Config) Validate() error {
	fail := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(f, a...))
	}
	rate := func(name string, v, max float64) error {
		if !(v >= 0 && v <= max) {
			return fail("%s %v not in [0, %v]", name, v, max)
		}
		return nil
	}
	switch {
	case c.Start.IsZero():
		return fail("start not set (start from DefaultConfig)")
	case c.Start.Unix()%86400 != 0 || c.Start.Nanosecond() != 0:
		return fail("start %v is not a UTC midnight", c.Start)
	case c.Days < 1 || c.Days > 36500:
		return fail("days %d not in [1, 36500]", c.Days)
	case c.Start.Before(minStart):
		return fail("start %v before %v", c.Start, minStart)
	case c.Start.Add(time.Duration(c.Days) * 24 * time.Hour).After(maxEnd):
		return fail("run ends after %v", maxEnd)
	case c.Plants < 1 || c.Plants > 1_000_000:
		return fail("plants %d not in [1, 1000000]", c.Plants)
	case len(c.Industries) == 0:
		return fail("no industries")
	case c.WorkersPerGroup < 1 || c.WorkersPerGroup > 10000:
		return fail("workers per group %d not in [1, 10000]", c.WorkersPerGroup)
	case c.MinGroupsPerPlant < 1 || c.MaxGroupsPerPlant > 3 || c.MinGroupsPerPlant > c.MaxGroupsPerPlant:
		return fail("groups per plant [%d, %d] not within [1, 3]", c.MinGroupsPerPlant, c.MaxGroupsPerPlant)
	case c.RestEvery != 0 && (c.RestEvery < 2 || c.RestEvery > 31):
		return fail("rest every %d not 0 or in [2, 31]", c.RestEvery)
	case c.MaxDisorder < 0 || c.MaxDisorder > 3*time.Hour || c.MaxDisorder%time.Second != 0:
		return fail("max disorder %v not whole seconds in [0, 3h]", c.MaxDisorder)
	}
	seen := map[string]bool{}
	for _, name := range c.Industries {
		if _, ok := industryByName(name); !ok {
			return fail("unknown industry %q (known: %v)", name, Industries())
		}
		if seen[name] {
			return fail("industry %q listed twice", name)
		}
		seen[name] = true
	}
	for _, r := range []struct {
		name string
		v    float64
		max  float64
	}{
		{"absence rate", c.AbsenceRate, 0.5},
		{"duplicate rate", c.DuplicateRate, 0.1},
		{"late rate", c.LateRate, 0.1},
		{"malformed rate", c.MalformedRate, 0.1},
		{"record rate", c.RecordRate, 0.1},
		{"suspect rate", c.SuspectRate, 0.1},
		{"pace rate", c.PaceRate, 0.1},
		{"near-miss rate", c.NearMissRate, 0.05},
		{"min-shifts edge rate", c.MinShiftsEdgeRate, 1},
	} {
		if err := rate(r.name, r.v, r.max); err != nil {
			return err
		}
	}
	// Planted shifts must stay far fewer than half of any window, or they
	// would lift the window median that the guarantees lean on.
	if s := c.RecordRate + c.SuspectRate + c.PaceRate; s > 0.1 {
		return fail("record, suspect and pace rates sum to %v > 0.1", s)
	}
	return nil
}

// messagesPerPlantDay is the expected number of messages one plant sends a
// day under c.
func (c Config) messagesPerPlantDay() float64 {
	var groups float64
	for _, name := range c.Industries {
		in, _ := industryByName(name)
		lo, hi := c.MinGroupsPerPlant, min(c.MaxGroupsPerPlant, len(in.roles))
		lo = min(lo, hi)
		groups += float64(lo+hi) / 2
	}
	groups /= float64(len(c.Industries))
	attend := 1 - c.AbsenceRate
	if c.RestEvery > 0 {
		attend *= 1 - 1/float64(c.RestEvery)
	}
	return groups * float64(c.WorkersPerGroup) * attend * (1 + c.DuplicateRate + c.MalformedRate)
}

// ExpectedMessages estimates the number of messages a run of c emits.
func (c Config) ExpectedMessages() float64 {
	return c.messagesPerPlantDay() * float64(c.Plants) * float64(c.Days)
}

// ConfigForEvents returns the default Config scaled to emit about n
// messages: the 92 days and 12 workers a group are kept and the number of
// plants chosen to fit (1 M messages take about 550 plants, 10 M about
// 5,500). Below about 12,000 messages the run keeps one plant of each
// industry and is shortened instead, to no less than one day, so that very
// small n overshoot.
func ConfigForEvents(n int) Config {
	c := DefaultConfig()
	ppd := c.messagesPerPlantDay()
	plants := int(math.Round(float64(n) / (ppd * float64(c.Days))))
	if plants >= len(c.Industries) {
		c.Plants = min(plants, 1_000_000)
		return c
	}
	c.Plants = len(c.Industries)
	c.Days = max(1, min(c.Days, int(math.Round(float64(n)/(ppd*float64(c.Plants))))))
	return c
}
