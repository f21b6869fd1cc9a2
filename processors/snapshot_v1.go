package processors

import (
	"slices"

	"github.com/stakhanov/stakhanov/shift"
)

// Version 1 of the snapshot, written before event time was kept per plant:
// after the header (options by Go field name, partition, one stream time
// for the whole partition), the string table as in version 2, then
//
//	groups     uvarint n, then n groups ascending by (plant, role, unit):
//	           plant, role, unit; the window's entries as in version 2,
//	           the first start from the partition's stream time
//	open days  uvarint n, then n days as in version 2, each group written
//	           with its plant: plant, role, unit, industry, workers
//	seen       the remembered ids as in version 2, from the partition's
//	           stream time, with no plant
//
// readStateV1 upgrades such a state: every plant it holds takes the
// partition's stream time (what the rules judged it by until then) and the
// days closed by it; the ids, whose plants are unknown, become legacy ids,
// a repeat of which is a duplicate in any plant until every plant has left
// it behind.
func (p *Partition) readStateV1(r *snapReader, h snapshotHeader) *loadedState {
	st := &loadedState{logTime: noTime, plants: map[string]*plant{}, strings: map[string]string{}}
	streamTime := h.streamTime
	if streamTime != noTime {
		r.checkTime(streamTime, "stream time")
	}
	table := readStringTable(r)
	str := (&stringRefs{r: r, table: table, interned: st.strings}).str
	plantOf := func(id string) *plant {
		pl := st.plants[id]
		if pl == nil {
			pl = newPlant(id)
			pl.streamTime = streamTime
			if streamTime != noTime {
				// no day of a snapshot lies before -maxSnapshotDay
				pl.closedBefore = max(shift.Day(floorDiv(streamTime-p.lateness, 86400)), -maxSnapshotDay)
			}
			st.plants[id] = pl
		}
		return pl
	}
	var last shift.GroupKey
	key := func(first bool) shift.GroupKey {
		k := shift.GroupKey{PlantID: str("plant"), Role: str("role"), Unit: str("unit")}
		r.inOrder(first, &last, k)
		return k
	}

	ng := r.count(4, "groups")
	for i := 0; i < ng && r.err == nil; i++ {
		k := key(i == 0)
		w := readWindow(r, streamTime, p.span, p.opts.CommonPaceTolerance)
		plantOf(k.PlantID).groups[k] = &group{window: w}
	}

	nd := r.count(2, "open days")
	var d int64
	for i := 0; i < nd && r.err == nil; i++ {
		d = readDay(r, i == 0, d)
		n := r.count(5, "day groups")
		for j := 0; j < n && r.err == nil; j++ {
			k := key(j == 0)
			industry := str("industry")
			workers := readWorkers(r, table)
			pl := plantOf(k.PlantID)
			dd := pl.days[shift.Day(d)]
			if dd == nil {
				dd = &day{groups: map[shift.GroupKey]*dayGroup{}}
				pl.days[shift.Day(d)] = dd
				pl.openDays = append(pl.openDays, shift.Day(d))
			}
			dd.groups[k] = &dayGroup{industry: industry, workers: workers}
		}
	}
	st.legacy = readIDRuns(r, streamTime)
	if len(st.legacy) == 0 {
		st.legacy = nil
	}
	if r.err == nil && streamTime == noTime && len(st.plants) > 0 {
		r.fail("state without a stream time")
	}
	for _, pl := range st.plants {
		slices.Sort(pl.openDays) // days ascending, each added once
		if r.err == nil && len(pl.openDays) > 0 && pl.openDays[0] < pl.closedBefore {
			r.fail("an open day among the closed ones")
		}
	}
	return st
}
