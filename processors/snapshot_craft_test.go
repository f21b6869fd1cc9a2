package processors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/shift"
)

// snapDesc describes a snapshot of version 1 — what the previous release
// wrote, and this one upgrades — field by field, so that a test can write
// one no encoder would: each field is written as given, with no checks (see
// the format in snapshot_v1.go).
type snapDesc struct {
	streamTime int64
	strings    []string // the table, written as given (front-coded)
	groups     []snapGroup
	days       []snapDay
	ids        []snapIDRun
	idCount    int    // the count of ids written; 0: the ids' number
	trailing   []byte // bytes after the state, before the checksum
}

type snapGroup struct {
	key     [3]uint64 // string indices: plant, role, unit
	entries []int64   // window entries' starts as written: the first from stream time, the others as gaps
}

type snapDay struct {
	day     int64 // the first day as written; later days as gap − 1
	key     [3]uint64
	ind     uint64
	workers []uint64 // index gaps as written
}

type snapIDRun struct {
	start  int64 // the first from stream time; later runs as gap − 1
	hashes []uint64
}

func (d snapDesc) bytes() []byte {
	b := []byte(snapshotMagic)
	b = binary.AppendUvarint(b, 1)
	opts := snapshotOpts()
	ov := v1OptionValues(&opts)
	b = binary.AppendUvarint(b, uint64(len(ov)))
	for _, o := range ov {
		b = appendString(appendString(b, o.name), o.value)
	}
	b = binary.AppendVarint(b, 0) // partition
	b = binary.AppendVarint(b, d.streamTime)
	b = binary.AppendUvarint(b, uint64(len(d.strings)))
	prev := ""
	for _, s := range d.strings {
		n := 0
		for n < len(prev) && n < len(s) && prev[n] == s[n] {
			n++
		}
		b = binary.AppendUvarint(b, uint64(n))
		b = appendString(b, s[n:])
		prev = s
	}
	key := func(k [3]uint64) {
		for _, i := range k {
			b = binary.AppendUvarint(b, i)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(d.groups)))
	for _, g := range d.groups {
		key(g.key)
		b = binary.AppendUvarint(b, uint64(len(g.entries)))
		for i, e := range g.entries {
			if i == 0 {
				b = binary.AppendVarint(b, e)
			} else {
				b = binary.AppendUvarint(b, uint64(e))
			}
			b = appendFloat(b, 8)
			b = append(b, 1) // crew rate = rate
		}
	}
	b = binary.AppendUvarint(b, uint64(len(d.days)))
	for i, dd := range d.days {
		if i == 0 {
			b = binary.AppendVarint(b, dd.day)
		} else {
			b = binary.AppendUvarint(b, uint64(dd.day))
		}
		b = binary.AppendUvarint(b, 1)
		key(dd.key)
		b = binary.AppendUvarint(b, dd.ind)
		b = binary.AppendUvarint(b, uint64(len(dd.workers)))
		for _, w := range dd.workers {
			b = binary.AppendUvarint(b, w)
			b = appendFloat(appendFloat(b, 64), 8)
		}
	}
	n := d.idCount
	for _, r := range d.ids {
		if d.idCount == 0 {
			n += len(r.hashes)
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for i, r := range d.ids {
		if i == 0 {
			b = binary.AppendVarint(b, r.start)
		} else {
			b = binary.AppendUvarint(b, uint64(r.start))
		}
		b = binary.AppendUvarint(b, uint64(len(r.hashes)))
		for _, h := range r.hashes {
			b = binary.LittleEndian.AppendUint64(b, h)
		}
	}
	b = append(b, d.trailing...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// v1OptionValues are the options as version 1 wrote them: the fields
// Options had then, by Go name.
func v1OptionValues(o *Options) []optionValue {
	v := reflect.ValueOf(o).Elem()
	var out []optionValue
	for _, name := range []string{"Window", "AllowedLateness", "RecordMinShifts", "RecordRatio", "SuspectScrapShare",
		"PaceMinWorkers", "PaceSetterRatio", "CommonPaceTolerance", "CommonPaceShare"} {
		out = append(out, optionValue{name, fmt.Sprint(v.FieldByName(name).Interface())})
	}
	return out
}

// validDesc is a small, canonical state: stream time 1935-08-10 06:00, one
// group (a, r, u) with two shifts, one open day with one worker, two ids.
func validDesc() snapDesc {
	st := at(10, 6, 0).Unix()
	return snapDesc{
		streamTime: st,
		strings:    []string{"a", "ind", "r", "u", "w"}, // 0 1 2 3 4
		groups:     []snapGroup{{key: [3]uint64{0, 2, 3}, entries: []int64{-3600, 1800}}},
		days:       []snapDay{{day: int64(shift.DayOf(at(10, 0, 0))), key: [3]uint64{0, 2, 3}, ind: 1, workers: []uint64{4}}},
		ids:        []snapIDRun{{start: -3600, hashes: []uint64{1, 2}}},
	}
}

// TestSnapshotCrafted: version-1 snapshots no encoder wrote, each with a
// valid checksum, each refused for what is wrong with it; and the extremes
// of what is allowed, each accepted, upgraded, and written as a version-2
// snapshot that loads back to the same bytes.
func TestSnapshotCrafted(t *testing.T) {
	tests := []struct {
		name string
		edit func(d *snapDesc)
		ok   bool
	}{
		{"valid", func(d *snapDesc) {}, true},
		{"a string that is a prefix of the next", func(d *snapDesc) {
			d.strings = []string{"a", "ind", "r", "u", "w", "w1"}
			d.days[0].workers = []uint64{4, 0}
		}, true},
		{"a string twice", func(d *snapDesc) { d.strings = []string{"a", "a", "ind", "r", "u", "w"} }, false},
		{"strings out of order", func(d *snapDesc) { d.strings = []string{"ind", "a", "r", "u", "w"} }, false},
		{"a string index at the table's length", func(d *snapDesc) { d.groups[0].key[0] = 5 }, false},
		{"a group twice", func(d *snapDesc) { d.groups = append(d.groups, d.groups[0]) }, false},
		{"groups out of order", func(d *snapDesc) {
			d.groups = []snapGroup{{key: [3]uint64{4, 2, 3}, entries: []int64{0}}, d.groups[0]}
		}, false},
		{"a day group twice", func(d *snapDesc) { d.days = append(d.days, d.days[0]); d.days[1].day = 0 }, true},
		{"a worker index at the table's length", func(d *snapDesc) { d.days[0].workers = []uint64{5} }, false},
		{"a worker twice", func(d *snapDesc) { d.days[0].workers = []uint64{4, math.MaxUint64} }, false},
		{"a worker index past the table after the first", func(d *snapDesc) { d.days[0].workers = []uint64{4, 0} }, false},
		{"an id at two starts", func(d *snapDesc) {
			d.ids = append(d.ids, snapIDRun{start: 0, hashes: []uint64{1}})
		}, false},
		{"ids out of order", func(d *snapDesc) { d.ids[0].hashes = []uint64{2, 1} }, false},
		{"an id twice in a run", func(d *snapDesc) { d.ids[0].hashes = []uint64{2, 2} }, false},
		{"an empty run of ids", func(d *snapDesc) { d.ids = append(d.ids, snapIDRun{start: 5}) }, false},
		// three ids said, four written, one hash at two starts: the map
		// would hold three
		{"a run longer than the ids left", func(d *snapDesc) {
			d.ids = []snapIDRun{{start: -3600, hashes: []uint64{1}}, {start: 0, hashes: []uint64{1, 2, 3}}}
			d.idCount = 3
		}, false},
		{"an id hash of zero", func(d *snapDesc) { d.ids[0].hashes = []uint64{0, 2} }, true},
		{"trailing bytes", func(d *snapDesc) { d.trailing = []byte{0} }, false},
		{"a partition before any shift", func(d *snapDesc) {
			d.streamTime, d.groups, d.days, d.ids = noTime, nil, nil, nil
			d.strings = []string{}
		}, true},
		{"an open day without a stream time", func(d *snapDesc) {
			d.streamTime, d.groups, d.ids = noTime, nil, nil
		}, false},
		{"stream time at the range's end", func(d *snapDesc) {
			*d = snapDesc{streamTime: maxSnapshotTime, strings: []string{}}
		}, true},
		{"stream time beyond it", func(d *snapDesc) {
			*d = snapDesc{streamTime: maxSnapshotTime + 1, strings: []string{}}
		}, false},
		{"stream time at the range's start", func(d *snapDesc) {
			*d = snapDesc{streamTime: -maxSnapshotTime, strings: []string{}}
		}, true},
		{"stream time before it", func(d *snapDesc) {
			*d = snapDesc{streamTime: -maxSnapshotTime - 1, strings: []string{}}
		}, false},
		{"window entries spanning the whole range", func(d *snapDesc) {
			d.streamTime = 0
			d.groups[0].entries = []int64{-maxSnapshotTime, 2 * maxSnapshotTime}
			d.ids, d.days = nil, nil
		}, true},
		{"a window entry beyond the range", func(d *snapDesc) {
			d.streamTime = 0
			d.groups[0].entries = []int64{-maxSnapshotTime, 2*maxSnapshotTime + 1}
			d.ids, d.days = nil, nil
		}, false},
		// a day open a long way behind stream time: it would have closed
		{"an open day among the closed ones", func(d *snapDesc) { d.days[0].day -= 2 }, false},
		{"an open day at the range's end", func(d *snapDesc) { d.days[0].day = maxSnapshotDay }, true},
		{"an open day beyond it", func(d *snapDesc) { d.days[0].day = maxSnapshotDay + 1 }, false},
		{"an open day at the range's start", func(d *snapDesc) {
			d.streamTime = -maxSnapshotTime + 3600
			d.groups[0].entries = []int64{0}
			d.days[0].day = -maxSnapshotDay
			d.ids[0].start = 0
		}, true},
		{"an open day before it", func(d *snapDesc) {
			d.streamTime = -maxSnapshotTime + 3600
			d.groups[0].entries = []int64{0}
			d.days[0].day = -maxSnapshotDay - 1
			d.ids[0].start = 0
		}, false},
		{"an id start beyond the range", func(d *snapDesc) {
			d.ids = []snapIDRun{{start: maxSnapshotTime - d.streamTime + 1, hashes: []uint64{1}}}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDesc()
			tt.edit(&d)
			b := d.bytes()
			p, _ := NewPartition(snapshotOpts(), 0)
			changed, err := p.LoadSnapshot(b)
			if !tt.ok {
				if !errors.Is(err, ErrSnapshotCorrupt) {
					t.Fatalf("loaded with %v, want ErrSnapshotCorrupt", err)
				}
				if p.Stats() != (Stats{}) || !p.StreamTime().IsZero() {
					t.Fatal("a refused snapshot changed the partition")
				}
				return
			}
			if err != nil || len(changed) > 0 {
				t.Fatalf("refused: %v, or options changed: %q", err, changed)
			}
			v2 := p.AppendSnapshot(nil)
			if got := loaded(t, snapshotOpts(), 0, v2).AppendSnapshot(nil); !bytes.Equal(got, v2) {
				t.Fatalf("the upgraded state's snapshot loads back as other bytes:\n got %x\nwant %x", got, v2)
			}
		})
	}
}

// TestSnapshotPrefixWithValidChecksum: a snapshot cut anywhere in its
// state, with a checksum made for what is left, is refused. Every section
// is read in full, so no strict prefix of a state parses.
func TestSnapshotPrefixWithValidChecksum(t *testing.T) {
	snap := testSnapshot(t, 300)
	_, h, err := readSnapshotHeader(snap)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := NewPartition(snapshotOpts(), 0)
	headerLen := len(snap) - 4 - len(mustReader(t, snap).b)
	for i := headerLen; i < len(snap)-4; i++ {
		b := withCRC(append(bytes.Clone(snap[:i]), 0, 0, 0, 0))
		if _, err := p.LoadSnapshot(b); !errors.Is(err, ErrSnapshotCorrupt) {
			t.Fatalf("cut at %d of %d (stream time %d): %v", i, len(snap), h.streamTime, err)
		}
	}
}

func mustReader(t *testing.T, b []byte) *snapReader {
	t.Helper()
	r, _, err := readSnapshotHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSnapshotGolden: the snapshot of a fixed state is exactly the bytes
// of testdata/snapshot/v2.bin, and those bytes load into a processor that
// goes on as the original does. A change of the format shows here first:
// it must bump snapshotVersion and keep reading this file.
func TestSnapshotGolden(t *testing.T) {
	opts := snapshotOpts()
	evs := stream(11, 700)
	p, _ := NewPartition(opts, 0)
	var before Output
	processLogged(t, p, evs[:600], 0, &before)
	got := p.AppendSnapshot(nil)
	path := filepath.Join("testdata", "snapshot", "v2.bin")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./processors -run TestSnapshotGolden -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the snapshot of the fixed state is %d bytes, not the %d of %s", len(got), len(want), path)
	}
	var all, after Output
	full, _ := NewPartition(opts, 0)
	processLogged(t, full, evs, 0, &all)
	q := loaded(t, opts, 0, want)
	processLogged(t, q, evs[600:], 600, &after)
	checkContinuation(t, &all, &before, &after)
}

// TestSnapshotUpgradeV1: checkpoints the previous release wrote (version
// 1, one clock per partition) load into this one, which keeps a clock per
// plant.
func TestSnapshotUpgradeV1(t *testing.T) {
	opts := snapshotOpts()
	// one plant: its clock was the partition's, so the upgraded state is
	// the state this release builds from the same events, and everything
	// after goes on exactly as an uninterrupted run of this release
	t.Run("one plant", func(t *testing.T) {
		var evs []shift.Event
		for _, ev := range stream(11, 3000) {
			if ev.PlantID == "p0" {
				evs = append(evs, ev)
			}
		}
		old, err := os.ReadFile(filepath.Join("testdata", "snapshot", "v1-one-plant.bin"))
		if err != nil {
			t.Fatal(err)
		}
		q := loaded(t, opts, 0, old)
		full, _ := NewPartition(opts, 0)
		var all, before, after Output
		process(t, full, evs[:600], 0, &before)
		if got, want := q.Stats(), full.Stats(); got != want {
			t.Fatalf("upgraded state %+v, this release's %+v", got, want)
		}
		process(t, full, evs[600:], 600, &all)
		process(t, q, evs[600:], 600, &after)
		all.Shifts = append(before.Shifts, all.Shifts...)
		all.Alerts = append(before.Alerts, all.Alerts...)
		all.Norms = append(before.Norms, all.Norms...)
		all.Duplicates += before.Duplicates
		checkContinuation(t, &all, &before, &after)
	})
	// three plants on one clock: each takes the partition's stream time;
	// windows, open days and remembered ids are all kept
	t.Run("three plants", func(t *testing.T) {
		old, err := os.ReadFile(filepath.Join("testdata", "snapshot", "v1.bin"))
		if err != nil {
			t.Fatal(err)
		}
		q := loaded(t, opts, 0, old)
		// what the previous release held, as its own Stats said:
		// stream(11, 700)[:600] under snapshotOpts
		st := q.Stats()
		if st.Plants != 3 || st.Groups != 6 || st.RememberedIDs == 0 || st.WindowShifts == 0 || len(q.legacy) != st.RememberedIDs {
			t.Fatalf("upgraded state %+v, %d legacy ids", st, len(q.legacy))
		}
		clock := q.StreamTime()
		for id, pl := range q.plants {
			if got, _ := q.PlantStreamTime(id); !got.Equal(clock) || pl.lastLog != noTime {
				t.Fatalf("plant %s at %v, want the partition's %v", id, got, clock)
			}
		}
		// a repeat of an id the old state remembered is still a duplicate
		evs := stream(11, 700)
		var out Output
		repeat := evs[599]
		if err := q.Process(&repeat, Input{Offset: 600}, &out); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("repeat after the upgrade: %v, want ErrDuplicate", err)
		}
		process(t, q, evs[600:], 601, &out)
		if len(out.Shifts) == 0 {
			t.Fatal("nothing processed after the upgrade")
		}
		// and the upgraded state's own snapshot is version 2, stable
		v2 := q.AppendSnapshot(nil)
		if got := loaded(t, opts, 0, v2).AppendSnapshot(nil); !bytes.Equal(got, v2) {
			t.Fatal("the upgraded state's snapshot does not load back to itself")
		}
	})
}

// TestSnapshotCrewCode: the crew rate is written as a one-byte code when it
// is the rate, as a divisor up to 2²⁰ when rate / k gives back its exact
// bits, and as a float otherwise.
func TestSnapshotCrewCode(t *testing.T) {
	tests := []struct {
		name       string
		rate, crew float64
		want       []byte
	}{
		{"the rate", 9, 9, []byte{1}},
		{"a third", 9, 3, []byte{3}},
		{"the largest divisor", 1 << 20, 1, binary.AppendUvarint(nil, 1<<20)},
		{"beyond it", 1 << 21, 1, appendFloat([]byte{0}, 1)},
		{"no divisor", 9, 4, appendFloat([]byte{0}, 4)},
	}
	for _, tt := range tests {
		if got := appendCrew(nil, tt.rate, tt.crew); !bytes.Equal(got, tt.want) {
			t.Errorf("%s: %x, want %x", tt.name, got, tt.want)
		}
	}
}

// TestLegacyIDs: the ids a version-1 snapshot remembered without their
// plants stay duplicates in any plant while within that plant's retention
// — exactly at its edge included — and are dropped once every plant's
// clock has left them behind.
func TestLegacyIDs(t *testing.T) {
	opts := snapshotOpts()
	d := validDesc() // plant a, stream time 08-10 06:00, ids remembered at 05:00
	d.ids = []snapIDRun{{start: -3600, hashes: []uint64{hashID64("old-1"), hashID64("old-2")}}}
	slices.Sort(d.ids[0].hashes)
	idStart := at(10, 5, 0)
	ret := opts.Retention()
	shiftOf := func(id string, start time.Time) shift.Event {
		return shift.Event{EventID: id, PlantID: "a", Industry: "ind", Role: "r", WorkerID: "w", CrewSize: 1,
			ShiftStart: start, ShiftHours: 8, Output: 64, Unit: "u"}
	}
	tests := []struct {
		name  string
		clock time.Duration // plant a's next shift, after the ids' start
		bLead time.Duration // how far plant b's clock runs ahead of a's
		dup   bool
		held  int // legacy ids held after it
	}{
		{"within retention", ret - time.Hour, 0, true, 2},
		{"at the edge", ret, 0, true, 2},
		{"a second past it", ret + time.Second, 0, false, 0},
		// plant a still holds them (its clock is behind): held, but past
		// plant b's retention, so not a repeat in plant b
		{"past b's edge, within a's", ret - time.Hour, 2 * time.Hour, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := NewPartition(opts, 0)
			if _, err := p.LoadSnapshot(d.bytes()); err != nil {
				t.Fatal(err)
			}
			var out Output
			clock := shiftOf("clock", idStart.Add(tt.clock))
			if err := p.Process(&clock, Input{Offset: 1}, &out); err != nil {
				t.Fatal(err)
			}
			if got := len(p.legacy); got != tt.held {
				t.Fatalf("%d legacy ids held, want %d", got, tt.held)
			}
			// in another plant too: version 1 did not say whose they were
			again := shiftOf("old-1", idStart)
			again.PlantID = "b"
			b := shiftOf("b-clock", idStart.Add(tt.clock+tt.bLead))
			b.PlantID = "b"
			if err := p.Process(&b, Input{Offset: 2}, &out); err != nil {
				t.Fatal(err)
			}
			if err := p.Process(&again, Input{Offset: 3}, &out); errors.Is(err, ErrDuplicate) != tt.dup {
				t.Fatalf("a repeat of a legacy id: %v, want a duplicate %v", err, tt.dup)
			}
		})
	}
}
