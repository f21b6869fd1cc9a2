package processors

import (
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/stakhanov/stakhanov/processors/norms"
	"github.com/stakhanov/stakhanov/processors/pace"
	"github.com/stakhanov/stakhanov/processors/records"
	"github.com/stakhanov/stakhanov/shift"
)

// The outcomes of Process besides a processed shift.
var (
	// ErrDuplicate: a repeated event_id of the plant, dropped.
	ErrDuplicate = errors.New("duplicate event_id")
	// ErrFromFuture: the shift starts more than Options.FutureMargin after
	// its Kafka record was written — a clock set wrong. It is a bad record:
	// nothing was appended and no clock moved.
	ErrFromFuture = errors.New("shift starts after its record was written")
)

// ReasonFromFuture is the dead-letter reason of ErrFromFuture, beside the
// decoder's reasons (package shift).
const ReasonFromFuture = "from_future"

const noTime = math.MinInt64

// Partition is the processor of one input partition: the state of each
// plant whose events it reads. It is not safe for concurrent use.
type Partition struct {
	opts      Options
	partition int32
	span      int64 // Window in seconds
	lateness  int64
	retention int64
	idle      int64 // IdleClose in seconds
	margin    int64 // FutureMargin in seconds
	records   records.Rule
	pace      pace.Rule

	// logTime is the largest Kafka record timestamp read, Unix seconds;
	// noTime before the first record that carried one.
	logTime int64
	plants  map[string]*plant
	// legacy holds event ids a version-1 snapshot remembered without their
	// plants: a repeat of one in any plant is a duplicate until it ages
	// out of every plant's retention.
	legacy map[uint64]int64
	// due is the log time at which some plant falls idle, is forgotten or
	// is dropped (see sweepIdle); noTime when none can.
	due     int64
	strings map[string]string
}

// plant is one plant's event time and state. Each plant keeps its own
// clock, so one plant's backfill, delay or silence changes nothing for
// another on the same partition.
type plant struct {
	id         string
	streamTime int64 // largest shift_start accepted; noTime before the first
	// closedBefore: every day before it has closed (by stream time, or
	// when the plant fell idle)
	closedBefore shift.Day
	lastLog      int64 // log time of its latest record; noTime when none carried one
	// forgotten is the stream time at which the plant's state was dropped
	// after a long silence (noTime if never): its shifts up to then are
	// unchecked, their ids forgotten.
	forgotten int64
	groups    map[shift.GroupKey]*group
	days      map[shift.Day]*day
	openDays  []shift.Day // ascending
	seen      map[uint64]int64
}

type group struct {
	window *norms.Window
}

type day struct {
	groups map[shift.GroupKey]*dayGroup
}

type dayGroup struct {
	industry string
	workers  map[string]*workerDay
}

type workerDay struct{ output, hours float64 }

// minDay is closedBefore before any day closed.
const minDay = shift.Day(math.MinInt32)

// NewPartition makes the processor of one partition. opts must be valid.
func NewPartition(opts Options, partition int32) (*Partition, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p := &Partition{partition: partition, logTime: noTime, due: noTime,
		plants: make(map[string]*plant), strings: make(map[string]string)}
	p.setOptions(opts)
	return p, nil
}

func (p *Partition) setOptions(opts Options) {
	p.opts = opts
	p.span = int64(opts.Window / time.Second)
	p.lateness = int64(opts.AllowedLateness / time.Second)
	p.retention = int64(opts.Retention() / time.Second)
	p.idle = int64(opts.IdleClose / time.Second)
	p.margin = int64(opts.FutureMargin / time.Second)
	p.records = opts.RecordRule()
	p.pace = opts.PaceRule()
}

func newPlant(id string) *plant {
	return &plant{id: id, streamTime: noTime, closedBefore: minDay, lastLog: noTime, forgotten: noTime,
		groups: make(map[shift.GroupKey]*group), days: make(map[shift.Day]*day), seen: make(map[uint64]int64)}
}

// StreamTime is the largest shift start accepted on the partition, of any
// plant; zero before the first. The rules go by each plant's own.
func (p *Partition) StreamTime() time.Time {
	st := p.maxStreamTime()
	if st == noTime {
		return time.Time{}
	}
	return time.Unix(st, 0).UTC()
}

func (p *Partition) maxStreamTime() int64 {
	st := int64(noTime)
	for _, pl := range p.plants {
		st = max(st, pl.streamTime)
	}
	return st
}

// PlantStreamTime is a plant's stream time; ok is false for a plant the
// partition holds nothing of.
func (p *Partition) PlantStreamTime(plantID string) (t time.Time, ok bool) {
	pl := p.plants[plantID]
	if pl == nil || pl.streamTime == noTime {
		return time.Time{}, false
	}
	return time.Unix(pl.streamTime, 0).UTC(), true
}

// Input says where an event was read: its offset in the partition, and
// the timestamp of its Kafka record (zero when the record carries none) —
// the log's clock, which is deterministic on replay, unlike the wall
// clock.
type Input struct {
	Offset  int64
	LogTime time.Time
}

// Process handles one event. It appends the enriched shift, and any alerts
// and norms it causes, to out. A repeated event_id of the plant returns
// ErrDuplicate, and a shift from the future ErrFromFuture; neither appends
// a shift. The log time of in may close other plants' days first (they
// fell idle); their norms and alerts are appended too.
func (p *Partition) Process(ev *shift.Event, in Input, out *Output) error {
	start := ev.ShiftStart.Unix()
	log := int64(noTime)
	if !in.LogTime.IsZero() {
		log = in.LogTime.Unix()
		if start > log+p.margin {
			out.FromFuture++
			return ErrFromFuture
		}
		if log > p.logTime {
			p.logTime = log
			if p.due != noTime && log >= p.due {
				p.sweepIdle(out)
			}
		}
	}
	pl := p.plants[ev.PlantID]
	if pl == nil {
		pl = newPlant(p.intern(ev.PlantID))
		p.plants[pl.id] = pl
	}
	if log != noTime {
		pl.lastLog = max(pl.lastLog, log)
		defer p.schedule(pl) // once its open days are known
	}
	h := hashID64(ev.EventID)
	if p.isDuplicate(pl, h) {
		out.Duplicates++
		return ErrDuplicate
	}
	p.internEvent(ev)
	s := Shift{
		Event:      *ev,
		Partition:  p.partition,
		Offset:     in.Offset,
		Rate:       ev.Rate(),
		CrewRate:   ev.CrewRate(),
		ScrapShare: ev.ScrapShare(),
		Late:       pl.isLate(start, p.span),
		Unchecked:  p.unchecked(pl, start),
	}
	pl.seen[h] = start
	key := ev.Group()
	g := pl.groups[key]
	switch {
	case !s.Late:
		if g == nil {
			g = &group{window: norms.NewWindow(p.span, p.opts.CommonPaceTolerance)}
			pl.groups[key] = g
		}
		s.Norm, s.CrewNorm = g.window.Norm(start)
	case g != nil && start-p.span >= pl.streamTime-p.retention:
		// late, but the whole trailing window is still held: judged as
		// an on-time shift would have been, though it enters no state
		s.Norm, s.CrewNorm = g.window.Norm(start)
	default:
		// too late for the state: part of its window is gone
		s.Norm, s.CrewNorm = norms.Empty, math.NaN()
		out.TooLate++
	}
	s.Ratio = ratio(s.Rate, s.Norm.Median)
	s.CrewRatio = ratio(s.CrewRate, s.CrewNorm)
	out.Shifts = append(out.Shifts, s)

	if v := p.records.Judge(s.Norm.Count, s.Ratio, s.ScrapShare); v != records.None {
		typ := RecordShift
		if v == records.Suspect {
			typ = SuspectRecord
		}
		out.Alerts = append(out.Alerts, Alert{
			ID: ShiftAlertID(typ, ev.EventID), Type: typ,
			PlantID: ev.PlantID, Industry: ev.Industry, Role: ev.Role, Unit: ev.Unit,
			WorkerID: ev.WorkerID, EventID: ev.EventID, Day: shift.DayOf(ev.ShiftStart),
			Rate: s.Rate, NormRate: s.Norm.Median, Ratio: s.Ratio, ScrapShare: s.ScrapShare,
			GroupSize: s.Norm.Count, BulkShare: s.Norm.Bulk, Late: s.Late,
			DetectedAt: ev.ShiftStart.Add(time.Duration(ev.ShiftHours * float64(time.Hour))).UTC(),
		})
	}
	if s.Late {
		return nil
	}
	pl.add(key, g, ev, start)
	if start > pl.streamTime {
		pl.streamTime = start
		p.closeDue(pl, out)
	}
	return nil
}

func ratio(rate, norm float64) float64 {
	if !(norm > 0) {
		return math.NaN()
	}
	return rate / norm
}

// isLate: the shift's day has closed, or it starts more than a window
// before the plant's stream time.
func (pl *plant) isLate(start, span int64) bool {
	return shift.Day(floorDiv(start, 86400)) < pl.closedBefore ||
		pl.streamTime != noTime && start < pl.streamTime-span
}

// unchecked: the shift starts where the plant no longer remembers ids.
func (p *Partition) unchecked(pl *plant, start int64) bool {
	return pl.streamTime != noTime && start < pl.streamTime-p.retention ||
		pl.forgotten != noTime && start <= pl.forgotten
}

func (p *Partition) isDuplicate(pl *plant, h uint64) bool {
	// an id older than the retention span is forgotten, whether or not the
	// sweep has removed it yet: the answer must not depend on sweep timing
	if t, ok := pl.seen[h]; ok && (pl.streamTime == noTime || t >= pl.streamTime-p.retention) {
		return true
	}
	t, ok := p.legacy[h]
	return ok && (pl.streamTime == noTime || t >= pl.streamTime-p.retention)
}

// add puts an on-time shift into its group's window and its day.
func (pl *plant) add(key shift.GroupKey, g *group, ev *shift.Event, start int64) {
	g.window.Insert(start, ev.Rate(), ev.CrewRate())
	d := shift.DayOf(ev.ShiftStart)
	dd := pl.days[d]
	if dd == nil {
		dd = &day{groups: make(map[shift.GroupKey]*dayGroup)}
		pl.days[d] = dd
		i, _ := slices.BinarySearch(pl.openDays, d)
		pl.openDays = slices.Insert(pl.openDays, i, d)
	}
	dg := dd.groups[key]
	if dg == nil {
		dg = &dayGroup{industry: ev.Industry, workers: make(map[string]*workerDay)}
		dd.groups[key] = dg
	}
	w := dg.workers[ev.WorkerID]
	if w == nil {
		w = &workerDay{}
		dg.workers[ev.WorkerID] = w
	}
	w.output += ev.Output
	w.hours += ev.ShiftHours
}

// closeDue closes, oldest first, every open day of the plant whose end plus
// the allowed lateness its stream time has reached, then forgets its state
// past retention.
func (p *Partition) closeDue(pl *plant, out *Output) {
	before := shift.Day(floorDiv(pl.streamTime-p.lateness, 86400))
	if before <= pl.closedBefore {
		return
	}
	p.closeBefore(pl, before, out)
}

// closeBefore closes the plant's open days before d and sweeps its state.
func (p *Partition) closeBefore(pl *plant, d shift.Day, out *Output) {
	pl.closedBefore = max(pl.closedBefore, d)
	for len(pl.openDays) > 0 && pl.openDays[0] < d {
		p.closeDay(pl, pl.openDays[0], out)
		delete(pl.days, pl.openDays[0])
		pl.openDays = pl.openDays[1:]
	}
	p.sweep(pl)
}

func (p *Partition) closeDay(pl *plant, d shift.Day, out *Output) {
	dd := pl.days[d]
	end := int64(d+1) * 86400
	keys := make([]shift.GroupKey, 0, len(dd.groups))
	for k := range dd.groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareGroups)
	detected := time.Unix(end+p.lateness, 0).UTC()
	var workers []string
	var rates []float64
	for _, k := range keys {
		dg := dd.groups[k]
		if g := pl.groups[k]; g != nil {
			out.Norms = append(out.Norms, NormRow{Group: k, Day: d, Norm: g.window.NormAt(end)})
		}
		workers = workers[:0]
		for w := range dg.workers {
			workers = append(workers, w)
		}
		slices.Sort(workers)
		rates = rates[:0]
		for _, w := range workers {
			wd := dg.workers[w]
			rates = append(rates, wd.output/wd.hours)
		}
		v := p.pace.Judge(rates)
		if !v.Judged {
			continue
		}
		base := Alert{
			PlantID: k.PlantID, Industry: dg.industry, Role: k.Role, Unit: k.Unit, Day: d,
			NormRate: v.Median, GroupSize: len(rates), BulkShare: v.Bulk, DetectedAt: detected,
		}
		for _, i := range v.Setters {
			a := base
			a.Type, a.WorkerID = PaceSetter, workers[i]
			a.ID = DayAlertID(PaceSetter, k, workers[i], d)
			a.Rate, a.Ratio = rates[i], rates[i]/v.Median
			out.Alerts = append(out.Alerts, a)
		}
		if v.Common {
			a := base
			a.Type = CommonPace
			a.ID = DayAlertID(CommonPace, k, "", d)
			a.Rate, a.Ratio = v.Median, 1
			out.Alerts = append(out.Alerts, a)
		}
	}
}

func compareGroups(a, b shift.GroupKey) int {
	if c := strings.Compare(a.PlantID, b.PlantID); c != 0 {
		return c
	}
	if c := strings.Compare(a.Role, b.Role); c != 0 {
		return c
	}
	return strings.Compare(a.Unit, b.Unit)
}

// sweep drops the plant's window entries, groups and remembered ids that
// no future event can reach: its state stays bounded by the retention span
// of its event time, however many workers pass through.
func (p *Partition) sweep(pl *plant) {
	if pl.streamTime == noTime {
		return
	}
	cut := pl.streamTime - p.retention
	for k, g := range pl.groups {
		g.window.Prune(cut)
		if g.window.Len() == 0 {
			delete(pl.groups, k)
		}
	}
	for h, t := range pl.seen {
		if t < cut {
			delete(pl.seen, h)
		}
	}
	if len(p.legacy) > 0 {
		p.sweepLegacy()
	}
	// a plant's id, industry, roles and units: a few strings each
	if len(p.strings) > 16*len(p.plants)+1024 {
		clear(p.strings)
	}
}

// sweepLegacy drops the ids of a version-1 snapshot that every plant has
// left behind: their plants are unknown, so the oldest plant clock decides.
func (p *Partition) sweepLegacy() {
	cut := int64(math.MaxInt64)
	for _, pl := range p.plants {
		if pl.streamTime != noTime {
			cut = min(cut, pl.streamTime-p.retention)
		}
	}
	for h, t := range p.legacy {
		if t < cut {
			delete(p.legacy, h)
		}
	}
}

// The deadlines of a plant's silence, in log time: after IdleClose its open
// days close; after Retention its state is dropped (its ids forgotten, its
// clock kept); after twice Retention it is dropped altogether. A plant
// whose records carry no timestamps has none.
func (p *Partition) deadline(pl *plant) int64 {
	switch {
	case pl.lastLog == noTime:
		return noTime
	case len(pl.openDays) > 0:
		return pl.lastLog + p.idle
	case len(pl.groups) > 0 || len(pl.seen) > 0:
		return pl.lastLog + p.retention
	}
	return pl.lastLog + 2*p.retention
}

// schedule keeps due at the earliest deadline after a plant's changed.
func (p *Partition) schedule(pl *plant) {
	if d := p.deadline(pl); d != noTime && (p.due == noTime || d < p.due) {
		p.due = d
	}
}

// sweepIdle applies every deadline the log time has reached, plants in
// order of id so that the output does not depend on map order, and
// computes the next one. A plant may pass several stages at once.
func (p *Partition) sweepIdle(out *Output) {
	ids := make([]string, 0, len(p.plants))
	for id, pl := range p.plants {
		if d := p.deadline(pl); d != noTime && d <= p.logTime {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		pl := p.plants[id]
	stages:
		for d := p.deadline(pl); d != noTime && d <= p.logTime; d = p.deadline(pl) {
			switch {
			case len(pl.openDays) > 0:
				p.closeBefore(pl, pl.openDays[len(pl.openDays)-1]+1, out)
			case len(pl.groups) > 0 || len(pl.seen) > 0:
				clear(pl.groups)
				clear(pl.seen)
				pl.forgotten = pl.streamTime
			default:
				delete(p.plants, id)
				break stages
			}
		}
	}
	p.due = noTime
	for _, pl := range p.plants {
		p.schedule(pl)
	}
}

// intern shares the strings that repeat across events, so that a window of
// millions of shifts holds each plant, role and unit once.
func (p *Partition) intern(s string) string {
	if v, ok := p.strings[s]; ok {
		return v
	}
	p.strings[s] = s
	return s
}

func (p *Partition) internEvent(ev *shift.Event) {
	ev.PlantID = p.intern(ev.PlantID)
	ev.Industry = p.intern(ev.Industry)
	ev.Role = p.intern(ev.Role)
	ev.Unit = p.intern(ev.Unit)
}

// Stats describes the state held, for metrics and benchmarks.
type Stats struct {
	Plants        int
	Groups        int
	WindowShifts  int
	OpenDays      int
	RememberedIDs int
}

// Stats counts the state held.
func (p *Partition) Stats() Stats {
	s := Stats{Plants: len(p.plants), RememberedIDs: len(p.legacy)}
	for _, pl := range p.plants {
		s.Groups += len(pl.groups)
		s.OpenDays += len(pl.openDays)
		s.RememberedIDs += len(pl.seen)
		for _, g := range pl.groups {
			s.WindowShifts += g.window.Len()
		}
	}
	return s
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// hashID64 is FNV-1a: a fixed, process-independent hash, so that duplicate
// detection does not depend on which process rebuilt the state.
func hashID64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
