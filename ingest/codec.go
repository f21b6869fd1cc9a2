package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// Results is what processing one run of input messages of one partition produced.
type Results struct {
	Shifts []processors.Shift
	// Positions has, for each shift, the offset of the message it came from
	// in the partition the processor read (the input topic's, or the
	// repartition topic's when the input is re-keyed), or -1 when unknown
	// (a version-1 message). A partition's positions only rise, and a
	// processor that replays input after a restart produces the same
	// shift at the same position: the sink skips what lies below the
	// position it has stored.
	Positions []int64
	Alerts    []processors.Alert
	Norms     []processors.NormRow
	Rejects   []Reject
}

// Errors of the results codec.
var (
	// ErrResultsCorrupt: the message is not a results message, or it was
	// damaged or cut short.
	ErrResultsCorrupt = errors.New("corrupt results message")
	// ErrResultsVersion: an intact results message of a format version this
	// program does not read.
	ErrResultsVersion = errors.New("unsupported results message version")
	// ErrResultTooLarge: one item does not fit in a message of its own.
	ErrResultTooLarge = errors.New("result item larger than the message size limit")
)

// ResultTooLargeError says which item did not fit in a message on its own.
// It wraps ErrResultTooLarge.
type ResultTooLargeError struct {
	Kind  string // "shift", "alert", "norm" or "reject"
	Index int    // in the Results slice of that kind
	Size  int    // length of a message holding the item alone
	Max   int    // the limit it was encoded under
}

func (e *ResultTooLargeError) Error() string {
	return fmt.Sprintf("%s: %s %d needs a %d-byte message, limit %d", ErrResultTooLarge, e.Kind, e.Index, e.Size, e.Max)
}

func (e *ResultTooLargeError) Unwrap() error { return ErrResultTooLarge }

// Bounds of EncodeResults' maxBytes.
const (
	MinResultsMessage = 64 << 10
	MaxResultsMessage = math.MaxInt32
)

// Results message format, version 3. All fixed-width integers are little
// endian.
//
//	magic    "STKR"
//	version  1 byte (3; versions 1 and 2 are still read)
//	sections in increasing kind order, each kind at most once:
//	    kind   1 byte: 1 shifts, 2 alerts, 3 norms, 4 rejects
//	    count  uint32
//	    count items of the kind (below)
//	heap     the bytes of every string of every item, in the order the
//	         items refer to them
//	heapLen  uint32: length of heap
//	crc      uint32: CRC-32C (Castagnoli) of everything before it
//
// The CRC is the last four bytes in every version, so a damaged message is
// reported as corrupt rather than as of an unknown version.
//
// An item is its fixed-width fields first, then varints, then the lengths
// (uvarint) of its strings, whose bytes are in the heap. Floats are the
// 8-byte IEEE-754 bits (NaN payloads kept); signed integers zig-zag varints;
// bools one byte, 0 or 1; a time is Unix seconds (varint) and nanoseconds
// (uvarint), decoded in UTC, so the zero time stays zero. Byte slices (a
// reject's key and value) are inline: uvarint length+1, 0 for nil, then
// the bytes.
//
//	shift:  ShiftHours Output Scrap Rate CrewRate ScrapShare
//	        Norm.Median Norm.Mean Norm.P90 Norm.MAD Norm.Bulk
//	        CrewNorm Ratio CrewRatio (float64 ×14), flags (1 byte:
//	        bit 0 Late, bit 1 Unchecked; version 1 has Late only);
//	        CrewSize, ShiftStart, Partition, Offset,
//	        position − Offset (version 2 only), Norm.Count;
//	        strings EventID PlantID Industry Section Role WorkerID Unit
//	alert:  Rate NormRate Ratio ScrapShare BulkShare (float64 ×5),
//	        flags (1 byte: bit 0 Late; from version 3);
//	        Day, GroupSize, DetectedAt;
//	        strings ID Type PlantID Industry Role Unit WorkerID EventID
//	norm:   Median Mean P90 MAD Bulk (float64 ×5); Day, Count;
//	        strings PlantID Role Unit
//	reject: Partition, Offset; strings Topic Reason Detail; Key, Value
const (
	resultsMagic   = "STKR"
	resultsVersion = 3

	resultsHeader  = len(resultsMagic) + 1
	resultsTrailer = 8 // heapLen, crc
	sectionHeader  = 5 // kind, count

	kindShift  = 1
	kindAlert  = 2
	kindNorm   = 3
	kindReject = 4

	shiftFixed = 14*8 + 1
	alertFixed = 5*8 + 1 // version 3; 5*8 before
	normFixed  = 5 * 8

	// Least encoded length of an item, to bound counts by the bytes left.
	minShift  = shiftFixed + 6 + 7
	minAlert  = alertFixed + 4 + 8
	minNorm   = normFixed + 2 + 3
	minReject = 2 + 3 + 2
)

var resultsCRC = crc32.MakeTable(crc32.Castagnoli)

var kindNames = [...]string{kindShift: "shift", kindAlert: "alert", kindNorm: "norm", kindReject: "reject"}

// EncodeResults appends to dst the messages carrying r, each at most maxBytes
// long, and returns the extended slice. maxBytes is between
// MinResultsMessage and MaxResultsMessage; it should leave room for the
// broker's per-record overhead. Items keep their order within each kind;
// shifts come first, then alerts, norms and rejects, and a message may hold
// the end of one kind and the start of the next. Empty results are one
// message without items, as are nil results.
//
// An item that does not fit in a message of its own (in practice only a
// reject with a huge value) fails the whole call with a
// *ResultTooLargeError, which wraps ErrResultTooLarge; dst is then returned
// at its original length.
//
// Buffers in dst[len(dst):cap(dst)] are reused: pass dst[:0] only once the
// messages it held have been sent.
func EncodeResults(dst [][]byte, r *Results, maxBytes int) ([][]byte, error) {
	if maxBytes < MinResultsMessage || maxBytes > MaxResultsMessage {
		return dst, fmt.Errorf("encoding results: message size limit %d outside [%d, %d]", maxBytes, MinResultsMessage, MaxResultsMessage)
	}
	if r == nil {
		r = &Results{}
	}
	e := encoderPool.Get().(*resultsEncoder)
	defer e.release()
	e.start(dst, r, maxBytes)

	for kind, n := range [...]int{kindShift: len(r.Shifts), kindAlert: len(r.Alerts), kindNorm: len(r.Norms), kindReject: len(r.Rejects)} {
		for i := range n {
			if err := e.add(byte(kind), i); err != nil {
				return dst, err
			}
		}
	}
	e.finish()
	return e.out, nil
}

// Rough encoded sizes, to size a new message buffer.
const (
	estShift  = 256
	estAlert  = 200
	estNorm   = 80
	estReject = 256
)

var estSize = [...]int{kindShift: estShift, kindAlert: estAlert, kindNorm: estNorm, kindReject: estReject}

var leastSize = [...]int{kindShift: minShift, kindAlert: minAlert, kindNorm: minNorm, kindReject: minReject}

type resultsEncoder struct {
	out  [][]byte
	r    *Results
	max  int
	msg  []byte // header and sections of the message being built
	heap []byte // its string bytes

	kind     byte // of the open section; 0 when none
	countPos int
	count    uint32 // items in the open section
	items    int    // items in the message
}

var encoderPool = sync.Pool{New: func() any { return new(resultsEncoder) }}

func (e *resultsEncoder) release() {
	if cap(e.heap) > 4<<20 {
		e.heap = nil
	}
	heap := e.heap[:0]
	*e = resultsEncoder{heap: heap}
	encoderPool.Put(e)
}

func (e *resultsEncoder) start(dst [][]byte, r *Results, maxBytes int) {
	e.out, e.r, e.max = dst, r, maxBytes
	e.newMessage(kindShift, 0)
}

// newMessage starts a message in a reused buffer of out's spare capacity, or
// in a new one sized for the items from index of kind on.
func (e *resultsEncoder) newMessage(kind byte, index int) {
	var buf []byte
	if n := len(e.out); n < cap(e.out) {
		buf = e.out[:n+1][n][:0]
	}
	if buf == nil {
		r := e.r
		left := [...]int{kindShift: len(r.Shifts), kindAlert: len(r.Alerts), kindNorm: len(r.Norms), kindReject: len(r.Rejects)}
		left[kind] -= index
		est := resultsHeader + resultsTrailer + 4*sectionHeader
		for k := kind; k <= kindReject; k++ {
			est += left[k] * estSize[k]
		}
		buf = make([]byte, 0, min(est, e.max))
	}
	e.msg = append(buf, resultsMagic...)
	e.msg = append(e.msg, resultsVersion)
	e.heap = e.heap[:0]
	e.kind, e.count, e.items = 0, 0, 0
}

func (e *resultsEncoder) size() int { return len(e.msg) + len(e.heap) + resultsTrailer }

// add places item index of kind in the current message or, when it does not
// fit, in a new one.
func (e *resultsEncoder) add(kind byte, index int) error {
	for {
		opened := e.kind != kind
		if opened {
			e.closeSection()
			e.kind = kind
			e.msg = append(e.msg, kind, 0, 0, 0, 0)
			e.countPos = len(e.msg) - 4
			e.count = 0
		}
		mark, hmark := len(e.msg), len(e.heap)
		switch kind {
		case kindShift:
			pos := int64(-1)
			if index < len(e.r.Positions) {
				pos = e.r.Positions[index]
			}
			e.shift(&e.r.Shifts[index], pos)
		case kindAlert:
			e.alert(&e.r.Alerts[index])
		case kindNorm:
			e.norm(&e.r.Norms[index])
		default:
			e.reject(&e.r.Rejects[index])
		}
		if e.size() <= e.max {
			e.count++
			e.items++
			return nil
		}
		if e.items == 0 {
			return &ResultTooLargeError{Kind: kindNames[kind], Index: index, Size: e.size(), Max: e.max}
		}
		e.msg, e.heap = e.msg[:mark], e.heap[:hmark]
		if opened {
			e.msg = e.msg[:mark-sectionHeader]
			e.kind = 0
		}
		e.finish()
		e.newMessage(kind, index)
	}
}

func (e *resultsEncoder) closeSection() {
	if e.kind != 0 {
		binary.LittleEndian.PutUint32(e.msg[e.countPos:], e.count)
	}
}

// finish completes the current message and appends it to out.
func (e *resultsEncoder) finish() {
	e.closeSection()
	e.kind = 0
	m := append(e.msg, e.heap...)
	m = binary.LittleEndian.AppendUint32(m, uint32(len(e.heap)))
	m = binary.LittleEndian.AppendUint32(m, crc32.Checksum(m, resultsCRC))
	e.out = append(e.out, m)
	e.msg = nil
}

func (e *resultsEncoder) f64(v float64) {
	e.msg = binary.LittleEndian.AppendUint64(e.msg, math.Float64bits(v))
}

func (e *resultsEncoder) varint(v int64) { e.msg = binary.AppendVarint(e.msg, v) }

func (e *resultsEncoder) str(s string) {
	e.msg = binary.AppendUvarint(e.msg, uint64(len(s)))
	e.heap = append(e.heap, s...)
}

func (e *resultsEncoder) time(t time.Time) {
	e.msg = binary.AppendVarint(e.msg, t.Unix())
	e.msg = binary.AppendUvarint(e.msg, uint64(t.Nanosecond()))
}

func (e *resultsEncoder) bytes(b []byte) {
	if b == nil {
		e.msg = append(e.msg, 0)
		return
	}
	e.msg = binary.AppendUvarint(e.msg, uint64(len(b))+1)
	e.msg = append(e.msg, b...)
}

// Flags of a shift item.
const (
	flagLate      = 1 << 0
	flagUnchecked = 1 << 1
)

func (e *resultsEncoder) shift(s *processors.Shift, pos int64) {
	e.f64(s.ShiftHours)
	e.f64(s.Output)
	e.f64(s.Scrap)
	e.f64(s.Rate)
	e.f64(s.CrewRate)
	e.f64(s.ScrapShare)
	e.f64(s.Norm.Median)
	e.f64(s.Norm.Mean)
	e.f64(s.Norm.P90)
	e.f64(s.Norm.MAD)
	e.f64(s.Norm.Bulk)
	e.f64(s.CrewNorm)
	e.f64(s.Ratio)
	e.f64(s.CrewRatio)
	flags := byte(0)
	if s.Late {
		flags |= flagLate
	}
	if s.Unchecked {
		flags |= flagUnchecked
	}
	e.msg = append(e.msg, flags)
	e.varint(int64(s.CrewSize))
	e.time(s.ShiftStart)
	e.varint(int64(s.Partition))
	e.varint(s.Offset)
	// the same as Offset unless the input was re-keyed: one byte
	e.varint(pos - s.Offset)
	e.varint(int64(s.Norm.Count))
	e.str(s.EventID)
	e.str(s.PlantID)
	e.str(s.Industry)
	e.str(s.Section)
	e.str(s.Role)
	e.str(s.WorkerID)
	e.str(s.Unit)
}

func (e *resultsEncoder) alert(a *processors.Alert) {
	e.f64(a.Rate)
	e.f64(a.NormRate)
	e.f64(a.Ratio)
	e.f64(a.ScrapShare)
	e.f64(a.BulkShare)
	var flags byte
	if a.Late {
		flags |= flagLate
	}
	e.msg = append(e.msg, flags)
	e.varint(int64(a.Day))
	e.varint(int64(a.GroupSize))
	e.time(a.DetectedAt)
	e.str(a.ID)
	e.str(string(a.Type))
	e.str(a.PlantID)
	e.str(a.Industry)
	e.str(a.Role)
	e.str(a.Unit)
	e.str(a.WorkerID)
	e.str(a.EventID)
}

func (e *resultsEncoder) norm(n *processors.NormRow) {
	e.f64(n.Norm.Median)
	e.f64(n.Norm.Mean)
	e.f64(n.Norm.P90)
	e.f64(n.Norm.MAD)
	e.f64(n.Norm.Bulk)
	e.varint(int64(n.Day))
	e.varint(int64(n.Norm.Count))
	e.str(n.Group.PlantID)
	e.str(n.Group.Role)
	e.str(n.Group.Unit)
}

func (e *resultsEncoder) reject(j *Reject) {
	e.varint(int64(j.Partition))
	e.varint(j.Offset)
	e.str(j.Topic)
	e.str(j.Reason)
	e.str(j.Detail)
	e.bytes(j.Key)
	e.bytes(j.Value)
}

// DecodeResults appends the items of one message to r. The strings of a
// message's items share one allocation, which also holds nothing else; no
// item refers to msg, so msg may be reused at once. On error r keeps its
// original lengths.
func DecodeResults(msg []byte, r *Results) error {
	n := len(msg)
	if n < resultsHeader+resultsTrailer || string(msg[:len(resultsMagic)]) != resultsMagic {
		return fmt.Errorf("%w: not a results message", ErrResultsCorrupt)
	}
	if crc32.Checksum(msg[:n-4], resultsCRC) != binary.LittleEndian.Uint32(msg[n-4:]) {
		return fmt.Errorf("%w: checksum mismatch", ErrResultsCorrupt)
	}
	v := msg[len(resultsMagic)]
	if v < 1 || v > resultsVersion {
		return fmt.Errorf("%w: version %d", ErrResultsVersion, v)
	}
	heapLen := uint64(binary.LittleEndian.Uint32(msg[n-8:]))
	if heapLen > uint64(n-resultsHeader-resultsTrailer) {
		return fmt.Errorf("%w: heap length %d beyond the message", ErrResultsCorrupt, heapLen)
	}
	heapAt := n - resultsTrailer - int(heapLen)
	d := resultsDecoder{meta: msg[resultsHeader:heapAt], heap: string(msg[heapAt : n-resultsTrailer]), version: v}

	n0 := [4]int{len(r.Shifts), len(r.Alerts), len(r.Norms), len(r.Rejects)}
	// Positions may lag Shifts when r was filled by hand: pad with unknown.
	for len(r.Positions) < n0[0] {
		r.Positions = append(r.Positions, -1)
	}
	r.Positions = r.Positions[:n0[0]]
	if err := d.sections(r); err != nil {
		clear(r.Shifts[n0[0]:])
		r.Shifts = r.Shifts[:n0[0]]
		r.Positions = r.Positions[:n0[0]]
		clear(r.Alerts[n0[1]:])
		r.Alerts = r.Alerts[:n0[1]]
		clear(r.Norms[n0[2]:])
		r.Norms = r.Norms[:n0[2]]
		clear(r.Rejects[n0[3]:])
		r.Rejects = r.Rejects[:n0[3]]
		return err
	}
	return nil
}

// resultsDecoder reads the sections of a message. A read past the end sets
// bad and yields zero values, so items are checked once each.
type resultsDecoder struct {
	meta []byte
	p    int // in meta; never beyond its end
	heap string
	hp   int // in heap
	bad  bool

	version byte
}

func (d *resultsDecoder) sections(r *Results) error {
	var last byte
	for d.p < len(d.meta) {
		if len(d.meta)-d.p < sectionHeader {
			return fmt.Errorf("%w: section header cut short", ErrResultsCorrupt)
		}
		kind := d.meta[d.p]
		count32 := binary.LittleEndian.Uint32(d.meta[d.p+1:])
		d.p += sectionHeader
		if kind <= last || kind > kindReject {
			return fmt.Errorf("%w: section kind %d after %d", ErrResultsCorrupt, kind, last)
		}
		last = kind
		if uint64(count32) > uint64((len(d.meta)-d.p)/leastSize[kind]) {
			return fmt.Errorf("%w: %d %ss in %d bytes", ErrResultsCorrupt, count32, kindNames[kind], len(d.meta)-d.p)
		}
		count := int(count32)
		switch kind {
		case kindShift:
			r.Shifts = slices.Grow(r.Shifts, count)
			for range count {
				at := d.p
				r.Shifts = r.Shifts[:len(r.Shifts)+1]
				r.Positions = append(r.Positions, d.shift(&r.Shifts[len(r.Shifts)-1]))
				if d.bad {
					return d.itemError(kind, at)
				}
			}
		case kindAlert:
			r.Alerts = slices.Grow(r.Alerts, count)
			for range count {
				at := d.p
				r.Alerts = r.Alerts[:len(r.Alerts)+1]
				d.alert(&r.Alerts[len(r.Alerts)-1])
				if d.bad {
					return d.itemError(kind, at)
				}
			}
		case kindNorm:
			r.Norms = slices.Grow(r.Norms, count)
			for range count {
				at := d.p
				r.Norms = r.Norms[:len(r.Norms)+1]
				d.norm(&r.Norms[len(r.Norms)-1])
				if d.bad {
					return d.itemError(kind, at)
				}
			}
		case kindReject:
			r.Rejects = slices.Grow(r.Rejects, count)
			for range count {
				at := d.p
				r.Rejects = r.Rejects[:len(r.Rejects)+1]
				d.reject(&r.Rejects[len(r.Rejects)-1])
				if d.bad {
					return d.itemError(kind, at)
				}
			}
		}
	}
	if d.hp != len(d.heap) {
		return fmt.Errorf("%w: %d heap bytes unused", ErrResultsCorrupt, len(d.heap)-d.hp)
	}
	return nil
}

func (d *resultsDecoder) itemError(kind byte, at int) error {
	return fmt.Errorf("%w: bad %s at byte %d", ErrResultsCorrupt, kindNames[kind], resultsHeader+at)
}

func (d *resultsDecoder) fail() {
	d.bad = true
	d.p = len(d.meta)
}

// fixed returns the next n bytes of meta, or nil.
func (d *resultsDecoder) fixed(n int) []byte {
	if len(d.meta)-d.p < n {
		d.fail()
		return nil
	}
	b := d.meta[d.p : d.p+n : d.p+n]
	d.p += n
	return b
}

func (d *resultsDecoder) uvarint() uint64 {
	if d.p < len(d.meta) {
		if b := d.meta[d.p]; b < 0x80 {
			d.p++
			return uint64(b)
		}
	}
	v, n := binary.Uvarint(d.meta[d.p:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.p += n
	return v
}

func (d *resultsDecoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *resultsDecoder) int() int {
	v := d.varint()
	if int64(int(v)) != v {
		d.fail()
	}
	return int(v)
}

func (d *resultsDecoder) int32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail()
	}
	return int32(v)
}

func (d *resultsDecoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.heap)-d.hp) {
		d.fail()
		return ""
	}
	s := d.heap[d.hp : d.hp+int(n)]
	d.hp += int(n)
	return s
}

func (d *resultsDecoder) bytes() []byte {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	n--
	if n > uint64(len(d.meta)-d.p) {
		d.fail()
		return nil
	}
	b := make([]byte, n)
	copy(b, d.meta[d.p:])
	d.p += int(n)
	return b
}

func (d *resultsDecoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func f64(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }

// shift decodes one shift and returns its position (-1 in version 1).
func (d *resultsDecoder) shift(s *processors.Shift) (pos int64) {
	b := d.fixed(shiftFixed)
	if b == nil {
		return -1
	}
	_ = b[shiftFixed-1]
	s.ShiftHours = f64(b[0:])
	s.Output = f64(b[8:])
	s.Scrap = f64(b[16:])
	s.Rate = f64(b[24:])
	s.CrewRate = f64(b[32:])
	s.ScrapShare = f64(b[40:])
	s.Norm.Median = f64(b[48:])
	s.Norm.Mean = f64(b[56:])
	s.Norm.P90 = f64(b[64:])
	s.Norm.MAD = f64(b[72:])
	s.Norm.Bulk = f64(b[80:])
	s.CrewNorm = f64(b[88:])
	s.Ratio = f64(b[96:])
	s.CrewRatio = f64(b[104:])
	known := byte(flagLate | flagUnchecked)
	if d.version == 1 {
		known = flagLate
	}
	flags := b[112]
	if flags&^known != 0 {
		d.fail()
	}
	s.Late = flags&flagLate != 0
	s.Unchecked = flags&flagUnchecked != 0
	s.CrewSize = d.int()
	s.ShiftStart = d.time()
	s.Partition = d.int32()
	s.Offset = d.varint()
	pos = -1
	if d.version >= 2 {
		pos = s.Offset + d.varint()
	}
	s.Norm.Count = d.int()
	s.EventID = d.str()
	s.PlantID = d.str()
	s.Industry = d.str()
	s.Section = d.str()
	s.Role = d.str()
	s.WorkerID = d.str()
	s.Unit = d.str()
	return pos
}

func (d *resultsDecoder) alert(a *processors.Alert) {
	n := alertFixed
	if d.version < 3 {
		n-- // no flags
	}
	b := d.fixed(n)
	if b == nil {
		return
	}
	_ = b[5*8-1]
	a.Rate = f64(b[0:])
	a.NormRate = f64(b[8:])
	a.Ratio = f64(b[16:])
	a.ScrapShare = f64(b[24:])
	a.BulkShare = f64(b[32:])
	if d.version >= 3 {
		if b[40]&^flagLate != 0 {
			d.fail()
		}
		a.Late = b[40]&flagLate != 0
	}
	a.Day = shift.Day(d.int32())
	a.GroupSize = d.int()
	a.DetectedAt = d.time()
	a.ID = d.str()
	a.Type = processors.AlertType(d.str())
	a.PlantID = d.str()
	a.Industry = d.str()
	a.Role = d.str()
	a.Unit = d.str()
	a.WorkerID = d.str()
	a.EventID = d.str()
}

func (d *resultsDecoder) norm(n *processors.NormRow) {
	b := d.fixed(normFixed)
	if b == nil {
		return
	}
	_ = b[normFixed-1]
	n.Norm.Median = f64(b[0:])
	n.Norm.Mean = f64(b[8:])
	n.Norm.P90 = f64(b[16:])
	n.Norm.MAD = f64(b[24:])
	n.Norm.Bulk = f64(b[32:])
	n.Day = shift.Day(d.int32())
	n.Norm.Count = d.int()
	n.Group.PlantID = d.str()
	n.Group.Role = d.str()
	n.Group.Unit = d.str()
}

func (d *resultsDecoder) reject(j *Reject) {
	j.Partition = d.int32()
	j.Offset = d.varint()
	j.Topic = d.str()
	j.Reason = d.str()
	j.Detail = d.str()
	j.Key = d.bytes()
	j.Value = d.bytes()
}
