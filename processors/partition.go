package processors

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/stakhanov/stakhanov/processors/norms"
	"github.com/stakhanov/stakhanov/processors/pace"
	"github.com/stakhanov/stakhanov/processors/records"
	"github.com/stakhanov/stakhanov/shift"
)

// ErrDuplicate is returned by Process for a repeated event_id.
var ErrDuplicate = errors.New("duplicate event_id")

const noTime = math.MinInt64

// Partition is the processor of one input partition. It is not safe for
// concurrent use.
type Partition struct {
	opts      Options
	partition int32
	span      int64 // Window in seconds
	lateness  int64
	retention int64
	records   records.Rule
	pace      pace.Rule

	streamTime int64 // Unix seconds; noTime before the first shift
	groups     map[shift.GroupKey]*group
	days       map[shift.Day]*day
	openDays   []shift.Day      // ascending
	seen       map[uint64]int64 // event_id hash → shift start
	strings    map[string]string
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

// NewPartition makes the processor of one partition. opts must be valid.
func NewPartition(opts Options, partition int32) (*Partition, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Partition{
		opts:       opts,
		partition:  partition,
		span:       int64(opts.Window / time.Second),
		lateness:   int64(opts.AllowedLateness / time.Second),
		retention:  int64(opts.Retention() / time.Second),
		records:    opts.RecordRule(),
		pace:       opts.PaceRule(),
		streamTime: noTime,
		groups:     make(map[shift.GroupKey]*group),
		days:       make(map[shift.Day]*day),
		seen:       make(map[uint64]int64),
		strings:    make(map[string]string),
	}, nil
}

// StreamTime is the largest shift start accepted; zero before the first.
func (p *Partition) StreamTime() time.Time {
	if p.streamTime == noTime {
		return time.Time{}
	}
	return time.Unix(p.streamTime, 0).UTC()
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
// and norms it causes, to out. A repeated event_id returns ErrDuplicate and
// appends nothing.
func (p *Partition) Process(ev *shift.Event, in Input, out *Output) error {
	offset := in.Offset
	start := ev.ShiftStart.Unix()
	h := hashID64(ev.EventID)
	if p.isDuplicate(h) {
		out.Duplicates++
		return ErrDuplicate
	}
	p.intern(ev)
	s := Shift{
		Event:      *ev,
		Partition:  p.partition,
		Offset:     offset,
		Rate:       ev.Rate(),
		CrewRate:   ev.CrewRate(),
		ScrapShare: ev.ScrapShare(),
		Late:       p.isLate(start),
		// isDuplicate forgets exactly these
		Unchecked: p.streamTime != noTime && start < p.streamTime-p.retention,
	}
	key := ev.Group()
	g := p.groups[key]
	if g == nil {
		if s.Late {
			// no state to judge a late shift of an unknown group by
			s.Norm, s.CrewNorm = norms.Empty, math.NaN()
			s.Ratio, s.CrewRatio = math.NaN(), math.NaN()
			p.seen[h] = start
			out.Shifts = append(out.Shifts, s)
			return nil
		}
		g = &group{window: norms.NewWindow(p.span, p.opts.CommonPaceTolerance)}
		p.groups[key] = g
	}
	if s.Late {
		// a late shift may reach back past what a restored processor holds:
		// judge it only by state within retention, as both would
		g.window.Prune(p.streamTime - p.retention)
	}
	s.Norm, s.CrewNorm = g.window.Norm(start)
	s.Ratio = ratio(s.Rate, s.Norm.Median)
	s.CrewRatio = ratio(s.CrewRate, s.CrewNorm)
	p.seen[h] = start
	out.Shifts = append(out.Shifts, s)
	if s.Late {
		return nil
	}

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
			GroupSize: s.Norm.Count, BulkShare: s.Norm.Bulk,
			DetectedAt: ev.ShiftStart.Add(time.Duration(ev.ShiftHours * float64(time.Hour))).UTC(),
		})
	}
	p.add(key, g, ev, start)
	if start > p.streamTime {
		p.streamTime = start
		p.closeDue(out)
	}
	return nil
}

func ratio(rate, norm float64) float64 {
	if !(norm > 0) {
		return math.NaN()
	}
	return rate / norm
}

// isLate: the shift's day has closed, or it starts before the window of the
// partition's stream time.
func (p *Partition) isLate(start int64) bool {
	if p.streamTime == noTime {
		return false
	}
	dayEnd := (floorDiv(start, 86400) + 1) * 86400
	return dayEnd+p.lateness <= p.streamTime || start < p.streamTime-p.span
}

func (p *Partition) isDuplicate(h uint64) bool {
	t, ok := p.seen[h]
	// an id older than the retention span is forgotten, whether or not the
	// sweep has removed it yet: the answer must not depend on sweep timing
	return ok && (p.streamTime == noTime || t >= p.streamTime-p.retention)
}

// add puts an on-time shift into its group's window and its day.
func (p *Partition) add(key shift.GroupKey, g *group, ev *shift.Event, start int64) {
	g.window.Insert(start, ev.Rate(), ev.CrewRate())
	d := shift.DayOf(ev.ShiftStart)
	dd := p.days[d]
	if dd == nil {
		dd = &day{groups: make(map[shift.GroupKey]*dayGroup)}
		p.days[d] = dd
		i, _ := slices.BinarySearch(p.openDays, d)
		p.openDays = slices.Insert(p.openDays, i, d)
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

// closeDue closes, oldest first, every open day whose end plus the allowed
// lateness stream time has reached, then forgets state past retention.
func (p *Partition) closeDue(out *Output) {
	closed := false
	for len(p.openDays) > 0 {
		d := p.openDays[0]
		end := int64(d+1) * 86400
		if end+p.lateness > p.streamTime {
			break
		}
		p.closeDay(d, end, out)
		p.openDays = p.openDays[1:]
		delete(p.days, d)
		closed = true
	}
	if closed {
		p.sweep()
	}
}

func (p *Partition) closeDay(d shift.Day, end int64, out *Output) {
	dd := p.days[d]
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
		if g := p.groups[k]; g != nil {
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

// sweep drops window entries, groups and remembered ids that no future
// event can reach: state stays bounded by the retention span of event time,
// however many distinct workers or plants pass through.
func (p *Partition) sweep() {
	cut := p.streamTime - p.retention
	for k, g := range p.groups {
		g.window.Prune(cut)
		if g.window.Len() == 0 {
			delete(p.groups, k)
		}
	}
	for h, t := range p.seen {
		if t < cut {
			delete(p.seen, h)
		}
	}
	if len(p.strings) > 4*len(p.groups)+1024 {
		clear(p.strings)
	}
}

// intern shares the strings that repeat across events, so that a window of
// millions of shifts holds each plant, role and unit once.
func (p *Partition) intern(ev *shift.Event) {
	in := func(s *string) {
		if v, ok := p.strings[*s]; ok {
			*s = v
			return
		}
		p.strings[*s] = *s
	}
	in(&ev.PlantID)
	in(&ev.Industry)
	in(&ev.Role)
	in(&ev.Unit)
}

// Stats describes the state held, for metrics and benchmarks.
type Stats struct {
	Groups        int
	WindowShifts  int
	OpenDays      int
	RememberedIDs int
}

// Stats counts the state held.
func (p *Partition) Stats() Stats {
	s := Stats{Groups: len(p.groups), OpenDays: len(p.openDays), RememberedIDs: len(p.seen)}
	for _, g := range p.groups {
		s.WindowShifts += g.window.Len()
	}
	return s
}

// Restore rebuilds state from stored shifts: streamTime is the partition's
// stored stream time, and replay must call its argument for each stored shift
// that started at or after streamTime − Retention, in offset order. It is
// only valid on a new Partition.
func (p *Partition) Restore(streamTime time.Time, replay func(add func(ev *shift.Event, late bool) error) error) error {
	if p.streamTime != noTime || len(p.seen) > 0 {
		return fmt.Errorf("processors: restore into a partition that has state")
	}
	if streamTime.IsZero() {
		return nil
	}
	p.streamTime = streamTime.Unix()
	cut := p.streamTime - p.retention
	return replay(func(ev *shift.Event, late bool) error {
		start := ev.ShiftStart.Unix()
		if start < cut {
			return nil
		}
		p.seen[hashID64(ev.EventID)] = start
		if late {
			return nil
		}
		p.intern(ev)
		key := ev.Group()
		g := p.groups[key]
		if g == nil {
			g = &group{window: norms.NewWindow(p.span, p.opts.CommonPaceTolerance)}
			p.groups[key] = g
		}
		d := shift.DayOf(ev.ShiftStart)
		if int64(d+1)*86400+p.lateness <= p.streamTime {
			// its day has closed: window only
			g.window.Insert(start, ev.Rate(), ev.CrewRate())
			return nil
		}
		p.add(key, g, ev, start)
		return nil
	})
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
