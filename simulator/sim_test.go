package simulator

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash/fnv"
	"math"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/shift"
)

// run generates a whole stream.
func run(t testing.TB, cfg Config) ([]Message, *Truth) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	for {
		m, ok := s.Next()
		if !ok {
			break
		}
		msgs = append(msgs, m)
	}
	if _, ok := s.Next(); ok {
		t.Fatal("Next after the end returned a message")
	}
	return msgs, s.Truth()
}

var (
	defaultOnce  sync.Once
	defaultMsgs  []Message
	defaultTruth *Truth
)

// defaultRun is the default stream, generated once for all tests.
func defaultRun(t testing.TB) ([]Message, *Truth) {
	defaultOnce.Do(func() { defaultMsgs, defaultTruth = run(t, DefaultConfig()) })
	if defaultTruth == nil {
		t.Fatal("default run failed")
	}
	return defaultMsgs, defaultTruth
}

func digest(msgs []Message) [32]byte {
	h := sha256.New()
	for _, m := range msgs {
		h.Write([]byte{byte(m.Kind)})
		h.Write(m.Key)
		h.Write([]byte{0})
		h.Write(m.Value)
		h.Write([]byte{0})
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

func TestDeterminism(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Days = 30
	a, _ := run(t, cfg)
	b, _ := run(t, cfg)
	if len(a) != len(b) {
		t.Fatalf("lengths %d and %d", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i].Value, b[i].Value) || !bytes.Equal(a[i].Key, b[i].Key) || a[i].Kind != b[i].Kind {
			t.Fatalf("message %d differs:\n%s\n%s", i, a[i].Value, b[i].Value)
		}
	}
	// discarding the truth changes nothing else
	cfg.DiscardTruth = true
	d, dt := run(t, cfg)
	if digest(a) != digest(d) || dt.Messages != int64(len(a)) || dt.RecordShifts != nil {
		t.Fatal("DiscardTruth changed the stream or kept lists")
	}
	cfg.DiscardTruth = false
	cfg.Seed++
	c, _ := run(t, cfg)
	if digest(a) == digest(c) {
		t.Fatal("another seed gave the same stream")
	}
	// the default run, too, is the same however often it is made
	msgs, _ := defaultRun(t)
	again, _ := run(t, DefaultConfig())
	if digest(msgs) != digest(again) {
		t.Fatal("default stream not reproducible")
	}
}

func TestMessagesDecode(t *testing.T) {
	msgs, truth := defaultRun(t)
	valid := map[string][]byte{} // event id → value of its valid (or late) message
	reasons := map[string]int{}
	malformed := 0
	for i, m := range msgs {
		if m.Index != int64(i) {
			t.Fatalf("message %d has index %d", i, m.Index)
		}
		ev, err := shift.Decode(m.Value)
		switch m.Kind {
		case KindValid, KindLate:
			if err != nil {
				t.Fatalf("%s message %s: %v\n%s", m.Kind, m.EventID, err, m.Value)
			}
			if ev.EventID != m.EventID || !ev.ShiftStart.Equal(m.ShiftStart) || ev.PlantID != string(m.Key) {
				t.Fatalf("message %d: decoded %+v, message %+v", i, ev, m)
			}
			if _, ok := valid[m.EventID]; ok {
				t.Fatalf("event id %s sent valid twice", m.EventID)
			}
			valid[m.EventID] = m.Value
		case KindDuplicate:
			orig, ok := valid[m.EventID]
			if !ok {
				t.Fatalf("duplicate %s before (or without) its original", m.EventID)
			}
			if err != nil || !bytes.Equal(orig, m.Value) {
				t.Fatalf("duplicate %s differs from its original:\n%s\n%s", m.EventID, orig, m.Value)
			}
			if &orig[0] == &m.Value[0] {
				t.Fatal("duplicate shares its original's bytes")
			}
		case KindMalformed:
			if err == nil {
				t.Fatalf("malformed message %d (%s) decodes:\n%s", i, m.Defect, m.Value)
			}
			if !errors.Is(err, shift.ErrBadRecord) || shift.Reason(err) != m.Reason {
				t.Fatalf("malformed message %d (%s): reason %q, recorded %q\n%q", i, m.Defect, shift.Reason(err), m.Reason, m.Value)
			}
			if tm := truth.Malformed[malformed]; tm.Index != m.Index || tm.Reason != m.Reason || tm.EventID != m.EventID {
				t.Fatalf("truth %+v for message %d", tm, i)
			}
			malformed++
			reasons[m.Reason]++
		default:
			t.Fatalf("message %d of kind %v", i, m.Kind)
		}
	}
	if malformed != len(truth.Malformed) {
		t.Fatalf("%d malformed messages, truth lists %d", malformed, len(truth.Malformed))
	}
	if len(reasons) < 15 {
		t.Errorf("malformed messages cover only %d reasons: %v", len(reasons), reasons)
	}
	t.Logf("malformed reasons: %v", reasons)
}

// Every defect gives its reason on many shifts, not just those the default
// stream happened to draw.
func TestEveryDefect(t *testing.T) {
	s, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, d := range defects {
		covered[d.reason] = true
	}
	for _, r := range []string{shift.ReasonEmpty, shift.ReasonInvalidUTF8, shift.ReasonInvalidJSON, shift.ReasonTruncated,
		shift.ReasonNotObject, shift.ReasonTrailingData, shift.ReasonDuplicateKey, shift.ReasonTooDeep, shift.ReasonMissingField,
		shift.ReasonWrongType, shift.ReasonNumberOutOfRange, shift.ReasonEmptyField, shift.ReasonFieldTooLong,
		shift.ReasonControlCharacter, shift.ReasonBadTimestamp, shift.ReasonTimestampRange, shift.ReasonShiftHoursRange,
		shift.ReasonNegativeOutput, shift.ReasonOutputRange, shift.ReasonCrewSizeRange, shift.ReasonNegativeScrap,
		shift.ReasonScrapAboveOutput, shift.ReasonUnsupportedEscape} {
		if !covered[r] {
			t.Errorf("no defect gives %s", r)
		}
	}
	for _, d := range defects {
		t.Run(d.name, func(t *testing.T) {
			r := newRNG(7, 7)
			for _, p := range s.plants {
				for _, g := range p.groups {
					for w := range g.workers[:3] {
						rec := &shiftRec{w: w, start: time.Date(1935, 7, 1, 6, 0, 0, 0, time.UTC), output: round(g.base*g.hours, g.spec.decimals),
							crew: g.spec.crew, crewField: w == 1, hasScrap: g.spec.scrap, scrap: 0.5}
						v := d.make(&r, fields(g, rec, "id-m1"), rec)
						if _, err := shift.Decode(v); shift.Reason(err) != d.reason {
							t.Fatalf("got %v, want %s\n%q", err, d.reason, v)
						}
						// and the unspoilt fields are valid
						if _, err := shift.Decode(marshal(fields(g, rec, "id-m1"))); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		})
	}
}

func TestKindsAndCounts(t *testing.T) {
	msgs, truth := defaultRun(t)
	count := map[Kind]int64{}
	for _, m := range msgs {
		count[m.Kind]++
	}
	if truth.Messages != int64(len(msgs)) || truth.OnTime != count[KindValid] || truth.LateCount != count[KindLate] ||
		truth.DuplicateCount != count[KindDuplicate] || truth.MalformedCount != count[KindMalformed] ||
		truth.Valid != truth.OnTime+truth.LateCount {
		t.Fatalf("counts %+v, stream %v", truth, count)
	}
	if int64(len(truth.Duplicates)) != truth.DuplicateCount || int64(len(truth.Late)) != truth.LateCount ||
		len(truth.PaceSetters) != truth.PaceSetterCount || len(truth.CommonPaceDays) != truth.CommonPaceCount ||
		len(truth.RecordShifts) != truth.RecordCount || len(truth.SuspectRecords) != truth.SuspectCount ||
		len(truth.NearRecords) != truth.NearRecordCount || len(truth.NearDays) != truth.NearDayCount {
		t.Fatal("list lengths and counts disagree")
	}
	n := float64(truth.Valid)
	for _, c := range []struct {
		kind     Kind
		min, max float64
	}{
		{KindDuplicate, 0.005, 0.015},
		{KindLate, 0.001, 0.005},
		{KindMalformed, 0.003, 0.008},
	} {
		if share := float64(count[c.kind]) / n; share < c.min || share > c.max {
			t.Errorf("%v: share %.4f of valid events, want [%v, %v]", c.kind, share, c.min, c.max)
		}
	}
	t.Logf("messages %d: valid %d (on time %d, late %d), duplicates %d, malformed %d; records %d, suspects %d, pace-setters %d, common-pace days %d of %d judged (%d borderline); near misses: %d shifts, %d days",
		truth.Messages, truth.Valid, truth.OnTime, truth.LateCount, truth.DuplicateCount, truth.MalformedCount,
		truth.RecordCount, truth.SuspectCount, truth.PaceSetterCount, truth.CommonPaceCount, truth.JudgedDays, len(truth.Borderline),
		truth.NearRecordCount, truth.NearDayCount)
}

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Plants < 24 || len(cfg.Industries) < 5 || cfg.Days < 60 {
		t.Fatalf("defaults too small: %+v", cfg)
	}
	if last := cfg.Start.AddDate(0, 0, cfg.Days-1); last.Format(time.DateOnly) != "1935-08-31" {
		t.Errorf("last day %v", last)
	}
	msgs, _ := defaultRun(t)
	hours := map[float64]bool{}
	industries := map[string]bool{}
	plants := map[string]map[shift.GroupKey]bool{}
	workers := map[shift.GroupKey]map[string]bool{}
	slug := regexp.MustCompile(`^[a-z0-9]+([.-][a-z0-9]+)*$`)
	for _, m := range msgs {
		if m.Kind != KindValid {
			continue
		}
		ev, _ := shift.Decode(m.Value)
		hours[ev.ShiftHours] = true
		industries[ev.Industry] = true
		if plants[ev.PlantID] == nil {
			plants[ev.PlantID] = map[shift.GroupKey]bool{}
		}
		plants[ev.PlantID][ev.Group()] = true
		if workers[ev.Group()] == nil {
			workers[ev.Group()] = map[string]bool{}
		}
		workers[ev.Group()][ev.WorkerID] = true
		for _, id := range []string{ev.PlantID, ev.Role, ev.Unit, ev.WorkerID, ev.Industry} {
			if !slug.MatchString(id) {
				t.Fatalf("identifier %q is not a slug", id)
			}
		}
		if ev.Industry == Coal && ev.ShiftHours != 6 {
			t.Fatalf("coal shift of %v h", ev.ShiftHours)
		}
	}
	if !hours[6] || !hours[8] || len(hours) != 2 {
		t.Errorf("shift lengths %v, want 6 and 8", hours)
	}
	if len(industries) < 5 || len(plants) < 24 {
		t.Errorf("%d industries, %d plants in the stream", len(industries), len(plants))
	}
	for p, gs := range plants {
		if len(gs) < 1 || len(gs) > 3 {
			t.Errorf("plant %s has %d groups", p, len(gs))
		}
	}
	for g, ws := range workers {
		if len(ws) != cfg.WorkersPerGroup {
			t.Errorf("group %v has %d workers", g, len(ws))
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
	}{
		{"zero", func(c *Config) { *c = Config{} }},
		{"start not midnight", func(c *Config) { c.Start = c.Start.Add(time.Hour) }},
		{"start too early", func(c *Config) { c.Start = time.Date(1899, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"no days", func(c *Config) { c.Days = 0 }},
		{"no plants", func(c *Config) { c.Plants = 0 }},
		{"no industries", func(c *Config) { c.Industries = nil }},
		{"unknown industry", func(c *Config) { c.Industries = []string{"coal", "aviation"} }},
		{"industry twice", func(c *Config) { c.Industries = []string{"coal", "coal"} }},
		{"no workers", func(c *Config) { c.WorkersPerGroup = 0 }},
		{"four groups", func(c *Config) { c.MaxGroupsPerPlant = 4 }},
		{"groups inverted", func(c *Config) { c.MinGroupsPerPlant, c.MaxGroupsPerPlant = 3, 2 }},
		{"rest every day", func(c *Config) { c.RestEvery = 1 }},
		{"negative rate", func(c *Config) { c.DuplicateRate = -0.1 }},
		{"NaN rate", func(c *Config) { c.LateRate = math.NaN() }},
		{"too many planted", func(c *Config) { c.RecordRate, c.SuspectRate, c.PaceRate = 0.05, 0.05, 0.05 }},
		{"too many near misses", func(c *Config) { c.NearMissRate = 0.06 }},
		{"edge rate above 1", func(c *Config) { c.MinShiftsEdgeRate = 1.5 }},
		{"disorder too large", func(c *Config) { c.MaxDisorder = 4 * time.Hour }},
		{"disorder not whole seconds", func(c *Config) { c.MaxDisorder = 1500 * time.Millisecond }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.edit(&cfg)
			if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v", err)
			}
			if _, err := New(cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

// TestEmitOrder checks the event-time order globally and as the pipeline
// sees it: per partition, with stream time the largest shift_start seen and a
// day closing 6 h after its end.
func TestEmitOrder(t *testing.T) {
	msgs, _ := defaultRun(t)
	const lateness = 6 * time.Hour
	var maxStart time.Time
	for _, m := range msgs {
		if m.Kind == KindMalformed {
			continue
		}
		behind := maxStart.Sub(m.ShiftStart)
		switch m.Kind {
		case KindValid, KindDuplicate:
			if behind > 3*time.Hour {
				t.Fatalf("%v %s is %v behind stream time", m.Kind, m.EventID, behind)
			}
		case KindLate:
			if behind < 30*time.Hour {
				t.Fatalf("late %s only %v behind stream time", m.EventID, behind)
			}
		}
		if m.ShiftStart.After(maxStart) {
			maxStart = m.ShiftStart
		}
	}
	// What the near misses' norms rest on (doc.go): of two on-time shifts
	// of a group, the one that starts earlier is emitted first, so the
	// pipeline has every shift of a window when it reads the shift after it.
	latest := map[shift.GroupKey]time.Time{}
	for _, m := range msgs {
		if m.Kind != KindValid {
			continue
		}
		ev, _ := shift.Decode(m.Value)
		if l := latest[ev.Group()]; ev.ShiftStart.Before(l) {
			t.Fatalf("%s (start %v) emitted after a shift of its group that starts at %v", m.EventID, ev.ShiftStart, l)
		}
		latest[ev.Group()] = ev.ShiftStart
	}
	for _, parts := range []int{1, 3, 12, 64} {
		streamTime := make([]time.Time, parts)
		for _, m := range msgs {
			h := fnv.New32a()
			h.Write(m.Key)
			p := int(h.Sum32() % uint32(parts))
			ev, err := shift.Decode(m.Value)
			if err != nil {
				continue
			}
			closed := !streamTime[p].Before(shift.DayOf(ev.ShiftStart).End().Add(lateness))
			if closed != (m.Kind == KindLate) {
				t.Fatalf("%d partitions: %v message %s finds its day closed=%v (stream time %v)", parts, m.Kind, m.EventID, closed, streamTime[p])
			}
			if ev.ShiftStart.After(streamTime[p]) {
				streamTime[p] = ev.ShiftStart
			}
		}
	}
}

func TestModelBounds(t *testing.T) {
	const eps = maxRoundingError
	up, down := 1+eps, 1-eps
	ordMin, ordMax := skillMin*noiseMin, skillMax*noiseMax
	checks := []struct {
		name string
		ok   bool
	}{
		{"ordinary worker below pace-setter", ordMax*up/(ordMin*down) < paceSetterRatio},
		{"pace-setter at least 1.5× the median", paceFactorMin*down >= paceSetterRatio*1.01},
		{"pace-setter below record", paceFactorMax*paceLevelMax*up*up/(ordMin*down) < 3},
		{"record reaches 3×", recordFactorMin*down/(ordMax*up) >= 3*1.05},
		{"pace shop holds ±10 %", paceLevelMax*up/(paceLevelMin*down) < 1+commonTolerance && paceLevelMin*down/(paceLevelMax*up) > 1-commonTolerance},
		{"pace shop within ordinary range", paceLevelMin >= ordMin && paceLevelMax <= ordMax},
		{"normal scrap not suspect", normalScrapMax*up < 0.05 && recordScrapMax*up < 0.05 && suspectScrapMin*down > 0.05},
		// near misses: each band on its side of the threshold, so that a
		// draw in it can land there after rounding; and nothing else of a
		// near-miss day comes near a record
		{"near ratio bands", nearBandsAround(recordRatio, nearRatioBelow, nearRatioAbove)},
		{"near pace bands", nearBandsAround(paceSetterRatio, nearPaceBelow, nearPaceAbove)},
		{"near scrap bands", scrapBandsAround(suspectScrapShare)},
		{"scrap near misses are records", nearScrapRatioMin*down > recordRatio*1.05 && edgeRatioMin*down > recordRatio*1.05},
		{"near pace-setter below record", 1.6*paceLevelMax*up*up/(ordMin*down) < recordRatio},
		{"common edge: level within ±10 %", paceLevelMax*up/(paceLevelMin*down) < 1+commonTolerance},
		{"common edge: inside, outside, low", commonInsideMax*up < 1+commonTolerance && commonOutsideMin*down > 1+commonTolerance &&
			commonLowMax*up < 1-commonTolerance && commonOutsideMax*up < paceSetterRatio},
		{"common edge: 7 of 10 is the share", float64(7)/commonEdgeWorkers >= commonShare && float64(6)/commonEdgeWorkers < commonShare},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("bound violated: %s", c.name)
		}
	}
	for _, in := range catalog {
		for _, r := range in.roles {
			least := r.rate * float64(in.hours) * plantFactorMin * ordMin
			if e := 0.5 * math.Pow(10, -float64(r.decimals)) / least; e > eps {
				t.Errorf("%s/%s: rounding error %.4f > %v", r.role, r.unit, e, eps)
			}
		}
	}
}

// nearBandsAround: below's band (both halves) lies below threshold and
// above's from it, each wider than a rounding step.
func nearBandsAround(threshold float64, below, above planting) bool {
	bl, _ := nearBand(below, false)
	_, bh := nearBand(below, true)
	al, _ := nearBand(above, true)
	_, ah := nearBand(above, false)
	return bl < bh && bh < threshold && threshold <= al && al < ah &&
		(bh-bl)/bh > 4*maxRoundingError && (ah-al)/al > 4*maxRoundingError
}

func scrapBandsAround(threshold float64) bool {
	bl, _ := scrapBand(nearScrapBelow, false)
	_, bh := scrapBand(nearScrapBelow, true)
	al, _ := scrapBand(nearScrapAbove, true)
	_, ah := scrapBand(nearScrapAbove, false)
	return bl < bh && bh <= threshold && threshold < al && al < ah
}

func TestConfigForEvents(t *testing.T) {
	ns := []int{20_000, 100_000, 300_000, 1_000_000}
	if testing.Short() {
		ns = ns[:2]
	}
	for _, n := range ns {
		t.Run("", func(t *testing.T) {
			cfg := ConfigForEvents(n)
			cfg.DiscardTruth = true
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got := 0
			for {
				if _, ok := s.Next(); !ok {
					break
				}
				got++
			}
			el := time.Since(start)
			if d := math.Abs(float64(got)-float64(n)) / float64(n); d > 0.10 {
				t.Errorf("ConfigForEvents(%d) (%d plants, %d days) gave %d messages", n, cfg.Plants, cfg.Days, got)
			}
			if tr := s.Truth(); tr.Messages != int64(got) || tr.CommonPaceDays != nil || tr.NearRecords != nil || tr.NearDays != nil {
				t.Error("truth counts with DiscardTruth")
			}
			// near misses at scale too, every kind in turn
			if tr := s.Truth(); tr.NearRecordCount < 10 || tr.NearDayCount < 10 {
				t.Errorf("%d near-miss shifts, %d days", tr.NearRecordCount, tr.NearDayCount)
			}
			t.Logf("n=%d: %d plants, %d days: %d messages in %v (%.0f/s)", n, cfg.Plants, cfg.Days, got, el, float64(got)/el.Seconds())
		})
	}
	for _, n := range []int{0, 1, 500, 5000} {
		if err := ConfigForEvents(n).Validate(); err != nil {
			t.Errorf("ConfigForEvents(%d): %v", n, err)
		}
	}
}

func TestCanonicalDayMoves(t *testing.T) {
	for _, c := range []struct {
		name  string
		start time.Time
		days  int
		want  string // shift_start of the canonical record, "" for none
	}{
		{"in range", time.Date(1935, 8, 1, 0, 0, 0, 0, time.UTC), 31, "1935-08-30T22:00:00Z"},
		{"before", time.Date(1935, 6, 1, 0, 0, 0, 0, time.UTC), 30, "1935-06-30T22:00:00Z"},
		{"after", time.Date(1936, 1, 1, 0, 0, 0, 0, time.UTC), 10, "1936-01-10T22:00:00Z"},
		{"too short for a norm", time.Date(1935, 8, 29, 0, 0, 0, 0, time.UTC), 2, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Start, cfg.Days, cfg.Plants = c.start, c.days, 7
			msgs, truth := run(t, cfg)
			if c.want == "" {
				if truth.Stakhanov != "" {
					t.Fatalf("planted %s", truth.Stakhanov)
				}
				return
			}
			for _, m := range msgs {
				if m.EventID == truth.Stakhanov && m.Kind == KindValid {
					if got := m.ShiftStart.Format(time.RFC3339); got != c.want {
						t.Fatalf("record at %s, want %s", got, c.want)
					}
					return
				}
			}
			t.Fatalf("canonical record %q not in the stream", truth.Stakhanov)
		})
	}
}

// TestNearMissKindsOfARun: a run plants the near misses its plants can
// hold and no others, and a kind none can hold does not stop the rest.
func TestNearMissKindsOfARun(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Industries = []string{Coal, Power} // no trade reports scrap
	cfg.WorkersPerGroup = 9                // 8 on duty at most: no shop of 10
	cfg.Plants = 8
	_, truth := run(t, cfg)
	got := map[Threshold]map[bool]int{}
	count := func(th Threshold, alert bool) {
		if got[th] == nil {
			got[th] = map[bool]int{}
		}
		got[th][alert]++
	}
	for _, n := range truth.NearRecords {
		count(n.Threshold, n.Alert != "")
	}
	for _, n := range truth.NearDays {
		switch n.Threshold {
		case ThresholdPaceSetterRatio:
			count(n.Threshold, n.PaceSetter)
		case ThresholdPaceMinWorkers:
			count(n.Threshold, n.Judged)
		default:
			count(n.Threshold, n.Common)
		}
	}
	for _, th := range []Threshold{ThresholdRecordRatio, ThresholdPaceSetterRatio, ThresholdPaceMinWorkers} {
		if got[th][false] == 0 || got[th][true] == 0 {
			t.Errorf("%s: %v", th, got[th])
		}
	}
	if got[ThresholdSuspectScrap] != nil || got[ThresholdCommonPaceShare] != nil {
		t.Errorf("near misses no plant can hold: %v", got)
	}
}

// TestShuffleDays: the same messages as the ordered run, in another order,
// the same order again for the same seed; every on-time shift is still
// read before its plant's stream time passes its day's end by the allowed
// lateness (so it is never late), and a day's messages are really mixed.
func TestShuffleDays(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Days = 20
	run := func(shuffle bool) []Message {
		c := cfg
		c.ShuffleDays = shuffle
		sim, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []Message
		for m, ok := sim.Next(); ok; m, ok = sim.Next() {
			m.Index = 0
			msgs = append(msgs, m)
		}
		return msgs
	}
	ordered, shuffled := run(false), run(true)
	if !slices.EqualFunc(shuffled, run(true), func(a, b Message) bool { return bytes.Equal(a.Value, b.Value) }) {
		t.Fatal("two shuffled runs of one seed differ")
	}
	key := func(m Message) string { return string(m.Key) + "\x00" + string(m.Value) }
	a, b := make([]string, len(ordered)), make([]string, len(shuffled))
	for i := range ordered {
		a[i] = key(ordered[i])
	}
	for i := range shuffled {
		b[i] = key(shuffled[i])
	}
	if slices.Equal(a, b) {
		t.Fatal("shuffling changed nothing")
	}
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		t.Fatal("shuffling changed the messages, not only their order")
	}
	const lateness = 6 * time.Hour
	streamTime := map[string]time.Time{}
	behindMost := time.Duration(0)
	for _, m := range shuffled {
		if m.Kind != KindValid && m.Kind != KindDuplicate {
			continue
		}
		plant := string(m.Key)
		dayEnd := m.ShiftStart.Truncate(24 * time.Hour).Add(24 * time.Hour)
		if st := streamTime[plant]; !st.Before(dayEnd.Add(lateness)) {
			t.Fatalf("%s of %v read when its plant's stream time is %v: late", m.EventID, m.ShiftStart, st)
		}
		behindMost = max(behindMost, streamTime[plant].Sub(m.ShiftStart))
		if m.ShiftStart.After(streamTime[plant]) {
			streamTime[plant] = m.ShiftStart
		}
	}
	if behindMost < 12*time.Hour {
		t.Fatalf("at most %v of disorder: the days are hardly shuffled", behindMost)
	}
}
