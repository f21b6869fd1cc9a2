package processors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/stakhanov/stakhanov/shift"
)

// snapV2 describes a snapshot of version 2 field by field, each written as
// given (see the format in snapshot.go), so that a test can write what no
// encoder would.
type snapV2 struct {
	streamTime, logTime int64
	strings             []string
	plants              []snapPlant
	legacy              []snapIDRun
	trailing            []byte
}

type snapPlant struct {
	id    uint64
	flags uint64
	// as written: stream time and forgotten from the header's stream time,
	// last log from its log time; closed before as a day
	streamTime, lastLog, forgotten, closedBefore int64
	groups                                       []snapGroup // key[0] unused: role, unit in key[1], key[2]
	days                                         []snapDay
	seen                                         []snapIDRun
}

func (d snapV2) bytes() []byte {
	b := []byte(snapshotMagic)
	b = binary.AppendUvarint(b, 2)
	opts := snapshotOpts()
	ov := optionValues(&opts)
	b = binary.AppendUvarint(b, uint64(len(ov)))
	for _, o := range ov {
		b = appendString(appendString(b, o.name), o.value)
	}
	b = binary.AppendVarint(b, 0)
	b = binary.AppendVarint(b, d.streamTime)
	b = binary.AppendVarint(b, d.logTime)
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
	runs := func(rs []snapIDRun) {
		n := 0
		for _, r := range rs {
			n += len(r.hashes)
		}
		b = binary.AppendUvarint(b, uint64(n))
		for i, r := range rs {
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
	}
	b = binary.AppendUvarint(b, uint64(len(d.plants)))
	for _, pl := range d.plants {
		b = binary.AppendUvarint(b, pl.id)
		b = binary.AppendUvarint(b, pl.flags)
		for i, v := range []int64{pl.streamTime, pl.lastLog, pl.forgotten, pl.closedBefore} {
			if pl.flags&(1<<i) != 0 {
				b = binary.AppendVarint(b, v)
			}
		}
		b = binary.AppendUvarint(b, uint64(len(pl.groups)))
		for _, g := range pl.groups {
			b = binary.AppendUvarint(binary.AppendUvarint(b, g.key[1]), g.key[2])
			b = binary.AppendUvarint(b, uint64(len(g.entries)))
			for i, e := range g.entries {
				if i == 0 {
					b = binary.AppendVarint(b, e)
				} else {
					b = binary.AppendUvarint(b, uint64(e))
				}
				b = appendFloat(b, 8)
				b = append(b, 1)
			}
		}
		b = binary.AppendUvarint(b, uint64(len(pl.days)))
		for i, dd := range pl.days {
			if i == 0 {
				b = binary.AppendVarint(b, dd.day)
			} else {
				b = binary.AppendUvarint(b, uint64(dd.day))
			}
			b = binary.AppendUvarint(b, 1)
			b = binary.AppendUvarint(binary.AppendUvarint(b, dd.key[1]), dd.key[2])
			b = binary.AppendUvarint(b, dd.ind)
			b = binary.AppendUvarint(b, uint64(len(dd.workers)))
			for _, w := range dd.workers {
				b = binary.AppendUvarint(b, w)
				b = appendFloat(appendFloat(b, 64), 8)
			}
		}
		runs(pl.seen)
	}
	runs(d.legacy)
	b = append(b, d.trailing...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// validV2 is a small, canonical state: plant a with every field — stream
// time 1935-08-10 06:00, its last record written two hours later, its ids
// once forgotten on 07-01, days before 08-10 closed, one group of two
// shifts, one open day, two ids — and plant b, which holds nothing yet.
func validV2() snapV2 {
	st := at(10, 6, 0).Unix()
	return snapV2{
		streamTime: st, logTime: st + 7200,
		strings: []string{"a", "b", "ind", "r", "u", "w"}, // 0 … 5
		plants: []snapPlant{
			{id: 0, flags: plantFlags, streamTime: 0, lastLog: 0, forgotten: -40 * 86400,
				closedBefore: int64(shift.DayOf(at(10, 0, 0))),
				groups:       []snapGroup{{key: [3]uint64{0, 3, 4}, entries: []int64{-3600, 1800}}},
				days:         []snapDay{{day: int64(shift.DayOf(at(10, 0, 0))), key: [3]uint64{0, 3, 4}, ind: 2, workers: []uint64{5}}},
				seen:         []snapIDRun{{start: -3600, hashes: []uint64{1, 2}}}},
			{id: 1},
		},
	}
}

// TestSnapshotCraftedV2: version-2 snapshots with a valid checksum, each
// refused for what no processor could have held, and the extremes of what
// is allowed, each accepted and written back byte for byte.
func TestSnapshotCraftedV2(t *testing.T) {
	a := func(d *snapV2) *snapPlant { return &d.plants[0] }
	tests := []struct {
		name string
		edit func(d *snapV2)
		ok   bool
	}{
		{"valid", func(d *snapV2) {}, true},
		{"legacy ids", func(d *snapV2) { d.legacy = []snapIDRun{{start: -7200, hashes: []uint64{3}}} }, true},
		{"legacy ids without a stream time", func(d *snapV2) {
			d.legacy = []snapIDRun{{start: -7200, hashes: []uint64{3}}}
			d.streamTime, d.plants = noTime, nil
			d.strings = nil
		}, false},
		{"plants out of order", func(d *snapV2) { d.plants[0].id, d.plants[1].id = 1, 0 }, false},
		{"a plant twice", func(d *snapV2) { d.plants[1].id = 0 }, false},
		{"a plant without an id", func(d *snapV2) {
			d.strings = append([]string{""}, d.strings...)
			d.plants = []snapPlant{{id: 0}}
		}, false},
		{"a plant index at the table's length", func(d *snapV2) { d.plants[1].id = 6 }, false},
		{"unknown plant flags", func(d *snapV2) { d.plants[1].flags = plantFlags + 1 }, false},
		{"a plant's clock beyond the partition's", func(d *snapV2) { a(d).streamTime = 1 }, false},
		{"a plant's clock without the partition's", func(d *snapV2) {
			d.plants = d.plants[1:]
			d.plants[0].flags, d.plants[0].streamTime = plantHasStreamTime, 0
			d.streamTime = noTime
			d.strings = []string{"b"}
			d.plants[0].id = 0
		}, false},
		{"a plant's log time beyond the partition's", func(d *snapV2) { a(d).lastLog = 1 }, false},
		{"a plant's log time without the partition's", func(d *snapV2) { d.logTime = noTime; a(d).lastLog = 0 }, false},
		{"days closed up to the range's end", func(d *snapV2) { a(d).days[0].day = maxSnapshotDay; a(d).closedBefore = maxSnapshotDay }, true},
		{"days closed beyond it", func(d *snapV2) { a(d).days[0].day = maxSnapshotDay; a(d).closedBefore = maxSnapshotDay + 1 }, false},
		{"days closed from the range's start", func(d *snapV2) { a(d).closedBefore = -maxSnapshotDay }, true},
		{"days closed before it", func(d *snapV2) { a(d).closedBefore = -maxSnapshotDay - 1 }, false},
		{"an open day among the closed ones", func(d *snapV2) { a(d).closedBefore++ }, false},
		{"groups out of order", func(d *snapV2) {
			g := a(d).groups[0]
			a(d).groups = []snapGroup{{key: [3]uint64{0, 5, 4}, entries: []int64{0}}, g}
		}, false},
		{"a group twice", func(d *snapV2) { a(d).groups = append(a(d).groups, a(d).groups[0]) }, false},
		{"a window without the plant's clock", func(d *snapV2) { d.plants[1].groups = a(d).groups }, false},
		{"an open day without the plant's clock", func(d *snapV2) { d.plants[1].days = a(d).days }, false},
		{"ids without the plant's clock", func(d *snapV2) { d.plants[1].seen = a(d).seen }, false},
		{"trailing bytes", func(d *snapV2) { d.trailing = []byte{0} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validV2()
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
			if got := p.AppendSnapshot(nil); !bytes.Equal(got, b) {
				t.Fatalf("written back as other bytes:\n got %x\nwant %x", got, b)
			}
		})
	}
	// what the valid state holds, read back through the processor
	p, _ := NewPartition(snapshotOpts(), 0)
	if _, err := p.LoadSnapshot(validV2().bytes()); err != nil {
		t.Fatal(err)
	}
	pl := p.plants["a"]
	if pl.forgotten != at(10, 6, 0).Unix()-40*86400 || pl.lastLog != at(10, 8, 0).Unix() ||
		pl.closedBefore != shift.DayOf(at(10, 0, 0)) || !slices.Equal(pl.openDays, []shift.Day{shift.DayOf(at(10, 0, 0))}) {
		t.Fatalf("plant a loaded as %+v", pl)
	}
}
