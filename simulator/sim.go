package simulator

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/stakhanov/stakhanov/shift"
)

// The bounds of the model. The guarantees of the Truth rest on them; the
// arithmetic is spelled out in doc.go and checked by TestModelBounds.
const (
	skillMin, skillMax = 0.86, 1.14 // a worker's skill, times the group's base rate
	noiseMin, noiseMax = 0.95, 1.05 // a shift's luck, times the worker's rate

	paceLevelMin, paceLevelMax   = 0.96, 1.04 // the shop's common level on a pace day, times the base rate
	paceFactorMin, paceFactorMax = 1.8, 2.3   // a pace-setter's rate over the day's median

	recordFactorMin, recordFactorMax = 4.0, 8.0 // a planted record's rate, times the base rate
	recordScrapMax                   = 0.01
	suspectScrapMin, suspectScrapMax = 0.10, 0.40
	normalScrapMax                   = 0.02
	plantFactorMin, plantFactorMax   = 0.9, 1.1 // a group's base rate, times the role's typical rate
	maxRoundingError                 = 0.005    // relative change of a rate by rounding the output
	explicitCrewShare                = 0.25     // share of one-worker reports that state crew_size 1
	helpersShare                     = 0.8      // share of records with helpers (crew_size raised)
	sectionShare                     = 0.6      // share of groups that report a section
	dupDelayMin, dupDelayMax         = 60, 1200 // seconds from a message to its re-send
	lateDelayMin, lateDelaySpread    = 48 * 3600, 24 * 3600
	lateDaysBeforeEnd                = 5 // late reports only of days at least this far before the end
	canonicalPhase                   = 4 // the canonical mine's 6 h shifts start at 04, 10, 16 and 22 UTC
	borderlineEpsilon                = 1e-9
	seedPlants, seedDays             = 1, 2

	// The rules under their default options, which the truth is about.
	windowDays                   = 28
	minHistory                   = 20
	recordRatio                  = 3.0
	suspectScrapShare            = 0.05
	paceMinWorkers               = 8
	paceSetterRatio              = 1.5
	commonTolerance, commonShare = 0.10, 0.70

	// Near misses: where a planted value must land after rounding, as a
	// ratio to the exact norm or to the day's median, or as a scrap share.
	// The bands of nearBand, and:
	nearScrapRatioMin, nearScrapRatioMax = 4.0, 6.0 // a scrap near miss is a record by its ratio
	edgeRatioMin, edgeRatioMax           = 3.5, 5.0 // a would-be record beside record_min_shifts
	commonEdgeWorkers                    = 10       // 7 of 10 is exactly the 70 % common_pace needs
	commonInsideMin, commonInsideMax     = 1.08, 1.09
	commonOutsideMin, commonOutsideMax   = 1.11, 1.12
	commonLowMin, commonLowMax           = 0.75, 0.85
	// A near miss keeps this relative distance from its threshold, so that
	// no floating-point detail of an implementation can move it across.
	nearMargin = 1e-9
	nearTries  = 8 // draws before a planting that rounding keeps missing its band is dropped

	// ringDays of a group's on-time shifts are kept: a shift's window
	// reaches into the 28th day before its own.
	ringDays = windowDays + 1
	maxSlots = 4 // shifts of 6 h or 8 h: at most four slots a day
)

// Kind says what a message is.
type Kind uint8

// The kinds of message.
const (
	// KindValid is a valid shift report that arrives on time: it must be
	// counted.
	KindValid Kind = iota + 1
	// KindDuplicate is a byte-identical re-send of an earlier KindValid
	// message: it must be dropped as a repeat of its event_id.
	KindDuplicate
	// KindLate is a valid shift report that arrives two to three days
	// after its day closed: stored as late, kept out of norms and days.
	KindLate
	// KindMalformed is not a valid shift event; Message.Reason is the
	// shift.Reason… code shift.Decode gives it.
	KindMalformed
)

func (k Kind) String() string {
	switch k {
	case KindValid:
		return "valid"
	case KindDuplicate:
		return "duplicate"
	case KindLate:
		return "late"
	case KindMalformed:
		return "malformed"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Message is one Kafka message of the stream.
type Message struct {
	// Index is the message's position in the stream, from 0.
	Index int64
	// Key is the plant_id. It is shared by all messages of the plant: do
	// not modify it.
	Key []byte
	// Value is the JSON shift event (or the malformed bytes). Each message
	// has its own.
	Value []byte
	Kind  Kind
	// EventID is the event_id; for a malformed message, the id the message
	// would have had (its value may lack or mangle it).
	EventID string
	// ShiftStart is the shift's start; zero for malformed messages.
	ShiftStart time.Time
	// Reason is, for a malformed message, the reason code shift.Decode
	// returns for it; "" otherwise.
	Reason string
	// Defect names, for a malformed message, what is wrong with it (such
	// as "truncated" or "scrap_above_output"); "" otherwise.
	Defect string
}

type worker struct {
	id    string
	skill float64
}

type group struct {
	plant   *plant
	idx     int
	spec    roleSpec
	key     shift.GroupKey
	hours   float64
	phase   int // hour of the first shift of the day
	base    float64
	section string
	workers []worker
	// win holds the outputs of the group's on-time shifts of the last
	// ringDays days, in units of the output's last decimal, in order of
	// day and slot, and winSlots how many each day (its index modulo
	// ringDays) has in each slot: a shift's window is a run of it (see
	// norm). Ten million messages keep some 11,000 groups: 4 bytes a
	// shift, not the 8 of a rate, hold them in 18 MB.
	win      []int32
	winSlots [ringDays][maxSlots]uint16
	// mid is the JSON between event_id's value and worker_id's value.
	mid []byte
}

type plant struct {
	idx      int
	id       string
	key      []byte
	industry *industrySpec
	groups   []*group
}

// shiftRec is one worker's shift of a group-day while it is generated.
type shiftRec struct {
	w         int
	slot      int // the shift starts at the group's phase + slot × its hours
	rate      float64
	start     time.Time
	output    float64
	scrap     float64
	hasScrap  bool
	crew      int
	crewField bool
	late, dup bool
	malformed bool
	star      bool   // the shift a group-day's planting is about
	alert     string // the record alert the shift raises, "" for none
	cause     Cause  // what lifts the worker's day rate, if it makes a pace-setter
}

// item is a message waiting in emit order: its place in the order and its
// index in the message buffer (kept apart so that sorting moves no
// pointers).
type item struct {
	key int64  // event time of emission, Unix seconds
	seq uint64 // generation order, to break ties
	idx int    // index into the buffer of messages
}

// planting says what a group-day was given.
type planting uint8

const (
	plantNone planting = iota
	plantRecord
	plantSuspect
	plantPace
	plantEdge // a would-be record where the window holds 19 or 20 shifts

	// near misses, drawn with equal chances
	nearRatioBelow
	nearRatioAbove
	nearScrapBelow
	nearScrapAbove
	nearPaceBelow
	nearPaceAbove
	nearWorkers7
	nearWorkers8
	nearCommonBelow
	nearCommonAbove
)

// nearKindsOf lists the near misses a run of cfg can hold: those of the
// scrap share need a trade that reports scrap, those of a day enough
// workers on duty. A kind no group can take would stop the turn at it.
func nearKindsOf(cfg Config) []planting {
	scrap := false
	for _, name := range cfg.Industries {
		in, _ := industryByName(name)
		for _, r := range in.roles {
			scrap = scrap || r.scrap
		}
	}
	onDuty := cfg.WorkersPerGroup // at most, on the day fewest rest
	if cfg.RestEvery > 0 {
		onDuty -= cfg.WorkersPerGroup / cfg.RestEvery
	}
	var out []planting
	for k := nearRatioBelow; k <= nearCommonAbove; k++ {
		need := 1
		switch k {
		case nearScrapBelow, nearScrapAbove:
			if !scrap {
				continue
			}
		case nearPaceBelow, nearPaceAbove, nearWorkers8:
			need = paceMinWorkers
		case nearWorkers7:
			need = paceMinWorkers - 1
		case nearCommonBelow, nearCommonAbove:
			need = commonEdgeWorkers
		}
		if onDuty >= need {
			out = append(out, k)
		}
	}
	return out
}

// level says whether the planting holds the shop at one common level.
func (k planting) level() bool {
	return k == plantPace || k >= nearPaceBelow && k <= nearCommonAbove
}

// Sim generates the stream. It is not safe for concurrent use.
type Sim struct {
	cfg      Config
	plants   []*plant
	firstDay shift.Day
	// the canonical record, if planned
	canonGroup *group
	canonDay   int

	day   int // next day to generate
	done  bool
	seq   uint64
	index int64
	// ready (sorted, indexing readyMsgs) is being emitted; carry (indexing
	// carryMsgs) waits for later days, and the next day's messages join it.
	ready, carry         []item
	readyMsgs, carryMsgs []Message
	pos                  int
	// nearNext counts the near misses planted: the next near-miss day gets
	// kind nearNext mod len(nearList), so that every kind the run can hold
	// comes in turn, and each pass through them takes the halves of their
	// bands nearer to or farther from the threshold in turn. edgeNext does
	// the same for would-be records whose window holds 19 and 20 shifts.
	nearList           []planting
	nearNext, edgeNext int

	truth Truth

	// scratch
	shifts []shiftRec
	rates  []float64
	sorted []float64
	window []float64
	perm   []int
}

// New validates cfg and sets up a run. Nothing is generated until Next.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Industries = slices.Clone(cfg.Industries)
	s := &Sim{
		cfg:      cfg,
		firstDay: shift.DayOf(cfg.Start),
		canonDay: -1,
	}
	s.buildPlants()
	s.nearList = nearKindsOf(cfg)
	if cfg.Stakhanov {
		s.planCanonical()
	}
	return s, nil
}

// Config returns the run's configuration.
func (s *Sim) Config() Config {
	c := s.cfg
	c.Industries = slices.Clone(c.Industries)
	return c
}

func (s *Sim) buildPlants() {
	cfg := &s.cfg
	s.plants = make([]*plant, cfg.Plants)
	canonPlanned := false
	for i := range s.plants {
		in, _ := industryByName(cfg.Industries[i%len(cfg.Industries)])
		k := i / len(cfg.Industries) // how many plants of the industry came before
		id := in.plants[k%len(in.plants)]
		if k >= len(in.plants) {
			id += "-" + strconv.Itoa(k/len(in.plants)+1)
		}
		p := &plant{idx: i, id: id, key: []byte(id), industry: in}
		s.plants[i] = p
		canon := cfg.Stakhanov && !canonPlanned && id == stakhanovPlant
		canonPlanned = canonPlanned || canon

		r := newRNG(cfg.Seed, seedPlants, uint64(i))
		phase := r.intn(in.hours)
		if canon {
			phase = canonicalPhase
		}
		hi := min(cfg.MaxGroupsPerPlant, len(in.roles))
		lo := min(cfg.MinGroupsPerPlant, hi)
		n := lo + r.intn(hi-lo+1)
		// the first role always, then n-1 of the others, in catalog order
		others := make([]int, 0, len(in.roles)-1)
		for j := 1; j < len(in.roles); j++ {
			others = append(others, j)
		}
		for j := len(others) - 1; j > 0; j-- {
			x := r.intn(j + 1)
			others[j], others[x] = others[x], others[j]
		}
		roles := append([]int{0}, others[:n-1]...)
		slices.Sort(roles)

		taken := map[string]int{}
		for gi, ri := range roles {
			spec := in.roles[ri]
			g := &group{
				plant: p, idx: gi, spec: spec,
				key:   shift.GroupKey{PlantID: id, Role: spec.role, Unit: spec.unit},
				hours: float64(in.hours), phase: phase,
			}
			factor := r.uniform(plantFactorMin, plantFactorMax)
			if r.chance(sectionShare) {
				g.section = in.sections[r.intn(len(in.sections))]
			}
			isCanon := canon && gi == 0
			if isCanon {
				factor = 1 // the norm of 14 t a shift
				g.section = in.sections[0]
				s.canonGroup = g
			}
			g.base = spec.rate * factor
			g.workers = make([]worker, cfg.WorkersPerGroup)
			g.win = make([]int32, 0, ringDays*cfg.WorkersPerGroup) // a shift a worker a day
			for w := range g.workers {
				sur := surnames[r.intn(len(surnames))]
				if in.feminine {
					sur = feminineForm(sur)
				}
				name := initials[r.intn(len(initials))] + "." + sur
				if isCanon && w == 0 {
					name = stakhanovWorker
				}
				if c := taken[name]; c > 0 {
					taken[name] = c + 1
					name += "-" + strconv.Itoa(c+1)
				}
				taken[name]++
				g.workers[w] = worker{id: name, skill: r.uniform(skillMin, skillMax)}
			}
			g.mid = groupJSON(p, g)
			p.groups = append(p.groups, g)
		}
	}
}

// groupJSON is the part of a report between the event id and the worker id.
func groupJSON(p *plant, g *group) []byte {
	b := []byte(`","plant_id":"`)
	b = append(b, p.id...)
	b = append(b, `","industry":"`...)
	b = append(b, p.industry.name...)
	if g.section != "" {
		b = append(b, `","section":"`...)
		b = append(b, g.section...)
	}
	b = append(b, `","role":"`...)
	b = append(b, g.spec.role...)
	b = append(b, `","worker_id":"`...)
	return b
}

// planCanonical picks the day of the canonical record: 1935-08-30 when the
// run has it, else the run's last day.
func (s *Sim) planCanonical() {
	if s.canonGroup == nil {
		return
	}
	d := time.Date(stakhanovDate[0], time.Month(stakhanovDate[1]), stakhanovDate[2], 0, 0, 0, 0, time.UTC)
	idx := int(shift.DayOf(d) - s.firstDay)
	if idx < 0 || idx >= s.cfg.Days {
		idx = s.cfg.Days - 1
	}
	s.canonDay = idx
}

// Next returns the next message in emit order, or false when the stream is
// over.
func (s *Sim) Next() (Message, bool) {
	for s.pos >= len(s.ready) {
		if s.done {
			return Message{}, false
		}
		s.advance()
	}
	it := s.ready[s.pos]
	s.pos++
	m := s.readyMsgs[it.idx]
	s.readyMsgs[it.idx] = Message{} // let the value go
	m.Index = s.index
	s.index++
	s.account(&m)
	return m, true
}

// Truth returns what the stream holds. Its counts and message lists grow as
// messages are emitted; the planted lists grow a day ahead of emission. It
// is complete once Next has returned false. The Sim owns it: read it, do
// not keep it across further calls to Next.
func (s *Sim) Truth() *Truth { return &s.truth }

func (s *Sim) account(m *Message) {
	t := &s.truth
	t.Messages++
	switch m.Kind {
	case KindValid:
		t.Valid++
		t.OnTime++
	case KindLate:
		t.Valid++
		t.LateCount++
		if !s.cfg.DiscardTruth {
			t.Late = append(t.Late, m.EventID)
		}
	case KindDuplicate:
		t.DuplicateCount++
		if !s.cfg.DiscardTruth {
			t.Duplicates = append(t.Duplicates, m.EventID)
		}
	case KindMalformed:
		t.MalformedCount++
		if !s.cfg.DiscardTruth {
			t.Malformed = append(t.Malformed, MalformedMessage{Index: m.Index, EventID: m.EventID, Defect: m.Defect, Reason: m.Reason})
		}
	}
}

// advance generates the next day and moves every message due before the
// following day's first shift into ready.
func (s *Sim) advance() {
	if s.day < s.cfg.Days {
		for _, p := range s.plants {
			for _, g := range p.groups {
				s.groupDay(s.day, g)
			}
		}
		s.day++
	}
	pending, msgs := s.carry, s.carryMsgs
	slices.SortFunc(pending, func(a, b item) int {
		if a.key != b.key {
			if a.key < b.key {
				return -1
			}
			return 1
		}
		if a.seq < b.seq {
			return -1
		}
		return 1
	})
	n := len(pending)
	if s.day < s.cfg.Days {
		// every message of a later day is due at or after that day's start
		bound := (s.firstDay + shift.Day(s.day)).Start().Unix()
		n, _ = slices.BinarySearchFunc(pending, bound, func(it item, k int64) int {
			if it.key < k {
				return -1
			}
			return 1
		})
	} else {
		s.done = true
	}
	// double buffering: the emptied ready buffers take the carry-over
	carry, carryMsgs := s.ready[:0], s.readyMsgs[:cap(s.readyMsgs)]
	clear(carryMsgs)
	carryMsgs = carryMsgs[:0]
	for _, it := range pending[n:] {
		carry = append(carry, item{key: it.key, seq: it.seq, idx: len(carryMsgs)})
		carryMsgs = append(carryMsgs, msgs[it.idx])
		msgs[it.idx] = Message{}
	}
	s.ready, s.readyMsgs = pending[:n], msgs
	if s.cfg.ShuffleDays {
		// Fisher–Yates with the day's own generator, so the order of one
		// day never depends on another's
		r := newRNG(s.cfg.Seed, shuffleStream, uint64(s.day))
		for i := len(s.ready) - 1; i > 0; i-- {
			j := r.intn(i + 1)
			s.ready[i], s.ready[j] = s.ready[j], s.ready[i]
		}
		// a shift of the day before (a night shift due after midnight)
		// goes first, or its day would have closed by the time it came
		slices.SortStableFunc(s.ready, func(a, b item) int {
			return cmp.Compare(shift.DayOf(msgs[a.idx].ShiftStart), shift.DayOf(msgs[b.idx].ShiftStart))
		})
	}
	s.carry, s.carryMsgs = carry, carryMsgs
	s.pos = 0
}

// shuffleStream is the first index of the generators of ShuffleDays, apart
// from those of plants and groups.
const shuffleStream = 1 << 62

// push queues a message.
func (s *Sim) push(key int64, m Message) {
	s.seq++
	s.carry = append(s.carry, item{key: key, seq: s.seq, idx: len(s.carryMsgs)})
	s.carryMsgs = append(s.carryMsgs, m)
}

// groupDay generates one group's shifts of day d, queues their messages and
// records the day's truths.
func (s *Sim) groupDay(d int, g *group) {
	cfg := &s.cfg
	p := g.plant
	r := newRNG(cfg.Seed, seedDays, uint64(p.idx), uint64(g.idx), uint64(d))
	day := s.firstDay + shift.Day(d)
	dayStart := day.Start()
	canon := g == s.canonGroup && d == s.canonDay
	g.dropDay(d - ringDays)

	// who works today, and in which slot
	nSlots := 24 / int(g.hours)
	sh := s.shifts[:0]
	for w := range g.workers {
		rest := cfg.RestEvery > 0 && (d+w)%cfg.RestEvery == 0
		absent := r.chance(cfg.AbsenceRate)
		if (rest || absent) && !(canon && w == 0) {
			continue
		}
		week := d / 6
		if cfg.RestEvery > 0 {
			week = (d + w) / cfg.RestEvery
		}
		sh = append(sh, shiftRec{w: w, slot: (w + week) % nSlots})
	}
	defer func() { s.shifts = sh[:0] }()

	// what the day is given
	hist := 0
	for k := 1; k < windowDays && k <= d; k++ {
		hist += g.dayCount(d - k)
	}
	eligible := hist >= minHistory && len(sh) > 0
	edges := s.edgeCandidates(g, d, sh, minHistory-1+s.edgeNext%2)
	kind, star := plantNone, -1
	u := r.float()
	switch {
	case canon:
		if eligible {
			kind = plantRecord
		}
	case len(edges) > 0 && r.chance(cfg.MinShiftsEdgeRate):
		kind, star = plantEdge, edges[r.intn(len(edges))]
	case !eligible:
	case u < cfg.RecordRate:
		kind = plantRecord
	case u < cfg.RecordRate+cfg.SuspectRate:
		kind = plantSuspect
	case u < cfg.RecordRate+cfg.SuspectRate+cfg.PaceRate:
		if len(sh) >= paceMinWorkers {
			kind = plantPace
		}
	case u < cfg.RecordRate+cfg.SuspectRate+cfg.PaceRate+cfg.NearMissRate:
		kind = s.nearList[s.nearNext%len(s.nearList)]
	}
	closer := s.nearNext/len(s.nearList)%2 == 0
	// what the near miss needs of the day
	switch kind {
	case nearScrapBelow, nearScrapAbove:
		if !g.spec.scrap {
			kind = plantNone
		}
	case nearPaceBelow, nearPaceAbove:
		if len(sh) < paceMinWorkers {
			kind = plantNone
		}
	case nearWorkers7, nearWorkers8, nearCommonBelow, nearCommonAbove:
		n := commonEdgeWorkers
		switch kind {
		case nearWorkers7:
			n = paceMinWorkers - 1
		case nearWorkers8:
			n = paceMinWorkers
		}
		if len(sh) < n {
			kind = plantNone
			break
		}
		for len(sh) > n { // the others are away that day
			i := r.intn(len(sh))
			sh = slices.Delete(sh, i, i+1)
		}
	}

	// rates, start times, outputs
	dec := g.spec.decimals
	for i := range sh {
		rec := &sh[i]
		rec.start = dayStart.Add(time.Duration(g.phase+int(g.hours)*rec.slot) * time.Hour)
		if kind.level() {
			rec.rate = g.base * r.uniform(paceLevelMin, paceLevelMax)
		} else {
			rec.rate = g.base * g.workers[rec.w].skill * r.uniform(noiseMin, noiseMax)
		}
		rec.output = round(rec.rate*g.hours, dec)
		rec.crew = g.spec.crew
		rec.crewField = rec.crew != 1 || r.chance(explicitCrewShare)
		if g.spec.scrap {
			rec.hasScrap = true
			rec.scrap = round(rec.output*r.uniform(0, normalScrapMax), dec)
		}
	}
	var near NearRecord
	planted := false // near is a near miss that landed in its band
	switch kind {
	case plantRecord, plantSuspect:
		i := 0 // the canonical worker is worker 0, always at work that day
		if !canon {
			i = r.intn(len(sh))
		}
		rec := &sh[i]
		rec.star = true
		rec.alert, rec.cause = AlertRecordShift, CauseRecord
		if kind == plantSuspect {
			rec.alert, rec.cause = AlertSuspectRecord, CauseSuspect
		}
		if canon {
			rec.slot = (stakhanovHour - g.phase) / int(g.hours)
			rec.start = dayStart.Add(stakhanovHour * time.Hour)
			rec.output = stakhanovOutput
			rec.crew, rec.crewField = stakhanovCrew, true
			rec.hasScrap, rec.scrap = false, 0
			break
		}
		rec.output = round(g.base*r.uniform(recordFactorMin, recordFactorMax)*g.hours, dec)
		if r.chance(helpersShare) {
			rec.crew += 1 + r.intn(2)
			rec.crewField = true
		}
		if kind == plantSuspect {
			rec.hasScrap = true
			rec.scrap = round(rec.output*r.uniform(suspectScrapMin, suspectScrapMax), dec)
		} else if rec.hasScrap {
			rec.scrap = round(rec.output*r.uniform(0, recordScrapMax), dec)
		}
	case plantPace:
		s.plantStars(&r, g, sh, 1+r.intn(2), paceFactorMin, paceFactorMax)
	case plantEdge, nearRatioBelow, nearRatioAbove, nearScrapBelow, nearScrapAbove:
		if star < 0 {
			star = r.intn(len(sh))
		}
		near, planted = s.plantNearRecord(&r, g, d, sh, star, kind, closer)
	case nearPaceBelow, nearPaceAbove:
		lo, hi := nearBand(kind, closer)
		s.plantStars(&r, g, sh, 1, lo, hi)
	case nearWorkers7, nearWorkers8:
		s.plantStars(&r, g, sh, 1, paceFactorMin, paceFactorMax)
	case nearCommonBelow:
		s.plantCommonEdge(&r, g, sh, 6)
	case nearCommonAbove:
		s.plantCommonEdge(&r, g, sh, 7)
	}

	// late, duplicate and malformed messages
	lateOK := kind == plantNone && d <= cfg.Days-lateDaysBeforeEnd
	for i := range sh {
		rec := &sh[i]
		rec.late = lateOK && r.chance(cfg.LateRate)
		rec.dup = !rec.late && r.chance(cfg.DuplicateRate)
		rec.malformed = r.chance(cfg.MalformedRate)
	}

	// messages
	date := dayStart.Format("20060102")
	maxJitter := int(cfg.MaxDisorder / time.Second)
	for i := range sh {
		rec := &sh[i]
		wk := &g.workers[rec.w]
		id := p.id + "-" + date + "-" + wk.id + "-1"
		val := s.encode(g, rec, id)
		msg := Message{Key: p.key, Value: val, Kind: KindValid, EventID: id, ShiftStart: rec.start}
		var key int64
		if rec.late {
			msg.Kind = KindLate
			key = day.End().Unix() + lateDelayMin + int64(r.intn(lateDelaySpread+1))
		} else {
			key = rec.start.Unix() + int64(r.intn(maxJitter+1))
		}
		s.push(key, msg)
		if rec.dup {
			dup := msg
			dup.Kind = KindDuplicate
			dup.Value = slices.Clone(val)
			s.push(key+int64(dupDelayMin+r.intn(dupDelayMax-dupDelayMin+1)), dup)
		}
		if rec.malformed {
			mid := p.id + "-" + date + "-" + wk.id + "-m1"
			value, defect, reason := malformed(&r, g, rec, mid)
			mk := rec.start.Unix() + int64(r.intn(maxJitter+1))
			s.push(mk, Message{Key: p.key, Value: value, Kind: KindMalformed, EventID: mid, Reason: reason, Defect: defect})
		}
		switch rec.alert {
		case AlertRecordShift:
			s.truth.RecordCount++
			if !cfg.DiscardTruth {
				s.truth.RecordShifts = append(s.truth.RecordShifts, id)
			}
		case AlertSuspectRecord:
			s.truth.SuspectCount++
			if !cfg.DiscardTruth {
				s.truth.SuspectRecords = append(s.truth.SuspectRecords, id)
			}
		}
		if canon && rec.star && !cfg.DiscardTruth {
			s.truth.Stakhanov = id
		}
		if planted && rec.star {
			if kind == plantEdge {
				s.edgeNext++
			} else {
				s.nearNext++
			}
			s.truth.NearRecordCount++
			if !cfg.DiscardTruth {
				near.EventID, near.WorkerID = id, wk.id
				s.truth.NearRecords = append(s.truth.NearRecords, near)
			}
		}
	}

	// the day's truths, over its on-time shifts
	g.addDay(d, sh)
	rs := s.rates[:0]
	for i := range sh {
		if !sh[i].late {
			rs = append(rs, sh[i].output/g.hours)
		}
	}
	s.rates = rs
	if len(rs) == 0 {
		return
	}
	v := s.judgeDay(rs)
	if nd, ok := s.nearDay(g, day, sh, kind, closer, v); ok {
		s.nearNext++
		s.truth.NearDayCount++
		if !cfg.DiscardTruth {
			s.truth.NearDays = append(s.truth.NearDays, nd)
		}
	}
	if !v.judged {
		return
	}
	s.truth.JudgedDays++
	gd := GroupDay{Group: g.key, Day: day}
	if v.common {
		s.truth.CommonPaceCount++
	}
	if !cfg.DiscardTruth {
		if v.common {
			s.truth.CommonPaceDays = append(s.truth.CommonPaceDays, gd)
		}
		if v.borderline {
			s.truth.Borderline = append(s.truth.Borderline, gd)
		}
	}
	for i := range sh {
		if sh[i].late || !(sh[i].output/g.hours >= paceSetterRatio*v.median) {
			continue
		}
		s.truth.PaceSetterCount++
		if !cfg.DiscardTruth {
			s.truth.PaceSetters = append(s.truth.PaceSetters, PaceSetter{
				Group: g.key, WorkerID: g.workers[sh[i].w].id, Day: day, Cause: sh[i].cause,
			})
		}
	}
}

// encode writes a valid report. Field order is fixed; optional fields appear
// as the group and the shift have them.
func (s *Sim) encode(g *group, rec *shiftRec, id string) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"event_id":"`...)
	b = append(b, id...)
	b = append(b, g.mid...)
	b = append(b, g.workers[rec.w].id...)
	b = append(b, '"')
	if rec.crewField {
		b = append(b, `,"crew_size":`...)
		b = strconv.AppendInt(b, int64(rec.crew), 10)
	}
	b = append(b, `,"shift_start":"`...)
	b = rec.start.AppendFormat(b, time.RFC3339)
	b = append(b, `","shift_hours":`...)
	b = strconv.AppendFloat(b, g.hours, 'f', -1, 64)
	b = append(b, `,"output":`...)
	b = strconv.AppendFloat(b, rec.output, 'f', -1, 64)
	b = append(b, `,"unit":"`...)
	b = append(b, g.spec.unit...)
	b = append(b, '"')
	if rec.hasScrap {
		b = append(b, `,"scrap":`...)
		b = strconv.AppendFloat(b, rec.scrap, 'f', -1, 64)
	}
	return append(b, '}')
}

var pow10 = [...]float64{1, 10, 100, 1000}

// round rounds x to dec decimal places. The result is the float64 nearest
// the decimal, which is what parsing its shortest form gives back.
func round(x float64, dec int) float64 {
	p := pow10[dec]
	return math.Round(x*p) / p
}

// median of xs (mean of the middle two for an even count), as the pipeline
// takes it; xs is left unchanged.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return medianSorted(s)
}

func medianSorted(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// dayVerdict is the pace rule applied to a day's worker rates.
type dayVerdict struct {
	judged     bool    // at least paceMinWorkers
	median     float64 // the mean of the middle two for an even count
	within     int     // workers within ±commonTolerance of the median
	common     bool
	borderline bool // the verdict changes when the median or the tolerance moves by a relative 1e-9
}

// judgeDay applies the pace rule to a day's worker rates (at least one).
// borderline marks a day that floating-point details of an implementation
// may judge either way.
func (s *Sim) judgeDay(rates []float64) dayVerdict {
	xs := append(s.sorted[:0], rates...)
	s.sorted = xs
	slices.Sort(xs)
	n := len(xs)
	count := func(m, tol float64) int {
		k := 0
		for _, x := range xs {
			if math.Abs(x-m) <= tol*m {
				k++
			}
		}
		return k
	}
	judge := func(m, tol float64) bool { return float64(count(m, tol))/float64(n) >= commonShare }
	v := dayVerdict{judged: n >= paceMinWorkers, median: medianSorted(xs)}
	v.within = count(v.median, commonTolerance)
	v.common = judge(v.median, commonTolerance)
	const lo, hi = 1 - borderlineEpsilon, 1 + borderlineEpsilon
	for _, c := range []bool{
		judge(v.median*lo, commonTolerance), judge(v.median*hi, commonTolerance),
		judge(v.median, commonTolerance*lo), judge(v.median, commonTolerance*hi),
	} {
		v.borderline = v.borderline || c != v.common
	}
	v.common = v.common && v.judged
	v.borderline = v.borderline && v.judged
	return v
}
