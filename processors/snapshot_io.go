package processors

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/stakhanov/stakhanov/shift"
)

// The reading and writing primitives every snapshot version shares.

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

// stringRefs reads indices into a snapshot's string table, each string
// interned for the loaded state.
type stringRefs struct {
	r        *snapReader
	table    []string
	interned map[string]string
}

func (s *stringRefs) str(what string) string {
	i := s.r.uvarint(what)
	if i >= uint64(len(s.table)) {
		s.r.fail(what + " index")
		return ""
	}
	v := s.table[i]
	s.interned[v] = v
	return v
}

// inOrder checks that group k follows last, unless it is the first, and
// makes it the last.
func (r *snapReader) inOrder(first bool, last *shift.GroupKey, k shift.GroupKey) {
	if !first && compareGroups(*last, k) >= 0 {
		r.fail("groups out of order")
	}
	*last = k
}
