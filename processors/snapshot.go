package processors

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"reflect"
	"slices"
	"strings"
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
	// ErrSnapshotOptions: a snapshot taken under other Options, or of
	// another partition; the message names what differs.
	ErrSnapshotOptions = errors.New("processors: partition snapshot taken under other options")
)

// A snapshot is, in order (varint and uvarint as in encoding/binary; u64,
// u32 and floats fixed little-endian, floats as their exact IEEE 754 bits):
//
//	magic      "STKP"
//	version    uvarint, snapshotVersion
//	options    uvarint n, then n × (name, value): every field of Options,
//	           name its Go name and value fmt.Sprint of it (exact for
//	           durations, integers and floats), each as uvarint length + bytes
//	partition  varint
//	streamTime varint (math.MinInt64 before the first shift)
//	strings    uvarint n, then n distinct strings ascending, front-coded:
//	           uvarint bytes shared with the previous, uvarint length of the
//	           rest, the rest. Every plant, role, unit, industry and worker
//	           below is an index into this table (uvarint).
//	groups     uvarint n, then n groups ascending by (plant, role, unit):
//	           plant, role, unit; uvarint entries; the window's entries
//	           oldest first: start (the first as varint from streamTime, the
//	           others as uvarint from the previous), rate float, crew code
//	           (uvarint 0: crew rate float follows; 1: crew rate = rate;
//	           k ≥ 2: crew rate = rate / k, exactly)
//	open days  uvarint n, then n days ascending (the first as varint, the
//	           others as uvarint gap − 1): uvarint groups, then each group
//	           ascending: plant, role, unit, industry; uvarint workers, then
//	           each worker ascending (uvarint index gap − 1 from the
//	           previous, the first from −1), output float, hours float
//	seen       uvarint n ids, then runs of ids of one shift start, starts
//	           ascending (the first as varint from streamTime, the others as
//	           uvarint gap − 1): uvarint ids in the run, then each id's hash
//	           as u64, ascending
//	checksum   u32 CRC-32C (Castagnoli) of every byte before it
//
// Every map is written in sorted order, so one state has one snapshot.
// A new version must bump snapshotVersion.
const (
	snapshotMagic   = "STKP"
	snapshotVersion = 1

	// maxSnapshotTime bounds every time and day a snapshot may hold, in
	// seconds from the epoch either way (about 35,000 years), so that no
	// arithmetic on a loaded state can overflow. The decoder admits
	// 1900–2100.
	maxSnapshotTime = 1 << 40
	maxSnapshotDay  = maxSnapshotTime / 86400
	// maxCrewDivisor is the largest k of the crew code.
	maxCrewDivisor = 1 << 20
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
	dst = binary.AppendVarint(dst, p.streamTime)

	// the string table
	index := make(map[string]uint64)
	for k := range p.groups {
		index[k.PlantID], index[k.Role], index[k.Unit] = 0, 0, 0
	}
	for _, dd := range p.days {
		for k, dg := range dd.groups {
			index[k.PlantID], index[k.Role], index[k.Unit], index[dg.industry] = 0, 0, 0, 0
			for w := range dg.workers {
				index[w] = 0
			}
		}
	}
	table := make([]string, 0, len(index))
	for s := range index {
		table = append(table, s)
	}
	slices.Sort(table)
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
		dst = binary.AppendUvarint(dst, index[k.PlantID])
		dst = binary.AppendUvarint(dst, index[k.Role])
		return binary.AppendUvarint(dst, index[k.Unit])
	}

	// groups and their windows
	keys := sortedKeys(p.groups)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = appendKey(dst, k)
		w := p.groups[k].window
		dst = binary.AppendUvarint(dst, uint64(w.Len()))
		first, last := true, int64(0)
		w.Entries(func(t int64, rate, crew float64) bool {
			if first {
				dst = binary.AppendVarint(dst, t-p.streamTime)
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
	dst = binary.AppendUvarint(dst, uint64(len(p.openDays)))
	var workers []string
	for i, d := range p.openDays {
		if i == 0 {
			dst = binary.AppendVarint(dst, int64(d))
		} else {
			dst = binary.AppendUvarint(dst, uint64(int64(d)-int64(p.openDays[i-1])-1))
		}
		dd := p.days[d]
		keys := sortedKeys(dd.groups)
		dst = binary.AppendUvarint(dst, uint64(len(keys)))
		for _, k := range keys {
			dg := dd.groups[k]
			dst = appendKey(dst, k)
			dst = binary.AppendUvarint(dst, index[dg.industry])
			workers = workers[:0]
			for w := range dg.workers {
				workers = append(workers, w)
			}
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

	// remembered ids, in runs of one start
	ids := make([]idAt, 0, len(p.seen))
	for h, t := range p.seen {
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
			dst = binary.AppendVarint(dst, ids[i].t-p.streamTime)
		} else {
			dst = binary.AppendUvarint(dst, uint64(ids[i].t-ids[i-1].t-1))
		}
		dst = binary.AppendUvarint(dst, uint64(j-i))
		for ; i < j; i++ {
			dst = binary.LittleEndian.AppendUint64(dst, ids[i].h)
		}
	}

	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// LoadSnapshot replaces the state of a new Partition (made by NewPartition
// with the same Options) by the snapshot's. A snapshot taken under other
// Options (anything that changes results: window, lateness, every threshold)
// or of another partition number is refused with an error wrapping
// ErrSnapshotOptions that names what differs; a corrupt or truncated one
// with ErrSnapshotCorrupt; an unknown version with ErrSnapshotVersion. On
// error p is unchanged. Never panics on any input.
func (p *Partition) LoadSnapshot(b []byte) error {
	r, h, err := readSnapshotHeader(b)
	if err != nil {
		return err
	}
	theirs, order, part, streamTime := h.options, h.order, h.partition, h.streamTime
	var diffs []string
	for _, o := range optionValues(&p.opts) {
		switch v, ok := theirs[o.name]; {
		case !ok:
			diffs = append(diffs, o.name+" absent from snapshot")
		case v != o.value:
			diffs = append(diffs, fmt.Sprintf("%s %s in snapshot, %s here", o.name, v, o.value))
		}
		delete(theirs, o.name)
	}
	for _, name := range order {
		if v, ok := theirs[name]; ok {
			diffs = append(diffs, fmt.Sprintf("%q %q in snapshot, unknown here", name, v))
		}
	}
	if part != int64(p.partition) {
		diffs = append(diffs, fmt.Sprintf("partition %d in snapshot, %d here", part, p.partition))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w: %s", ErrSnapshotOptions, strings.Join(diffs, "; "))
	}
	if streamTime != noTime {
		r.checkTime(streamTime, "stream time")
	}

	// the string table
	table := make([]string, r.count(2, "strings"))
	var buf []byte
	for i := range table {
		shared := r.uvarint("string")
		rest := r.bytes("string")
		if r.err != nil {
			return r.err
		}
		if shared > uint64(len(buf)) {
			return corrupt("string table prefix")
		}
		buf = append(buf[:shared], rest...)
		table[i] = string(buf)
		if i > 0 && table[i] <= table[i-1] {
			return corrupt("string table out of order")
		}
	}
	interned := make(map[string]string)
	str := func(what string) string {
		i := r.uvarint(what)
		if i >= uint64(len(table)) {
			r.fail(what + " index")
			return ""
		}
		return table[i]
	}
	var last [3]string
	key := func(first bool) shift.GroupKey {
		k := shift.GroupKey{PlantID: str("plant"), Role: str("role"), Unit: str("unit")}
		if !first && compareGroups(shift.GroupKey{PlantID: last[0], Role: last[1], Unit: last[2]}, k) >= 0 {
			r.fail("groups out of order")
		}
		last = [3]string{k.PlantID, k.Role, k.Unit}
		interned[k.PlantID], interned[k.Role], interned[k.Unit] = k.PlantID, k.Role, k.Unit
		return k
	}

	// groups
	ng := r.count(4, "groups")
	groups := make(map[shift.GroupKey]*group, ng)
	for i := 0; i < ng && r.err == nil; i++ {
		k := key(i == 0)
		w := norms.NewWindow(p.span, p.opts.CommonPaceTolerance)
		ne := r.count(10, "window entries")
		var t int64
		for j := 0; j < ne && r.err == nil; j++ {
			if j == 0 {
				t = streamTime + r.varint("window start")
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
		groups[k] = &group{window: w}
	}

	// open days
	nd := r.count(2, "open days")
	openDays := make([]shift.Day, 0, nd)
	days := make(map[shift.Day]*day, nd)
	var d int64
	for i := 0; i < nd && r.err == nil; i++ {
		if i == 0 {
			d = r.varint("day")
		} else if gap := r.uvarint("day"); gap < 2*maxSnapshotDay {
			d += int64(gap) + 1
		} else {
			r.fail("day")
		}
		if d < -maxSnapshotDay || d > maxSnapshotDay {
			r.fail("day out of range")
		}
		n := r.count(5, "day groups")
		dd := &day{groups: make(map[shift.GroupKey]*dayGroup, n)}
		for j := 0; j < n && r.err == nil; j++ {
			k := key(j == 0)
			industry := str("industry")
			interned[industry] = industry
			nw := r.count(17, "workers")
			dg := &dayGroup{industry: industry, workers: make(map[string]*workerDay, nw)}
			next := uint64(0)
			for range nw {
				gap := r.uvarint("worker")
				if gap >= uint64(len(table)) || next+gap >= uint64(len(table)) {
					r.fail("worker index")
					break
				}
				w := table[next+gap]
				next += gap + 1
				dg.workers[w] = &workerDay{output: r.float("output"), hours: r.float("hours")}
			}
			dd.groups[k] = dg
		}
		openDays = append(openDays, shift.Day(d))
		days[shift.Day(d)] = dd
	}

	// remembered ids
	nids := r.count(8, "remembered ids")
	seen := make(map[uint64]int64, nids)
	var t int64
	for got := 0; got < nids && r.err == nil; {
		if got == 0 {
			t = streamTime + r.varint("id start")
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
	if r.err == nil && len(r.b) > 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return r.err
	}

	p.streamTime = streamTime
	p.groups, p.days, p.openDays, p.seen = groups, days, openDays, seen
	p.strings = interned
	return nil
}

func corrupt(what string) error { return fmt.Errorf("%w: %s", ErrSnapshotCorrupt, what) }

// snapReader reads a snapshot's payload. The first failure sticks: every
// later read returns zero.
type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) fail(what string) {
	if r.err == nil {
		r.err = corrupt(what)
	}
	r.b = nil
}

func (r *snapReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) u64(what string) uint64 {
	if len(r.b) < 8 {
		r.fail(what)
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *snapReader) float(what string) float64 { return math.Float64frombits(r.u64(what)) }

// count reads a count of items of at least size bytes each: no more than
// the rest of the payload can hold, so that nothing is allocated for
// counts a corrupt snapshot claims.
func (r *snapReader) count(size int, what string) int {
	v := r.uvarint(what)
	if v > uint64(len(r.b)/size) {
		r.fail(what + " count")
		return 0
	}
	return int(v)
}

func (r *snapReader) bytes(what string) []byte {
	n := r.uvarint(what)
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *snapReader) string(what string) string { return string(r.bytes(what)) }

func (r *snapReader) checkTime(t int64, what string) {
	if t < -maxSnapshotTime || t > maxSnapshotTime {
		r.fail(what + " out of range")
	}
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendFloat(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

// appendCrew writes the crew rate as a code relative to the rate: the crew
// rate is mostly the rate itself, or the rate over the crew size, and the
// code is used only when it gives back exactly the same bits.
func appendCrew(dst []byte, rate, crew float64) []byte {
	bits := math.Float64bits(crew)
	if bits == math.Float64bits(rate) {
		return append(dst, 1)
	}
	if k := math.Round(rate / crew); k >= 2 && k <= maxCrewDivisor && math.Float64bits(rate/k) == bits {
		return binary.AppendUvarint(dst, uint64(k))
	}
	return appendFloat(append(dst, 0), crew)
}

type idAt struct {
	t int64
	h uint64
}

// sortIDs orders ids by start, then hash. The starts of a partition's ids
// lie within about the retention span, so a radix sort of the starts takes
// two or three passes; then each run of one start is sorted by hash. The
// result may be in a new slice.
func sortIDs(ids []idAt) []idAt {
	byHash := func(a, b idAt) int { return cmp.Compare(a.h, b.h) }
	if len(ids) < 1024 {
		slices.SortFunc(ids, func(a, b idAt) int {
			if c := cmp.Compare(a.t, b.t); c != 0 {
				return c
			}
			return byHash(a, b)
		})
		return ids
	}
	lo, hi := ids[0].t, ids[0].t
	for _, e := range ids {
		lo, hi = min(lo, e.t), max(hi, e.t)
	}
	span := uint64(hi) - uint64(lo)
	const bits = 11
	tmp := make([]idAt, len(ids))
	for shift := 0; shift < 64 && span>>shift > 0; shift += bits {
		var at [1 << bits]int
		for _, e := range ids {
			at[(uint64(e.t)-uint64(lo))>>shift&(1<<bits-1)]++
		}
		sum := 0
		for i, c := range at {
			at[i], sum = sum, sum+c
		}
		for _, e := range ids {
			k := (uint64(e.t) - uint64(lo)) >> shift & (1<<bits - 1)
			tmp[at[k]] = e
			at[k]++
		}
		ids, tmp = tmp, ids
	}
	for i := 0; i < len(ids); {
		j := i + 1
		for j < len(ids) && ids[j].t == ids[i].t {
			j++
		}
		slices.SortFunc(ids[i:j], byHash)
		i = j
	}
	return ids
}

func sortedKeys[V any](m map[shift.GroupKey]V) []shift.GroupKey {
	keys := make([]shift.GroupKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareGroups)
	return keys
}

type optionValue struct{ name, value string }

// optionValues lists every field of Options by name with its value as
// fmt.Sprint formats it: exact for the durations (Duration.String), integers
// and floats (shortest form that reads back to the same bits) Options holds.
// A field added to Options is covered without change here; one that could
// not change results would have to be left out by name.
func optionValues(o *Options) []optionValue {
	v := reflect.ValueOf(o).Elem()
	t := v.Type()
	out := make([]optionValue, 0, t.NumField())
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() {
			out = append(out, optionValue{f.Name, fmt.Sprint(v.Field(i).Interface())})
		}
	}
	return out
}

// snapshotHeader is what a snapshot says before its state.
type snapshotHeader struct {
	options    map[string]string
	order      []string // of options, as written
	partition  int64
	streamTime int64
}

// readSnapshotHeader checks a snapshot's magic, version and checksum and
// reads its header; r is left at the state that follows.
func readSnapshotHeader(b []byte) (*snapReader, snapshotHeader, error) {
	var h snapshotHeader
	if len(b) < len(snapshotMagic) || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, h, corrupt("not a partition snapshot")
	}
	v, n := binary.Uvarint(b[len(snapshotMagic):])
	if n <= 0 {
		return nil, h, corrupt("no version")
	}
	if v != snapshotVersion {
		return nil, h, fmt.Errorf("%w: version %d, this build reads version %d", ErrSnapshotVersion, v, snapshotVersion)
	}
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
		h.options[name] = value
		h.order = append(h.order, name)
	}
	h.partition = r.varint("partition")
	h.streamTime = r.varint("stream time")
	if r.err != nil {
		return nil, h, r.err
	}
	return r, h, nil
}

// SnapshotStreamTime reads the stream time a snapshot was taken at,
// without loading it: what a status report shows of a partition's
// checkpoint. ok is false for a snapshot taken before any shift.
func SnapshotStreamTime(b []byte) (t time.Time, ok bool, err error) {
	_, h, err := readSnapshotHeader(b)
	if err != nil || h.streamTime == noTime {
		return time.Time{}, false, err
	}
	return time.Unix(h.streamTime, 0).UTC(), true, nil
}
