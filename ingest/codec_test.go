package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// codecNaN is a NaN with a payload, to check that the bits survive.
var codecNaN = math.Float64frombits(0x7ff8_0000_dead_beef)

// codecSample builds results that set every field of every type to
// something unusual at least once.
func codecSample() *Results {
	start := time.Date(1935, 8, 31, 22, 0, 0, 123456789, time.UTC) // before the epoch
	return &Results{
		Shifts: []processors.Shift{
			{
				Event: shift.Event{
					EventID: "evt-19350831-000000000000a1b2", PlantID: "tsentralnaya-irmino",
					Industry: "coal", Section: "lava-7", Role: "hewer", WorkerID: "a.stakhanov",
					CrewSize: 3, ShiftStart: start, ShiftHours: 5.75, Output: 102, Unit: "t", Scrap: 1.5,
				},
				Partition: 7, Offset: 1 << 40,
				Rate: 102 / 5.75, CrewRate: 102 / 5.75 / 3, ScrapShare: 1.5 / 102,
				Norm:     processors.Norm{Count: 42, Median: 1.1, Mean: 1.2, P90: 2.5, MAD: 0.3, Bulk: 0.75},
				CrewNorm: 0.9, Ratio: 16.1, CrewRatio: 5.4, Late: true, Unchecked: true,
			},
			{
				Event: shift.Event{
					EventID: "событие-№1 🚩", PlantID: "Центральная-Ирмино", Industry: "угольная",
					Section: "", Role: "забойщик", WorkerID: "Алексей Стаханов", CrewSize: math.MaxInt,
					ShiftStart: time.Time{}, ShiftHours: math.Inf(1), Output: math.Copysign(0, -1),
					Unit: "т", Scrap: math.SmallestNonzeroFloat64,
				},
				Partition: math.MaxInt32, Offset: math.MaxInt64,
				Rate: math.NaN(), CrewRate: codecNaN, ScrapShare: math.Inf(-1),
				Norm: processors.Norm{Count: math.MinInt, Median: math.NaN(), Mean: codecNaN,
					P90: math.MaxFloat64, MAD: -math.MaxFloat64, Bulk: math.Inf(1)},
				CrewNorm: math.NaN(), Ratio: math.Inf(1), CrewRatio: math.Inf(-1),
			},
			{}, // all zero
			{
				Event: shift.Event{
					EventID: "x", PlantID: "\xff\xfe not utf-8", ShiftStart: time.Unix(1<<40, 999999999).UTC(),
					CrewSize: -1, ShiftHours: -2,
				},
				Partition: math.MinInt32, Offset: math.MinInt64,
			},
		},
		// the same as Offset, after a re-keying, unknown, and far from Offset
		Positions: []int64{1 << 40, 12, -1, math.MaxInt64},
		Alerts: []processors.Alert{
			{
				ID: "0123456789abcdef0123456789abcdef", Type: processors.RecordShift,
				PlantID: "tsentralnaya-irmino", Industry: "coal", Role: "hewer", Unit: "t",
				WorkerID: "a.stakhanov", EventID: "evt-19350831-000000000000a1b2",
				Day: shift.DayOf(start), Rate: 17.7, NormRate: 1.1, Ratio: 16.1, ScrapShare: 0.01,
				GroupSize: 42, BulkShare: 0.75, DetectedAt: start.Add(time.Hour), Late: true,
			},
			{
				ID: "ф", Type: processors.CommonPace, PlantID: "Горловка", Day: math.MinInt32,
				Rate: math.NaN(), NormRate: codecNaN, Ratio: math.Inf(1), ScrapShare: math.Inf(-1),
				GroupSize: -5, BulkShare: math.NaN(),
			},
			{Day: math.MaxInt32, DetectedAt: time.Unix(0, 1).UTC()},
			{},
		},
		Norms: []processors.NormRow{
			{
				Group: shift.GroupKey{PlantID: "tsentralnaya-irmino", Role: "hewer", Unit: "t"},
				Day:   shift.DayOf(start),
				Norm:  processors.Norm{Count: 7, Median: 1.5, Mean: 1.6, P90: 2, MAD: 0.25, Bulk: 0.5},
			},
			{
				Group: shift.GroupKey{PlantID: "Ирмино", Role: "", Unit: "м³"},
				Day:   math.MinInt32,
				Norm:  processors.Norm{Median: math.NaN(), Mean: codecNaN, P90: math.Inf(1), MAD: math.Inf(-1), Bulk: math.NaN()},
			},
			{Day: math.MaxInt32, Norm: processors.Norm{Count: math.MaxInt}},
			{},
		},
		Rejects: []Reject{
			{Topic: "shifts", Partition: 3, Offset: 99, Reason: "bad_json", Detail: "unexpected '}' — в позиции 17",
				Key: nil, Value: []byte(`{"event_id":}`)},
			{Topic: "shifts", Partition: -1, Offset: -1, Reason: "empty", Detail: "", Key: []byte{}, Value: nil},
			{Topic: "", Key: []byte{0, 0xff, '\n'}, Value: []byte{}},
			{},
		},
	}
}

// codecDiff describes the first difference between want and got: floats
// by their bits, times by instant, zeroness and location (UTC expected),
// byte slices by content and nil-ness.
// Positions missing at the end of Results are compared as unknown (-1),
// which is what they mean (and how they decode).
func codecDiff(want, got any) string {
	return codecDiffValue("", reflect.ValueOf(padPositions(want)), reflect.ValueOf(padPositions(got)))
}

func padPositions(v any) any {
	r, ok := v.(*Results)
	if !ok || r == nil || len(r.Positions) >= len(r.Shifts) {
		return v
	}
	c := *r
	c.Positions = append([]int64(nil), r.Positions...)
	for len(c.Positions) < len(c.Shifts) {
		c.Positions = append(c.Positions, -1)
	}
	return &c
}

var codecTimeType = reflect.TypeFor[time.Time]()

func codecDiffValue(path string, w, g reflect.Value) string {
	if w.Type() == codecTimeType {
		wt, gt := w.Interface().(time.Time), g.Interface().(time.Time)
		if !wt.Equal(gt) || wt.IsZero() != gt.IsZero() || gt.Location() != time.UTC || wt.Nanosecond() != gt.Nanosecond() {
			return fmt.Sprintf("%s: want %v (zero %v), got %v (zero %v, %v)", path, wt, wt.IsZero(), gt, gt.IsZero(), gt.Location())
		}
		return ""
	}
	switch w.Kind() {
	case reflect.Pointer:
		return codecDiffValue(path, w.Elem(), g.Elem())
	case reflect.Struct:
		for i := range w.NumField() {
			if d := codecDiffValue(path+"."+w.Type().Field(i).Name, w.Field(i), g.Field(i)); d != "" {
				return d
			}
		}
	case reflect.Slice:
		if w.Type().Elem().Kind() == reflect.Uint8 {
			if w.IsNil() != g.IsNil() || !bytes.Equal(w.Bytes(), g.Bytes()) {
				return fmt.Sprintf("%s: want %q (nil %v), got %q (nil %v)", path, w.Bytes(), w.IsNil(), g.Bytes(), g.IsNil())
			}
			return ""
		}
		if w.Len() != g.Len() {
			return fmt.Sprintf("%s: want %d items, got %d", path, w.Len(), g.Len())
		}
		for i := range w.Len() {
			if d := codecDiffValue(fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i)); d != "" {
				return d
			}
		}
	case reflect.Float64:
		if math.Float64bits(w.Float()) != math.Float64bits(g.Float()) {
			return fmt.Sprintf("%s: want %v (%#x), got %v (%#x)", path, w.Float(), math.Float64bits(w.Float()), g.Float(), math.Float64bits(g.Float()))
		}
	case reflect.String:
		if w.String() != g.String() {
			return fmt.Sprintf("%s: want %q, got %q", path, w.String(), g.String())
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		if w.Int() != g.Int() {
			return fmt.Sprintf("%s: want %d, got %d", path, w.Int(), g.Int())
		}
	case reflect.Bool:
		if w.Bool() != g.Bool() {
			return fmt.Sprintf("%s: want %v, got %v", path, w.Bool(), g.Bool())
		}
	default:
		return fmt.Sprintf("%s: codecDiff does not handle %s", path, w.Type())
	}
	return ""
}

// codecLeaves calls fn with the path of every leaf field of v and whether
// it is set (non-zero).
func codecLeaves(path string, v reflect.Value, fn func(path string, set bool)) {
	if v.Type() == codecTimeType {
		fn(path, !v.Interface().(time.Time).IsZero())
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			codecLeaves(path+"."+v.Type().Field(i).Name, v.Field(i), fn)
		}
	case reflect.Slice:
		fn(path, v.Len() > 0)
	default:
		fn(path, !v.IsZero())
	}
}

// TestResultsSampleCoversEveryField guards the round-trip test: a field
// added to one of the types must be set in the sample (and so encoded).
func TestResultsSampleCoversEveryField(t *testing.T) {
	r := reflect.ValueOf(codecSample()).Elem()
	for i := range r.NumField() {
		items := r.Field(i)
		set := map[string]bool{}
		for j := range items.Len() {
			codecLeaves("", items.Index(j), func(p string, s bool) { set[p] = set[p] || s })
		}
		for p, s := range set {
			if !s {
				t.Errorf("%s: no sample sets %s", r.Type().Field(i).Name, p)
			}
		}
	}
}

func mustEncode(t testing.TB, r *Results, maxBytes int) [][]byte {
	t.Helper()
	msgs, err := EncodeResults(nil, r, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if len(m) > maxBytes {
			t.Fatalf("message %d is %d bytes, limit %d", i, len(m), maxBytes)
		}
	}
	return msgs
}

func mustDecode(t testing.TB, msgs [][]byte, r *Results) {
	t.Helper()
	for i, m := range msgs {
		if err := DecodeResults(m, r); err != nil {
			t.Fatalf("message %d of %d: %v", i, len(msgs), err)
		}
	}
}

func TestResultsRoundTrip(t *testing.T) {
	want := codecSample()
	msgs := mustEncode(t, want, 1<<20)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}

	var got Results
	mustDecode(t, msgs, &got)
	if d := codecDiff(want, &got); d != "" {
		t.Fatal(d)
	}
	// the decoded values do not share memory with the message
	for i := range msgs[0] {
		msgs[0][i] = 0xAA
	}
	if d := codecDiff(want, &got); d != "" {
		t.Fatalf("after overwriting the message: %s", d)
	}

	// decoding appends, and overwrites every field of reused capacity
	stale := codecSample()
	for i := range stale.Shifts {
		stale.Shifts[i].EventID, stale.Shifts[i].Late, stale.Shifts[i].Norm.Count = "stale", true, 99
	}
	for i := range stale.Rejects {
		stale.Rejects[i].Key = []byte("stale")
	}
	stale.Alerts[3].DetectedAt = time.Now()
	r := Results{Shifts: stale.Shifts[:1], Alerts: stale.Alerts[:0], Norms: stale.Norms[:2], Rejects: stale.Rejects[:0]}
	prefix := Results{Shifts: stale.Shifts[:1:1], Norms: stale.Norms[:2:2]}
	prefix.Shifts, prefix.Norms = append([]processors.Shift(nil), prefix.Shifts...), append([]processors.NormRow(nil), prefix.Norms...)
	msgs = mustEncode(t, want, 1<<20)
	mustDecode(t, msgs, &r)
	wantAppended := Results{
		Shifts:    append(prefix.Shifts, want.Shifts...),
		Positions: append([]int64{-1}, want.Positions...),
		Alerts:    want.Alerts,
		Norms:     append(prefix.Norms, want.Norms...),
		Rejects:   want.Rejects,
	}
	if d := codecDiff(&wantAppended, &r); d != "" {
		t.Fatalf("decoding into used capacity: %s", d)
	}
}

func TestResultsEmpty(t *testing.T) {
	for _, r := range []*Results{nil, {}, {Shifts: []processors.Shift{}}} {
		msgs := mustEncode(t, r, MinResultsMessage)
		if len(msgs) != 1 {
			t.Fatalf("%d messages for no items, want 1", len(msgs))
		}
		var got Results
		mustDecode(t, msgs, &got)
		if d := codecDiff(&Results{}, &got); d != "" {
			t.Fatal(d)
		}
	}
	// one kind alone
	s := codecSample()
	for _, r := range []*Results{{Shifts: s.Shifts}, {Alerts: s.Alerts}, {Norms: s.Norms}, {Rejects: s.Rejects}} {
		var got Results
		mustDecode(t, mustEncode(t, r, MinResultsMessage), &got)
		if d := codecDiff(r, &got); d != "" {
			t.Fatal(d)
		}
	}
}

var (
	codecPlants = []struct{ id, industry, role, unit string }{
		{"tsentralnaya-irmino", "coal", "hewer", "t"},
		{"zapadnaya-kadievka", "coal", "timberer", "m"},
		{"imeni-lenina-gorlovka", "coal", "hewer", "t"},
		{"magnitka-steelworks", "steel", "smelter", "t"},
		{"gaz-gorky", "auto", "forge-operator", "pcs"},
		{"krasny-proletary", "machine-tools", "turner", "pcs"},
	}
	codecWorkers  = []string{"a.stakhanov", "n.izotov", "a.busygin", "m.vinogradova", "e.vinogradova", "p.krivonos", "i.gudov", "d.kontsedalov"}
	codecSections = []string{"", "", "lava-7", "shop-3"}
)

// codecShifts makes n shifts with realistic values.
func codecShifts(n int) []processors.Shift {
	rng := rand.New(rand.NewPCG(1935, 8))
	base := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	out := make([]processors.Shift, n)
	for i := range out {
		p := codecPlants[rng.IntN(len(codecPlants))]
		hours := []float64{6, 7.5, 8}[rng.IntN(3)]
		output := math.Round(rng.Float64()*1000) / 10
		scrap := math.Round(output*rng.Float64()*5) / 100
		crew := 1 + rng.IntN(3)
		s := &out[i]
		s.Event = shift.Event{
			EventID:  fmt.Sprintf("evt-20260301-%016x", rng.Uint64()),
			PlantID:  p.id,
			Industry: p.industry,
			Section:  codecSections[rng.IntN(len(codecSections))],
			Role:     p.role,
			WorkerID: codecWorkers[rng.IntN(len(codecWorkers))],
			CrewSize: crew,
			ShiftStart: base.Add(time.Duration(i/50) * time.Minute).
				Add(time.Duration(rng.IntN(3600)) * time.Second),
			ShiftHours: hours,
			Output:     output,
			Unit:       p.unit,
			Scrap:      scrap,
		}
		s.Partition = int32(rng.IntN(12))
		s.Offset = int64(1_000_000 + i)
		s.Rate, s.CrewRate, s.ScrapShare = s.Event.Rate(), s.Event.CrewRate(), s.Event.ScrapShare()
		if i%97 == 0 {
			s.Norm = processors.Norm{Median: math.NaN(), Mean: math.NaN(), P90: math.NaN(), MAD: math.NaN(), Bulk: math.NaN()}
			s.CrewNorm, s.Ratio, s.CrewRatio = math.NaN(), math.NaN(), math.NaN()
		} else {
			m := 8 + rng.Float64()*4
			s.Norm = processors.Norm{Count: 20 + rng.IntN(2000), Median: m, Mean: m * 1.03, P90: m * 1.4, MAD: m * 0.1, Bulk: rng.Float64()}
			s.CrewNorm = m / 1.7
			s.Ratio, s.CrewRatio = s.Rate/m, s.CrewRate/s.CrewNorm
		}
		s.Late = i%53 == 0
	}
	return out
}

func TestResultsSplitsLargeBatches(t *testing.T) {
	const limit = 1 << 20
	want := &Results{Shifts: codecShifts(100_000)}
	msgs := mustEncode(t, want, limit)
	if len(msgs) < 2 {
		t.Fatalf("%d messages, want several", len(msgs))
	}
	total := 0
	for i, m := range msgs {
		total += len(m)
		if i < len(msgs)-1 && len(m) < limit-1024 {
			t.Errorf("message %d of %d holds only %d bytes", i, len(msgs), len(m))
		}
	}
	t.Logf("100k shifts: %d messages, %d bytes, %.1f bytes/shift", len(msgs), total, float64(total)/1e5)
	var got Results
	mustDecode(t, msgs, &got)
	if d := codecDiff(want, &got); d != "" {
		t.Fatal(d)
	}
}

func TestResultsSplitsEveryKind(t *testing.T) {
	const limit = MinResultsMessage
	s := codecSample()
	want := &Results{Shifts: codecShifts(3000)}
	for i := range 2000 {
		want.Alerts = append(want.Alerts, s.Alerts[i%len(s.Alerts)])
		want.Alerts[i].ID = fmt.Sprint(i)
		want.Norms = append(want.Norms, s.Norms[i%len(s.Norms)])
		want.Norms[i].Day = shift.Day(i)
	}
	for i := range 300 {
		j := s.Rejects[i%len(s.Rejects)]
		j.Offset = int64(i)
		j.Value = bytes.Repeat([]byte{byte(i)}, (i*i*7)%(limit/2))
		j.Detail = string(bytes.Repeat([]byte("ж"), i*11))
		want.Rejects = append(want.Rejects, j)
	}
	dst := [][]byte{[]byte("kept")}
	msgs, err := EncodeResults(dst, want, limit)
	if err != nil {
		t.Fatal(err)
	}
	if string(msgs[0]) != "kept" {
		t.Fatalf("dst[0] changed to %q", msgs[0][:min(len(msgs[0]), 16)])
	}
	msgs = msgs[1:]
	var got Results
	for i, m := range msgs {
		if len(m) > limit {
			t.Fatalf("message %d is %d bytes", i, len(m))
		}
	}
	mustDecode(t, msgs, &got)
	if d := codecDiff(want, &got); d != "" {
		t.Fatal(d)
	}
	t.Logf("%d messages", len(msgs))
}

func TestResultsTooLarge(t *testing.T) {
	const limit = MinResultsMessage
	// find the largest reject value that fits: the message grows by one
	// byte per value byte, except where the value's length prefix grows
	size := func(n int) int {
		msgs := mustEncode(t, &Results{Rejects: []Reject{{Topic: "shifts", Value: make([]byte, n)}}}, 1<<20)
		return len(msgs[0])
	}
	n := limit - (size(limit) - limit)
	for size(n+1) <= limit {
		n++
	}
	for size(n) > limit {
		n--
	}
	if size(n) != limit {
		t.Fatalf("a %d-byte value makes a %d-byte message; want exactly %d", n, size(n), limit)
	}

	s := codecSample()
	r := &Results{Shifts: s.Shifts, Rejects: append(s.Rejects[:2:2], Reject{Topic: "shifts", Value: make([]byte, n)})}
	msgs, err := EncodeResults(nil, r, limit)
	if err != nil {
		t.Fatalf("an item exactly at the limit: %v", err)
	}
	if len(msgs) != 2 || len(msgs[1]) != limit {
		t.Fatalf("%d messages, the last %d bytes; want 2, the last %d", len(msgs), len(msgs[len(msgs)-1]), limit)
	}

	r.Rejects[2].Value = make([]byte, n+1)
	dst := [][]byte{[]byte("kept")}
	got, err := EncodeResults(dst, r, limit)
	if !errors.Is(err, ErrResultTooLarge) {
		t.Fatalf("err %v, want ErrResultTooLarge", err)
	}
	var tl *ResultTooLargeError
	if !errors.As(err, &tl) || tl.Kind != "reject" || tl.Index != 2 || tl.Size != limit+1 || tl.Max != limit {
		t.Fatalf("err %#v", tl)
	}
	if len(got) != 1 || string(got[0]) != "kept" {
		t.Fatalf("dst after an error: %d messages", len(got))
	}
	t.Log(err)

	if _, err := EncodeResults(nil, s, MinResultsMessage-1); err == nil {
		t.Fatal("no error for a limit below the minimum")
	}
}

func TestResultsCodecReusesBuffers(t *testing.T) {
	want := &Results{Shifts: codecShifts(5000)}
	msgs := mustEncode(t, want, MinResultsMessage)
	first := &msgs[0][0]
	msgs, err := EncodeResults(msgs[:0], want, MinResultsMessage)
	if err != nil {
		t.Fatal(err)
	}
	if &msgs[0][0] != first {
		t.Error("the first buffer was not reused")
	}
	var got Results
	mustDecode(t, msgs, &got)
	if d := codecDiff(want, &got); d != "" {
		t.Fatal(d)
	}

	if raceEnabled {
		return
	}
	allocs := testing.AllocsPerRun(20, func() {
		msgs, _ = EncodeResults(msgs[:0], want, MinResultsMessage)
	})
	if allocs > 1 { // the pooled encoder, should a GC have emptied the pool
		t.Errorf("encoding into used buffers: %v allocations", allocs)
	}
	allocs = testing.AllocsPerRun(20, func() {
		got.Shifts = got.Shifts[:0]
		mustDecode(t, msgs, &got)
	})
	if allocs > float64(len(msgs)) {
		t.Errorf("decoding %d messages into used capacity: %v allocations", len(msgs), allocs)
	}
}

func codecCheckError(t *testing.T, what string, err error, r *Results, want Results) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	if !errors.Is(err, ErrResultsCorrupt) && !errors.Is(err, ErrResultsVersion) {
		t.Fatalf("%s: error %v is neither corrupt nor version", what, err)
	}
	if d := codecDiff(&want, r); d != "" {
		t.Fatalf("%s: results changed: %s", what, d)
	}
}

func TestResultsCodecDetectsDamage(t *testing.T) {
	s := codecSample()
	small := &Results{Shifts: s.Shifts[:2], Alerts: s.Alerts[:2], Norms: s.Norms[:1], Rejects: s.Rejects[:2]}
	msg := mustEncode(t, small, MinResultsMessage)[0]
	prior := Results{Shifts: s.Shifts[3:4], Rejects: s.Rejects[:1]}
	r := Results{Shifts: append([]processors.Shift(nil), prior.Shifts...), Rejects: append([]Reject(nil), prior.Rejects...)}

	for n := range len(msg) {
		err := DecodeResults(msg[:n], &r)
		codecCheckError(t, fmt.Sprintf("first %d bytes", n), err, &r, prior)
		if !errors.Is(err, ErrResultsCorrupt) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	damaged := bytes.Clone(msg)
	for i := range damaged {
		for bit := range 8 {
			damaged[i] ^= 1 << bit
			codecCheckError(t, fmt.Sprintf("bit %d of byte %d flipped", bit, i), DecodeResults(damaged, &r), &r, prior)
			damaged[i] ^= 1 << bit
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		copy(damaged, msg)
		for range 1 + rng.IntN(4) {
			damaged[rng.IntN(len(damaged))] ^= byte(1 + rng.IntN(255))
		}
		codecCheckError(t, "random bytes changed", DecodeResults(damaged, &r), &r, prior)
	}
	codecCheckError(t, "a byte added", DecodeResults(append(bytes.Clone(msg), 0), &r), &r, prior)
	codecCheckError(t, "nil", DecodeResults(nil, &r), &r, prior)
}

// codecSeal builds a message from its parts with a correct checksum: the
// damage below is what only a broken or foreign writer makes.
func codecSeal(version byte, meta []byte, heap string) []byte {
	m := append([]byte("STKR"), version)
	m = append(m, meta...)
	m = append(m, heap...)
	m = binary.LittleEndian.AppendUint32(m, uint32(len(heap)))
	return binary.LittleEndian.AppendUint32(m, crc32.Checksum(m, crc32.MakeTable(crc32.Castagnoli)))
}

func codecSection(kind byte, count uint32, items ...byte) []byte {
	return append(binary.LittleEndian.AppendUint32([]byte{kind}, count), items...)
}

func TestResultsCodecRejectsMalformed(t *testing.T) {
	// a reject: partition 1, offset 2 (zig-zag), topic "ab", reason "",
	// detail "c", key nil, value "v"
	rejectItem := []byte{2, 4, 2, 0, 1, 0, 2, 'v'}
	good := codecSeal(1, codecSection(4, 1, rejectItem...), "abc")
	var r Results
	if err := DecodeResults(good, &r); err != nil {
		t.Fatalf("hand-built message: %v", err)
	}
	if d := codecDiff(&Results{Rejects: []Reject{{Topic: "ab", Partition: 1, Offset: 2, Detail: "c", Value: []byte("v")}}}, &r); d != "" {
		t.Fatalf("hand-built message: %s", d)
	}
	shiftMsg := mustEncode(t, &Results{Shifts: codecSample().Shifts[:1]}, MinResultsMessage)[0]
	shiftMeta := shiftMsg[5 : len(shiftMsg)-8-int(binary.LittleEndian.Uint32(shiftMsg[len(shiftMsg)-8:]))]
	shiftHeap := string(shiftMsg[5+len(shiftMeta) : len(shiftMsg)-8])
	withFlags := func(b byte) []byte {
		m := bytes.Clone(shiftMeta)
		m[5+112] = b
		return m
	}
	var huge []byte
	for range 1000 {
		huge = append(huge, rejectItem...)
	}

	for _, c := range []struct {
		name    string
		msg     []byte
		version bool
	}{
		{"version 4", codecSeal(4, codecSection(4, 1, rejectItem...), "abc"), true},
		{"version 0", codecSeal(0, nil, ""), true},
		{"bad magic", append([]byte("STKQ"), good[4:]...), false},
		{"heap length beyond the message", func() []byte {
			m := bytes.Clone(good[:len(good)-4])
			binary.LittleEndian.PutUint32(m[len(m)-4:], 1<<31)
			return binary.LittleEndian.AppendUint32(m, crc32.Checksum(m, crc32.MakeTable(crc32.Castagnoli)))
		}(), false},
		{"unused heap bytes", codecSeal(1, codecSection(4, 1, rejectItem...), "abcd"), false},
		{"strings beyond the heap", codecSeal(1, codecSection(4, 1, rejectItem...), "ab"), false},
		{"kind 0", codecSeal(1, codecSection(0, 0), ""), false},
		{"kind 5", codecSeal(1, codecSection(5, 0), ""), false},
		{"kind repeated", codecSeal(1, append(codecSection(4, 1, rejectItem...), codecSection(4, 1, rejectItem...)...), "abcabc"), false},
		{"kinds out of order", codecSeal(1, append(codecSection(4, 0), codecSection(3, 0)...), ""), false},
		{"section header cut short", codecSeal(1, append(codecSection(4, 1, rejectItem...), 1, 0), "abc"), false},
		{"count beyond the items", codecSeal(1, codecSection(4, 2, rejectItem...), "abc"), false},
		{"count beyond the bytes", codecSeal(1, codecSection(4, math.MaxUint32, huge...), ""), false},
		{"shift count beyond the bytes", codecSeal(1, codecSection(1, 1<<20, huge...), ""), false},
		{"value beyond the bytes", codecSeal(1, codecSection(4, 1, 2, 4, 2, 0, 1, 0, 9, 'v'), "abc"), false},
		{"partition beyond int32", codecSeal(1, codecSection(4, 1, append(binary.AppendVarint(nil, 1<<31), 4, 2, 0, 1, 0, 2, 'v')...), "abc"), false},
		{"varint overflow", codecSeal(1, codecSection(4, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 4, 2, 0, 1, 0, 2, 'v'), "abc"), false},
		{"varint cut short", codecSeal(1, codecSection(4, 1, 2, 4, 2, 0, 1, 0, 0x80), "abc"), false},
		{"second item cut short", codecSeal(1, codecSection(4, 2, append(rejectItem, 0, 0, 0, 0, 0, 0, 0x80)...), "abc"), false},
		{"flag 4", codecSeal(2, withFlags(4), shiftHeap), false},
		{"nanoseconds ≥ 1e9", codecSeal(1, func() []byte {
			start := codecSample().Shifts[0].ShiftStart
			at := 5 + shiftFixed + 1 // after the crew size
			end := at + len(binary.AppendVarint(nil, start.Unix())) + len(binary.AppendUvarint(nil, uint64(start.Nanosecond())))
			m := append(bytes.Clone(shiftMeta[:at]), 0, 0x80, 0x94, 0xeb, 0xdc, 0x03) // 0 s, 1e9 ns
			return append(m, shiftMeta[end:]...)
		}(), shiftHeap), false},
	} {
		before := Results{Rejects: []Reject{{Topic: "prior"}}}
		r := Results{Rejects: []Reject{{Topic: "prior"}}}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		allocated := ms.TotalAlloc
		err := DecodeResults(c.msg, &r)
		runtime.ReadMemStats(&ms)
		if c.version {
			if !errors.Is(err, ErrResultsVersion) {
				t.Errorf("%s: err %v, want ErrResultsVersion", c.name, err)
			}
		} else if !errors.Is(err, ErrResultsCorrupt) {
			t.Errorf("%s: err %v, want ErrResultsCorrupt", c.name, err)
		}
		if d := codecDiff(&before, &r); d != "" {
			t.Errorf("%s: results changed: %s", c.name, d)
		}
		if a := ms.TotalAlloc - allocated; a > 64<<10+uint64(len(c.msg))*16 {
			t.Errorf("%s: %d bytes allocated for a %d-byte message", c.name, a, len(c.msg))
		}
	}
	if err := DecodeResults(codecSeal(2, withFlags(1), shiftHeap), &r); err != nil {
		t.Errorf("the unbroken shift: %v", err)
	}
}

// TestResultsVersion1 reads a message of the previous version: no
// Unchecked flag, no positions.
func TestResultsVersion1(t *testing.T) {
	sh := codecSample().Shifts[0]
	sh.Unchecked = false
	msg := mustEncode(t, &Results{Shifts: []processors.Shift{sh}, Positions: []int64{sh.Offset}}, MinResultsMessage)[0]
	heapLen := int(binary.LittleEndian.Uint32(msg[len(msg)-8:]))
	meta := bytes.Clone(msg[5 : len(msg)-8-heapLen])
	heap := string(msg[len(msg)-8-heapLen : len(msg)-8])
	// version 1 has no position: cut its varint (0, one byte) after Offset
	at := 5 + shiftFixed + 1 // after the crew size
	at += len(binary.AppendVarint(nil, sh.ShiftStart.Unix())) + len(binary.AppendUvarint(nil, uint64(sh.ShiftStart.Nanosecond())))
	at += len(binary.AppendVarint(nil, int64(sh.Partition))) + len(binary.AppendVarint(nil, sh.Offset))
	if meta[at] != 0 {
		t.Fatalf("byte %d is %#x, want the position's 0", at, meta[at])
	}
	v1 := append(meta[:at:at], meta[at+1:]...)
	for _, c := range []struct {
		name    string
		flags   byte
		wantErr bool
	}{
		{"late", 1, false},
		{"on time", 0, false},
		{"unchecked is not a version-1 flag", 3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := bytes.Clone(v1)
			m[5+112] = c.flags
			var r Results
			err := DecodeResults(codecSeal(1, m, heap), &r)
			if c.wantErr {
				if !errors.Is(err, ErrResultsCorrupt) {
					t.Fatalf("err %v, want ErrResultsCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := sh
			want.Late = c.flags == 1
			if d := codecDiff(&Results{Shifts: []processors.Shift{want}, Positions: []int64{-1}}, &r); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func FuzzDecodeResults(f *testing.F) {
	s := codecSample()
	for _, r := range []*Results{
		s, {}, {Shifts: s.Shifts[:1]}, {Alerts: s.Alerts[:2]}, {Norms: s.Norms[1:2]}, {Rejects: s.Rejects},
		{Shifts: codecShifts(3)},
	} {
		msgs, err := EncodeResults(nil, r, MinResultsMessage)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msgs[0])
		f.Add(msgs[0][:len(msgs[0])/2])
	}
	f.Add([]byte{})
	f.Add([]byte("STKR\x01"))
	f.Add(codecSeal(1, codecSection(4, 1, 2, 4, 2, 0, 1, 0, 2, 'v'), "abc"))

	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(msg []byte) {
			prior := Results{Norms: []processors.NormRow{{Day: 1}}}
			r := Results{Norms: []processors.NormRow{{Day: 1}}}
			err := DecodeResults(msg, &r)
			if err != nil {
				codecCheckError(t, "fuzzed", err, &r, prior)
				return
			}
			if got := len(r.Shifts)*minShift + len(r.Alerts)*minAlert + len(r.Norms)*minNorm + len(r.Rejects)*minReject; got > len(msg)+minNorm {
				t.Fatalf("%d bytes decoded to items needing %d", len(msg), got)
			}
			// what decodes encodes to something that decodes the same
			again, err := EncodeResults(nil, &r, max(MinResultsMessage, 2*len(msg)))
			if err != nil {
				t.Fatal(err)
			}
			var r2 Results
			mustDecode(t, again, &r2)
			if d := codecDiff(&r, &r2); d != "" {
				t.Fatal(d)
			}
		}
		check(data)
		// reach past the checksum: the same bytes with a correct one
		if len(data) >= 13 {
			m := bytes.Clone(data)
			binary.LittleEndian.PutUint32(m[len(m)-4:], crc32.Checksum(m[:len(m)-4], crc32.MakeTable(crc32.Castagnoli)))
			check(m)
		}
	})
}

func codecBenchResults() (*Results, [][]byte) {
	r := &Results{Shifts: codecShifts(10_000)}
	msgs, err := EncodeResults(nil, r, 1<<20)
	if err != nil {
		panic(err)
	}
	return r, msgs
}

func codecBytes(msgs [][]byte) int64 {
	var n int64
	for _, m := range msgs {
		n += int64(len(m))
	}
	return n
}

func BenchmarkEncodeResults(b *testing.B) {
	r, msgs := codecBenchResults()
	b.SetBytes(codecBytes(msgs))
	b.ReportAllocs()
	var err error
	for b.Loop() {
		if msgs, err = EncodeResults(msgs[:0], r, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(r.Shifts))*float64(b.N)/b.Elapsed().Seconds(), "shifts/s")
}

func BenchmarkDecodeResults(b *testing.B) {
	r, msgs := codecBenchResults()
	b.SetBytes(codecBytes(msgs))
	b.ReportAllocs()
	var got Results
	for b.Loop() {
		clear(got.Shifts)
		got.Shifts = got.Shifts[:0]
		for _, m := range msgs {
			if err := DecodeResults(m, &got); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(r.Shifts))*float64(b.N)/b.Elapsed().Seconds(), "shifts/s")
}

// TestResultsVersion2 reads an alert of the previous version, which has no
// flags byte (and so is on time), and refuses flags this version does not
// define.
func TestResultsVersion2(t *testing.T) {
	a := codecSample().Alerts[0]
	msg := mustEncode(t, &Results{Alerts: []processors.Alert{a}}, MinResultsMessage)[0]
	heapLen := int(binary.LittleEndian.Uint32(msg[len(msg)-8:]))
	meta := bytes.Clone(msg[5 : len(msg)-8-heapLen])
	heap := string(msg[len(msg)-8-heapLen : len(msg)-8])
	flagsAt := sectionHeader + 5*8 // the section's header, then five floats
	if meta[flagsAt] != flagLate {
		t.Fatalf("byte %d is %#x, want the late flag", flagsAt, meta[flagsAt])
	}
	t.Run("version 2", func(t *testing.T) {
		v2 := append(meta[:flagsAt:flagsAt], meta[flagsAt+1:]...)
		var r Results
		if err := DecodeResults(codecSeal(2, v2, heap), &r); err != nil {
			t.Fatal(err)
		}
		want := a
		want.Late = false
		if d := codecDiff(&Results{Alerts: []processors.Alert{want}}, &r); d != "" {
			t.Fatal(d)
		}
	})
	t.Run("an unknown flag", func(t *testing.T) {
		m := bytes.Clone(meta)
		m[flagsAt] = 2
		var r Results
		if err := DecodeResults(codecSeal(3, m, heap), &r); !errors.Is(err, ErrResultsCorrupt) {
			t.Fatalf("err %v, want ErrResultsCorrupt", err)
		}
	})
}
