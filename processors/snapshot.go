package processors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/stakhanov/stakhanov/processors/norms"
	"github.com/stakhanov/stakhanov/shift"
)

// The errors of LoadSnapshot. Each failure wraps exactly one of them.
var (
	// ErrSnapshotCorrupt: not a snapshot, truncated, failing its checksum,
	// or holding state no processor could have.
	ErrSnapshotCorrupt = errors.New("processors: corrupt partition snapshot")
	// ErrSnapshotVersion: a snapshot format this build does not read.
	ErrSnapshotVersion = errors.New("processors: unknown partition snapshot version")
	// ErrSnapshotOptions: a snapshot of another partition; the message
	// says which.
	ErrSnapshotOptions = errors.New("processors: partition snapshot of another partition")
)

// A snapshot of version 2 is, in order (varint and uvarint as in
// encoding/binary; u64, u32 and floats fixed little-endian, floats as their
// exact IEEE 754 bits):
//
//	magic      "STKP"
//	version    uvarint, 2
//	options    uvarint n, then n × (key, value): every option of Params,
//	           key as in the configuration file, value fmt.Sprint of it
//	           (exact for durations, integers and floats), each as uvarint
//	           length + bytes
//	partition  varint
//	streamTime varint: the largest stream time of any plant (math.MinInt64
//	           before the first shift); what a status report reads
//	logTime    varint: the largest record timestamp (math.MinInt64: none)
//	strings    uvarint n, then n distinct strings ascending, front-coded:
//	           uvarint bytes shared with the previous, uvarint length of the
//	           rest, the rest. Every plant, role, unit, industry and worker
//	           below is an index into this table (uvarint).
//	plants     uvarint n, then n plants ascending by id:
//	           id; uvarint flags (1 stream time, 2 last log time, 4
//	           forgotten, 8 closed before) and, for each flag set in that
//	           order, a varint: the plant's stream time and forgotten time
//	           from the header's streamTime, its last log time from the
//	           header's logTime, the first day not closed as a day number;
//	           groups: uvarint n, then n ascending by (role, unit): role,
//	           unit; uvarint entries; the window's entries oldest first:
//	           start (the first as varint from the plant's stream time, the
//	           others as uvarint from the previous), rate float, crew code
//	           (uvarint 0: crew rate float follows; 1: crew rate = rate;
//	           k ≥ 2: crew rate = rate / k, exactly);
//	           open days: uvarint n, then n days ascending (the first as
//	           varint, the others as uvarint gap − 1): uvarint groups, then
//	           each group ascending: role, unit, industry; uvarint workers,
//	           then each worker ascending (uvarint index gap − 1 from the
//	           previous, the first from −1), output float, hours float;
//	           seen: uvarint n ids, then runs of ids of one shift start,
//	           starts ascending (the first as varint from the plant's stream
//	           time, the others as uvarint gap − 1): uvarint ids in the run,
//	           then each id's hash as u64, ascending
//	legacy     ids a version-1 snapshot remembered without their plants, as
//	           a plant's seen, the first start from the header's streamTime
//	checksum   u32 CRC-32C (Castagnoli) of every byte before it
//
// Every map is written in sorted order, so one state has one snapshot. A
// new version must bump snapshotVersion and keep a reader of the previous
// one that upgrades its state (snapshot_v1.go reads version 1).
const (
	snapshotMagic   = "STKP"
	snapshotVersion = 2

	// maxSnapshotTime bounds every time and day a snapshot may hold, in
	// seconds from the epoch either way (about 35,000 years), so that no
	// arithmetic on a loaded state can overflow. The decoder admits
	// 1900–2100.
	maxSnapshotTime = 1 << 40
	maxSnapshotDay  = maxSnapshotTime / 86400
	// maxCrewDivisor is the largest k of the crew code.
	maxCrewDivisor = 1 << 20
)

const (
	plantHasStreamTime = 1 << iota
	plantHasLastLog
	plantHasForgotten
	plantHasClosedBefore
	plantFlags = 1<<iota - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendSnapshot appends the partition's whole state, in a versioned binary
// format, to dst. The same state gives the same bytes: every map is written
// in sorted order. LoadSnapshot on a new Partition made with the same Options
// and partition number rebuilds state that answers every later event exactly
// as p would, and whose snapshot is the same bytes. It does not change p.
func (p *Partition) AppendSnapshot(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, snapshotMagic...)
	dst = binary.AppendUvarint(dst, snapshotVersion)
	opts := optionValues(&p.opts)
	dst = binary.AppendUvarint(dst, uint64(len(opts)))
	for _, o := range opts {
		dst = appendString(dst, o.name)
		dst = appendString(dst, o.value)
	}
	dst = binary.AppendVarint(dst, int64(p.partition))
	st := p.maxStreamTime()
	dst = binary.AppendVarint(dst, st)
	dst = binary.AppendVarint(dst, p.logTime)

	// the string table
	index := make(map[string]uint64)
	for id, pl := range p.plants {
		index[id] = 0
		for k := range pl.groups {
			index[k.Role], index[k.Unit] = 0, 0
		}
		for _, dd := range pl.days {
			for k, dg := range dd.groups {
				index[k.Role], index[k.Unit], index[dg.industry] = 0, 0, 0
				for w := range dg.workers {
					index[w] = 0
				}
			}
		}
	}
	table := slices.Sorted(maps.Keys(index))
	dst = binary.AppendUvarint(dst, uint64(len(table)))
	prev := ""
	for i, s := range table {
		index[s] = uint64(i)
		n := 0
		for n < len(prev) && n < len(s) && prev[n] == s[n] {
			n++
		}
		dst = binary.AppendUvarint(dst, uint64(n))
		dst = appendString(dst, s[n:])
		prev = s
	}
	appendKey := func(dst []byte, k shift.GroupKey) []byte {
		dst = binary.AppendUvarint(dst, index[k.Role])
		return binary.AppendUvarint(dst, index[k.Unit])
	}

	ids := slices.Sorted(maps.Keys(p.plants))
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	var workers []string
	for _, id := range ids {
		pl := p.plants[id]
		dst = binary.AppendUvarint(dst, index[id])
		flags := uint64(0)
		for i, has := range []bool{pl.streamTime != noTime, pl.lastLog != noTime, pl.forgotten != noTime, pl.closedBefore != minDay} {
			if has {
				flags |= 1 << i
			}
		}
		dst = binary.AppendUvarint(dst, flags)
		if pl.streamTime != noTime {
			dst = binary.AppendVarint(dst, pl.streamTime-st)
		}
		if pl.lastLog != noTime {
			dst = binary.AppendVarint(dst, pl.lastLog-p.logTime)
		}
		if pl.forgotten != noTime {
			dst = binary.AppendVarint(dst, pl.forgotten-st)
		}
		if pl.closedBefore != minDay {
			dst = binary.AppendVarint(dst, int64(pl.closedBefore))
		}

		// groups and their windows
		keys := sortedKeys(pl.groups)
		dst = binary.AppendUvarint(dst, uint64(len(keys)))
		for _, k := range keys {
			dst = appendKey(dst, k)
			w := pl.groups[k].window
			dst = binary.AppendUvarint(dst, uint64(w.Len()))
			first, last := true, int64(0)
			w.Entries(func(t int64, rate, crew float64) bool {
				if first {
					dst = binary.AppendVarint(dst, t-pl.streamTime)
					first = false
				} else {
					dst = binary.AppendUvarint(dst, uint64(t-last))
				}
				last = t
				dst = appendFloat(dst, rate)
				dst = appendCrew(dst, rate, crew)
				return true
			})
		}

		// open days
		dst = binary.AppendUvarint(dst, uint64(len(pl.openDays)))
		for i, d := range pl.openDays {
			if i == 0 {
				dst = binary.AppendVarint(dst, int64(d))
			} else {
				dst = binary.AppendUvarint(dst, uint64(int64(d)-int64(pl.openDays[i-1])-1))
			}
			dd := pl.days[d]
			keys := sortedKeys(dd.groups)
			dst = binary.AppendUvarint(dst, uint64(len(keys)))
			for _, k := range keys {
				dg := dd.groups[k]
				dst = appendKey(dst, k)
				dst = binary.AppendUvarint(dst, index[dg.industry])
				workers = append(workers[:0], slices.Collect(maps.Keys(dg.workers))...)
				slices.Sort(workers)
				dst = binary.AppendUvarint(dst, uint64(len(workers)))
				next := uint64(0)
				for _, w := range workers {
					i := index[w]
					dst = binary.AppendUvarint(dst, i-next)
					next = i + 1
					wd := dg.workers[w]
					dst = appendFloat(dst, wd.output)
					dst = appendFloat(dst, wd.hours)
				}
			}
		}
		dst = appendIDRuns(dst, pl.seen, pl.streamTime)
	}
	dst = appendIDRuns(dst, p.legacy, st)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// appendIDRuns writes remembered ids in runs of one start, the first start
// from base.
func appendIDRuns(dst []byte, seen map[uint64]int64, base int64) []byte {
	ids := make([]idAt, 0, len(seen))
	for h, t := range seen {
		ids = append(ids, idAt{t, h})
	}
	ids = sortIDs(ids)
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for i := 0; i < len(ids); {
		j := i + 1
		for j < len(ids) && ids[j].t == ids[i].t {
			j++
		}
		if i == 0 {
			dst = binary.AppendVarint(dst, ids[i].t-base)
		} else {
			dst = binary.AppendUvarint(dst, uint64(ids[i].t-ids[i-1].t-1))
		}
		dst = binary.AppendUvarint(dst, uint64(j-i))
		for ; i < j; i++ {
			dst = binary.LittleEndian.AppendUint64(dst, ids[i].h)
		}
	}
	return dst
}

// LoadSnapshot replaces the state of a new Partition (made by NewPartition)
// by the snapshot's, of this version or an earlier one (whose state it
// upgrades). Options that differ from the snapshot's apply from the next
// event on; changed lists them, as "key: snapshot value → value here", for
// the caller to log. An option the snapshot lacks (added since) is simply
// this partition's. A snapshot of another partition number is refused with
// an error wrapping ErrSnapshotOptions; a corrupt or truncated one with
// ErrSnapshotCorrupt; an unknown version with ErrSnapshotVersion. On error p
// is unchanged. Never panics on any input.
func (p *Partition) LoadSnapshot(b []byte) (changed []string, err error) {
	if p.maxStreamTime() != noTime || len(p.plants) > 0 || p.logTime != noTime {
		return nil, fmt.Errorf("processors: load a snapshot into a partition that has state")
	}
	r, h, err := readSnapshotHeader(b)
	if err != nil {
		return nil, err
	}
	if h.partition != int64(p.partition) {
		return nil, fmt.Errorf("%w: partition %d in snapshot, %d here", ErrSnapshotOptions, h.partition, p.partition)
	}
	changed = compareOptions(h.options, h.order, &p.opts)
	var st *loadedState
	switch h.version {
	case 1:
		st = p.readStateV1(r, h)
	default:
		st = p.readStateV2(r, h)
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	p.logTime, p.plants, p.legacy, p.strings = st.logTime, st.plants, st.legacy, st.strings
	p.due = noTime
	for _, pl := range p.plants {
		p.schedule(pl)
	}
	return changed, nil
}

// compareOptions lists how opts differ from a snapshot's options.
func compareOptions(theirs map[string]string, order []string, opts *Options) []string {
	var changed []string
	mine := map[string]bool{}
	for _, o := range optionValues(opts) {
		mine[o.name] = true
		if v, ok := theirs[o.name]; ok && v != o.value {
			changed = append(changed, fmt.Sprintf("%s: %s in snapshot → %s", o.name, v, o.value))
		}
	}
	for _, name := range order {
		if !mine[name] {
			changed = append(changed, fmt.Sprintf("%s: %s in snapshot, not an option here (ignored)", name, theirs[name]))
		}
	}
	return changed
}

// loadedState is a snapshot's state before it replaces a partition's.
type loadedState struct {
	logTime int64
	plants  map[string]*plant
	legacy  map[uint64]int64
	strings map[string]string
}

func (p *Partition) readStateV2(r *snapReader, h snapshotHeader) *loadedState {
	st := &loadedState{logTime: h.logTime, plants: map[string]*plant{}, strings: map[string]string{}}
	if h.streamTime != noTime {
		r.checkTime(h.streamTime, "stream time")
	}
	if h.logTime != noTime {
		r.checkTime(h.logTime, "log time")
	}
	table := readStringTable(r)
	refs := &stringRefs{r: r, table: table, interned: st.strings}
	str := refs.str
	np := r.count(3, "plants")
	prevID := ""
	for i := 0; i < np && r.err == nil; i++ {
		pl := newPlant(str("plant"))
		if pl.id == "" || i > 0 && pl.id <= prevID {
			r.fail("plants out of order")
		}
		prevID = pl.id
		flags := r.uvarint("plant flags")
		if flags > plantFlags {
			r.fail("plant flags")
		}
		if flags&plantHasStreamTime != 0 {
			pl.streamTime = h.streamTime + r.varint("plant stream time")
			r.checkTime(pl.streamTime, "plant stream time")
			if h.streamTime == noTime || pl.streamTime > h.streamTime {
				r.fail("plant stream time beyond the partition's")
			}
		}
		if flags&plantHasLastLog != 0 {
			pl.lastLog = h.logTime + r.varint("plant log time")
			r.checkTime(pl.lastLog, "plant log time")
			if h.logTime == noTime || pl.lastLog > h.logTime {
				r.fail("plant log time beyond the partition's")
			}
		}
		if flags&plantHasForgotten != 0 {
			pl.forgotten = h.streamTime + r.varint("plant forgotten")
			r.checkTime(pl.forgotten, "plant forgotten")
		}
		if flags&plantHasClosedBefore != 0 {
			pl.closedBefore = shift.Day(r.varint("plant closed days"))
			if pl.closedBefore < -maxSnapshotDay || pl.closedBefore > maxSnapshotDay {
				r.fail("plant closed days out of range")
			}
		}
		key := func(first bool, last *shift.GroupKey) shift.GroupKey {
			k := shift.GroupKey{PlantID: pl.id, Role: str("role"), Unit: str("unit")}
			r.inOrder(first, last, k)
			return k
		}
		var last shift.GroupKey
		ng := r.count(3, "groups")
		for j := 0; j < ng && r.err == nil; j++ {
			k := key(j == 0, &last)
			pl.groups[k] = &group{window: readWindow(r, pl.streamTime, p.span, p.opts.CommonPaceTolerance)}
		}
		nd := r.count(2, "open days")
		var d int64
		for j := 0; j < nd && r.err == nil; j++ {
			d = readDay(r, j == 0, d)
			n := r.count(4, "day groups")
			dd := &day{groups: make(map[shift.GroupKey]*dayGroup, n)}
			for k := 0; k < n && r.err == nil; k++ {
				gk := key(k == 0, &last)
				industry := str("industry")
				dd.groups[gk] = &dayGroup{industry: industry, workers: readWorkers(r, table)}
			}
			pl.openDays = append(pl.openDays, shift.Day(d))
			pl.days[shift.Day(d)] = dd
		}
		pl.seen = readIDRuns(r, pl.streamTime)
		if r.err == nil && pl.streamTime == noTime && (len(pl.groups) > 0 || nd > 0 || len(pl.seen) > 0) {
			r.fail("state of a plant without a stream time")
		}
		if r.err == nil && nd > 0 && pl.openDays[0] < pl.closedBefore {
			r.fail("an open day among the closed ones")
		}
		st.plants[pl.id] = pl
	}
	st.legacy = readIDRuns(r, h.streamTime)
	if len(st.legacy) == 0 {
		st.legacy = nil
	}
	return st
}

func readStringTable(r *snapReader) []string {
	table := make([]string, r.count(2, "strings"))
	var buf []byte
	for i := range table {
		shared := r.uvarint("string")
		rest := r.bytes("string")
		if r.err != nil {
			return nil
		}
		if shared > uint64(len(buf)) {
			r.fail("string table prefix")
			return nil
		}
		buf = append(buf[:shared], rest...)
		table[i] = string(buf)
		if i > 0 && table[i] <= table[i-1] {
			r.fail("string table out of order")
			return nil
		}
	}
	return table
}

// readWindow reads a window's entries, the first start from base.
func readWindow(r *snapReader, base, span int64, tolerance float64) *norms.Window {
	w := norms.NewWindow(span, tolerance)
	ne := r.count(10, "window entries")
	var t int64
	for j := 0; j < ne && r.err == nil; j++ {
		if j == 0 {
			t = base + r.varint("window start")
		} else if d := r.uvarint("window start"); d <= 2*maxSnapshotTime {
			t += int64(d)
		} else {
			r.fail("window start")
		}
		r.checkTime(t, "window start")
		rate := r.float("rate")
		var crew float64
		switch c := r.uvarint("crew rate"); c {
		case 0:
			crew = r.float("crew rate")
		case 1:
			crew = rate
		default:
			crew = rate / float64(c)
		}
		if math.IsNaN(rate) || math.IsNaN(crew) {
			r.fail("rate not a number")
		}
		if r.err == nil {
			w.Insert(t, rate, crew)
		}
	}
	return w
}

// readDay reads an open day: the first as a day number, the next as the gap
// from prev less one.
func readDay(r *snapReader, first bool, prev int64) int64 {
	d := prev
	if first {
		d = r.varint("day")
	} else if gap := r.uvarint("day"); gap < 2*maxSnapshotDay {
		d += int64(gap) + 1
	} else {
		r.fail("day")
	}
	if d < -maxSnapshotDay || d > maxSnapshotDay {
		r.fail("day out of range")
	}
	return d
}

func readWorkers(r *snapReader, table []string) map[string]*workerDay {
	nw := r.count(17, "workers")
	workers := make(map[string]*workerDay, nw)
	next := uint64(0)
	for range nw {
		gap := r.uvarint("worker")
		if gap >= uint64(len(table)) || next+gap >= uint64(len(table)) {
			r.fail("worker index")
			break
		}
		w := table[next+gap]
		next += gap + 1
		workers[w] = &workerDay{output: r.float("output"), hours: r.float("hours")}
	}
	return workers
}

// readIDRuns reads remembered ids, the first run's start from base.
func readIDRuns(r *snapReader, base int64) map[uint64]int64 {
	nids := r.count(8, "remembered ids")
	seen := make(map[uint64]int64, nids)
	if nids > 0 && base == noTime {
		r.fail("ids without a stream time")
		return seen
	}
	var t int64
	for got := 0; got < nids && r.err == nil; {
		if got == 0 {
			t = base + r.varint("id start")
		} else if gap := r.uvarint("id start"); gap < 2*maxSnapshotTime {
			t += int64(gap) + 1
		} else {
			r.fail("id start")
		}
		r.checkTime(t, "id start")
		run := r.count(8, "id run")
		if run == 0 || run > nids-got {
			r.fail("id run length")
			break
		}
		var prev uint64
		for k := range run {
			h := r.u64("id")
			if k > 0 && h <= prev {
				r.fail("ids out of order")
			}
			prev = h
			seen[h] = t
		}
		got += run
	}
	if r.err == nil && len(seen) != nids {
		r.fail("an id remembered twice")
	}
	return seen
}

type optionValue struct{ name, value string }

// optionValues lists every option of Params by key with its value as
// fmt.Sprint formats it: exact for the durations (Duration.String),
// integers and floats Options holds.
func optionValues(o *Options) []optionValue {
	params := o.Params()
	out := make([]optionValue, len(params))
	for i, p := range params {
		out[i] = optionValue{p.Key, fmt.Sprint(reflect.ValueOf(p.Value).Elem().Interface())}
	}
	return out
}

// snapshotHeader is what a snapshot says before its state.
type snapshotHeader struct {
	version    uint64
	options    map[string]string
	order      []string // of options, as written
	partition  int64
	streamTime int64
	logTime    int64 // noTime in version 1
}

// readSnapshotHeader checks a snapshot's magic, version and checksum and
// reads its header; r is left at the state that follows.
func readSnapshotHeader(b []byte) (*snapReader, snapshotHeader, error) {
	h := snapshotHeader{logTime: noTime}
	if len(b) < len(snapshotMagic) || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, h, corrupt("not a partition snapshot")
	}
	v, n := binary.Uvarint(b[len(snapshotMagic):])
	if n <= 0 {
		return nil, h, corrupt("no version")
	}
	if v < 1 || v > snapshotVersion {
		return nil, h, fmt.Errorf("%w: version %d, this build reads versions 1 to %d", ErrSnapshotVersion, v, snapshotVersion)
	}
	h.version = v
	body := b[len(snapshotMagic)+n:]
	if len(body) < 4 {
		return nil, h, corrupt("truncated")
	}
	if crc32.Checksum(b[:len(b)-4], castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, h, corrupt("checksum mismatch")
	}
	r := &snapReader{b: body[:len(body)-4]}
	nopts := r.count(2, "options")
	h.options = make(map[string]string, nopts)
	for range nopts {
		name, value := r.string("option name"), r.string("option value")
		if _, dup := h.options[name]; dup {
			r.fail("option " + name + " repeated")
		}
		if v == 1 {
			name = v1OptionKey(name)
		}
		h.options[name] = value
		h.order = append(h.order, name)
	}
	h.partition = r.varint("partition")
	h.streamTime = r.varint("stream time")
	if v >= 2 {
		h.logTime = r.varint("log time")
	}
	if r.err != nil {
		return nil, h, r.err
	}
	return r, h, nil
}

// SnapshotStreamTime reads the stream time a snapshot was taken at — the
// largest of its plants' — without loading it: what a status report shows
// of a partition's checkpoint. ok is false for a snapshot taken before any
// shift.
func SnapshotStreamTime(b []byte) (t time.Time, ok bool, err error) {
	_, h, err := readSnapshotHeader(b)
	if err != nil || h.streamTime == noTime {
		return time.Time{}, false, err
	}
	return time.Unix(h.streamTime, 0).UTC(), true, nil
}

// v1OptionKey maps a version-1 option name, an Options field's Go name, to
// its key: the field whose address a Param holds.
func v1OptionKey(name string) string {
	var o Options
	f := reflect.ValueOf(&o).Elem().FieldByName(name)
	if !f.IsValid() {
		return name
	}
	for _, p := range o.Params() {
		if reflect.ValueOf(p.Value).Pointer() == f.Addr().Pointer() {
			return p.Key
		}
	}
	return name
}
