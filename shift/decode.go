package shift

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits of the contract beyond what JSON itself enforces.
const (
	// MaxValueBytes is the largest message value decoded; larger ones are
	// rejected unread so that one hostile message cannot hold megabytes of
	// parser state.
	MaxValueBytes = 1 << 20
	// MaxEventIDLen is the longest event_id, in characters.
	MaxEventIDLen = 128
	// MaxIDLen bounds every other identifier (plant, worker, role, …).
	MaxIDLen = 256
	// MaxDepth bounds nesting inside ignored (unknown) fields.
	MaxDepth = 32
	// MaxCrewSize and MaxOutput reject values no shift report can carry.
	MaxCrewSize = 10000
	MaxOutput   = 1e12
)

var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Reasons a record is bad. They are stable codes: they name the dead-letter
// header error.reason and the rejects.reason column, and dashboards group by
// them.
const (
	ReasonEmpty             = "empty_message"
	ReasonTooLarge          = "too_large"
	ReasonInvalidUTF8       = "invalid_utf8"
	ReasonInvalidJSON       = "invalid_json"
	ReasonTruncated         = "truncated_json"
	ReasonNotObject         = "not_object"
	ReasonTrailingData      = "trailing_data"
	ReasonDuplicateKey      = "duplicate_key"
	ReasonTooDeep           = "too_deep"
	ReasonMissingField      = "missing_field"
	ReasonWrongType         = "wrong_type"
	ReasonNumberOutOfRange  = "number_out_of_range"
	ReasonEmptyField        = "empty_field"
	ReasonFieldTooLong      = "field_too_long"
	ReasonControlCharacter  = "control_character"
	ReasonBadTimestamp      = "bad_timestamp"
	ReasonTimestampRange    = "timestamp_out_of_range"
	ReasonShiftHoursRange   = "shift_hours_out_of_range"
	ReasonNegativeOutput    = "negative_output"
	ReasonOutputRange       = "output_out_of_range"
	ReasonCrewSizeRange     = "crew_size_out_of_range"
	ReasonNegativeScrap     = "negative_scrap"
	ReasonScrapAboveOutput  = "scrap_above_output"
	ReasonUnsupportedEscape = "invalid_escape"
)

// ErrBadRecord is the sentinel every decoding failure wraps.
var ErrBadRecord = errors.New("bad shift record")

// BadRecordError says why a message is not a valid shift event.
type BadRecordError struct {
	Reason string // one of the Reason constants
	Field  string // the JSON field concerned, if any
	Detail string // human-readable detail
}

func (e *BadRecordError) Error() string {
	s := "bad shift record: " + e.Reason
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap makes errors.Is(err, ErrBadRecord) hold.
func (e *BadRecordError) Unwrap() error { return ErrBadRecord }

func bad(reason, field, detail string) *BadRecordError {
	return &BadRecordError{Reason: reason, Field: field, Detail: detail}
}

// Reason extracts the reason code of a decoding error ("" when err is not a
// *BadRecordError).
func Reason(err error) string {
	var b *BadRecordError
	if errors.As(err, &b) {
		return b.Reason
	}
	return ""
}

// field bits, for required-field and duplicate-key bookkeeping.
const (
	fEventID = 1 << iota
	fPlantID
	fIndustry
	fSection
	fRole
	fWorkerID
	fCrewSize
	fShiftStart
	fShiftHours
	fOutput
	fUnit
	fScrap
)

var required = []struct {
	bit  int
	name string
}{
	{fEventID, "event_id"}, {fPlantID, "plant_id"}, {fIndustry, "industry"},
	{fRole, "role"}, {fWorkerID, "worker_id"}, {fShiftStart, "shift_start"},
	{fShiftHours, "shift_hours"}, {fOutput, "output"}, {fUnit, "unit"},
}

// Decode parses and validates one message value. The error, when not nil, is
// a *BadRecordError.
func Decode(value []byte) (Event, error) {
	var ev Event
	if len(value) == 0 {
		return ev, bad(ReasonEmpty, "", "")
	}
	if len(value) > MaxValueBytes {
		return ev, bad(ReasonTooLarge, "", fmt.Sprintf("%d bytes, limit %d", len(value), MaxValueBytes))
	}
	if !utf8.Valid(value) {
		return ev, bad(ReasonInvalidUTF8, "", "")
	}
	d := decoder{b: value}
	if err := d.object(&ev); err != nil {
		return Event{}, err
	}
	d.ws()
	if d.i != len(d.b) {
		return Event{}, bad(ReasonTrailingData, "", fmt.Sprintf("at byte %d", d.i))
	}
	return ev, nil
}

type decoder struct {
	b       []byte
	i       int
	scratch []byte
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) eof() *BadRecordError { return bad(ReasonTruncated, "", "unexpected end of input") }

func (d *decoder) syntax(what string) *BadRecordError {
	return bad(ReasonInvalidJSON, "", fmt.Sprintf("%s at byte %d", what, d.i))
}

func (d *decoder) object(ev *Event) error {
	d.ws()
	if d.i >= len(d.b) {
		return d.eof()
	}
	if d.b[d.i] != '{' {
		if c := d.b[d.i]; c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n' {
			// valid JSON perhaps, but not an object
			if err := d.skip(0); err != nil {
				return err
			}
			return bad(ReasonNotObject, "", "")
		}
		return d.syntax("expected '{'")
	}
	d.i++
	seen := 0
	var unknown []string
	crew := 1.0
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++ // an empty object, which lacks every required field
	} else {
		for {
			d.ws()
			key, err := d.str()
			if err != nil {
				return err
			}
			if err := d.colon(); err != nil {
				return err
			}
			d.ws()
			if d.i >= len(d.b) {
				return d.eof()
			}
			if bit, name := fieldBit(key); bit == 0 {
				k := string(key)
				for _, u := range unknown {
					if u == k {
						return bad(ReasonDuplicateKey, k, "")
					}
				}
				unknown = append(unknown, k)
				if err := d.skip(0); err != nil {
					return err
				}
			} else {
				if seen&bit != 0 {
					return bad(ReasonDuplicateKey, name, "")
				}
				seen |= bit
				if err := d.field(ev, bit, name, &crew); err != nil {
					return err
				}
			}
			d.ws()
			if d.i >= len(d.b) {
				return d.eof()
			}
			if d.b[d.i] == ',' {
				d.i++
				continue
			}
			if d.b[d.i] == '}' {
				d.i++
				break
			}
			return d.syntax("expected ',' or '}'")
		}
	}
	for _, r := range required {
		if seen&r.bit == 0 {
			return bad(ReasonMissingField, r.name, "")
		}
	}
	return validate(ev, crew)
}

func fieldBit(key []byte) (int, string) {
	switch string(key) {
	case "event_id":
		return fEventID, "event_id"
	case "plant_id":
		return fPlantID, "plant_id"
	case "industry":
		return fIndustry, "industry"
	case "section":
		return fSection, "section"
	case "role":
		return fRole, "role"
	case "worker_id":
		return fWorkerID, "worker_id"
	case "crew_size":
		return fCrewSize, "crew_size"
	case "shift_start":
		return fShiftStart, "shift_start"
	case "shift_hours":
		return fShiftHours, "shift_hours"
	case "output":
		return fOutput, "output"
	case "unit":
		return fUnit, "unit"
	case "scrap":
		return fScrap, "scrap"
	}
	return 0, ""
}

func (d *decoder) field(ev *Event, bit int, name string, crew *float64) error {
	switch bit {
	case fCrewSize, fShiftHours, fOutput, fScrap:
		f, err := d.number(name)
		if err != nil {
			return err
		}
		switch bit {
		case fCrewSize:
			*crew = f
		case fShiftHours:
			ev.ShiftHours = f
		case fOutput:
			ev.Output = f
		case fScrap:
			ev.Scrap = f
		}
		return nil
	}
	if d.b[d.i] != '"' {
		return bad(ReasonWrongType, name, "expected a string")
	}
	raw, err := d.str()
	if err != nil {
		return err
	}
	if bit == fShiftStart {
		t, err := time.Parse(time.RFC3339Nano, string(raw))
		if err != nil || !isRFC3339(raw) {
			return bad(ReasonBadTimestamp, name, "not an RFC 3339 timestamp")
		}
		ev.ShiftStart = t.UTC()
		return nil
	}
	limit := MaxIDLen
	if bit == fEventID {
		limit = MaxEventIDLen
	}
	if n := utf8.RuneCount(raw); n > limit {
		return bad(ReasonFieldTooLong, name, fmt.Sprintf("%d characters, limit %d", n, limit))
	}
	for _, c := range raw {
		if c < 0x20 || c == 0x7f {
			return bad(ReasonControlCharacter, name, "")
		}
	}
	// Interning is left to the processors; here each field is one string.
	s := string(raw)
	switch bit {
	case fEventID:
		ev.EventID = s
	case fPlantID:
		ev.PlantID = s
	case fIndustry:
		ev.Industry = s
	case fSection:
		ev.Section = s
	case fRole:
		ev.Role = s
	case fWorkerID:
		ev.WorkerID = s
	case fUnit:
		ev.Unit = s
	}
	return nil
}

// isRFC3339 rejects what time.Parse tolerates but RFC 3339 does not: a
// lower-case 't' or 'z', a missing zone, a comma before the fraction of a
// second, and a zone offset beyond 23:59.
func isRFC3339(b []byte) bool {
	if len(b) < 20 || b[10] != 'T' || b[19] == ',' {
		return false
	}
	last := b[len(b)-1]
	if last == 'Z' {
		return true
	}
	off := b[len(b)-6:] // ±hh:mm
	return (off[0] == '+' || off[0] == '-') && off[3] == ':' &&
		twoDigits(off[1:3]) <= 23 && twoDigits(off[4:6]) <= 59
}

// twoDigits is the value of two ASCII digits, or 100 when they are not.
func twoDigits(b []byte) int {
	if b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 100
	}
	return int(b[0]-'0')*10 + int(b[1]-'0')
}

func validate(ev *Event, crew float64) error {
	if n := len(ev.EventID); n == 0 {
		return bad(ReasonEmptyField, "event_id", "")
	}
	for _, f := range [...]struct {
		v, name string
	}{{ev.PlantID, "plant_id"}, {ev.Industry, "industry"}, {ev.Role, "role"}, {ev.WorkerID, "worker_id"}, {ev.Unit, "unit"}} {
		if f.v == "" {
			return bad(ReasonEmptyField, f.name, "")
		}
	}
	if crew != math.Trunc(crew) {
		return bad(ReasonWrongType, "crew_size", "expected an integer")
	}
	if crew < 1 || crew > MaxCrewSize {
		return bad(ReasonCrewSizeRange, "crew_size", fmt.Sprintf("%g not in [1, %d]", crew, MaxCrewSize))
	}
	ev.CrewSize = int(crew)
	if ev.ShiftStart.Before(minTime) || !ev.ShiftStart.Before(maxTime) {
		return bad(ReasonTimestampRange, "shift_start", "outside [1900, 2100)")
	}
	if !(ev.ShiftHours > 0 && ev.ShiftHours <= 24) {
		return bad(ReasonShiftHoursRange, "shift_hours", fmt.Sprintf("%g not in (0, 24]", ev.ShiftHours))
	}
	if ev.Output < 0 {
		return bad(ReasonNegativeOutput, "output", "")
	}
	if ev.Output > MaxOutput {
		return bad(ReasonOutputRange, "output", fmt.Sprintf("%g above %g", ev.Output, MaxOutput))
	}
	if ev.Scrap < 0 {
		return bad(ReasonNegativeScrap, "scrap", "")
	}
	if ev.Scrap > ev.Output {
		return bad(ReasonScrapAboveOutput, "scrap", fmt.Sprintf("%g > output %g", ev.Scrap, ev.Output))
	}
	return nil
}

// number parses a JSON number; anything else is a type error.
func (d *decoder) number(field string) (float64, error) {
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	if d.i >= len(d.b) {
		return 0, d.eof()
	}
	c := d.b[d.i]
	if c < '0' || c > '9' {
		d.i = start
		if c == '"' || c == '{' || c == '[' || c == 't' || c == 'f' || c == 'n' {
			return 0, bad(ReasonWrongType, field, "expected a number")
		}
		return 0, d.syntax("invalid number")
	}
	if c == '0' {
		d.i++
	} else {
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		n := d.i
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
		if d.i == n {
			if d.i >= len(d.b) {
				return 0, d.eof()
			}
			return 0, d.syntax("invalid number")
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		n := d.i
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
		if d.i == n {
			if d.i >= len(d.b) {
				return 0, d.eof()
			}
			return 0, d.syntax("invalid number")
		}
	}
	f, err := strconv.ParseFloat(bytesToString(d.b[start:d.i]), 64)
	if err != nil || !finite(f) {
		return 0, bad(ReasonNumberOutOfRange, field, string(d.b[start:d.i]))
	}
	return f, nil
}

// str parses a JSON string at d.i and returns its unescaped bytes. The result
// aliases the input when there are no escapes, d.scratch otherwise: valid
// until the next call.
func (d *decoder) str() ([]byte, error) {
	if d.i >= len(d.b) {
		return nil, d.eof()
	}
	if d.b[d.i] != '"' {
		return nil, d.syntax("expected string")
	}
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := d.b[start:d.i]
			d.i++
			return s, nil
		}
		if c == '\\' {
			return d.strEscaped(start)
		}
		if c < 0x20 {
			return nil, d.syntax("control character in string")
		}
		d.i++
	}
	return nil, d.eof()
}

func (d *decoder) strEscaped(start int) ([]byte, error) {
	out := append(d.scratch[:0], d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			d.scratch = out
			return out, nil
		case c < 0x20:
			return nil, d.syntax("control character in string")
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		d.i++
		if d.i >= len(d.b) {
			return nil, d.eof()
		}
		e := d.b[d.i]
		d.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := d.hex4()
			if err != nil {
				return nil, err
			}
			if utf16.IsSurrogate(r) {
				// a high surrogate must be followed by an escaped low one
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					d.i += 2
					r2, err := d.hex4()
					if err != nil {
						return nil, err
					}
					r = utf16.DecodeRune(r, r2)
				} else if r < 0xdc00 && (d.i == len(d.b) || d.i+1 == len(d.b) && d.b[d.i] == '\\') {
					// the input ends where the low half would begin
					return nil, d.eof()
				} else {
					r = utf8.RuneError
				}
				if r == utf8.RuneError {
					return nil, bad(ReasonInvalidUTF8, "", "unpaired surrogate escape")
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, bad(ReasonUnsupportedEscape, "", fmt.Sprintf("\\%c", e))
		}
	}
	return nil, d.eof()
}

func (d *decoder) hex4() (rune, error) {
	if d.i+4 > len(d.b) {
		return 0, d.eof()
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, bad(ReasonUnsupportedEscape, "", "bad \\u escape")
		}
	}
	d.i += 4
	return r, nil
}

// skip consumes one JSON value of any kind, bounding nesting: depth is the
// number of arrays and objects around the value, so an array or object found
// at depth MaxDepth would nest MaxDepth+1 deep.
func (d *decoder) skip(depth int) error {
	d.ws()
	if d.i >= len(d.b) {
		return d.eof()
	}
	switch c := d.b[d.i]; {
	case c == '"':
		_, err := d.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := d.number("")
		if br, ok := err.(*BadRecordError); ok && br.Reason == ReasonNumberOutOfRange {
			return nil // an ignored field may hold any JSON number
		}
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '[' || c == '{':
		if depth >= MaxDepth {
			return bad(ReasonTooDeep, "", fmt.Sprintf("nesting deeper than %d", MaxDepth))
		}
		obj := c == '{'
		close := byte(']')
		if obj {
			close = '}'
		}
		d.i++
		d.ws()
		if d.i < len(d.b) && d.b[d.i] == close {
			d.i++
			return nil
		}
		for {
			if obj {
				d.ws()
				if _, err := d.str(); err != nil {
					return err
				}
				if err := d.colon(); err != nil {
					return err
				}
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			d.ws()
			if d.i >= len(d.b) {
				return d.eof()
			}
			switch d.b[d.i] {
			case ',':
				d.i++
				continue
			case close:
				d.i++
				return nil
			}
			return d.syntax("expected ',' or closing bracket")
		}
	}
	return d.syntax("unexpected character")
}

// colon consumes the ':' after an object key.
func (d *decoder) colon() error {
	d.ws()
	if d.i >= len(d.b) {
		return d.eof()
	}
	if d.b[d.i] != ':' {
		return d.syntax("expected ':'")
	}
	d.i++
	return nil
}

func (d *decoder) literal(lit string) error {
	n := len(lit)
	if d.i+n > len(d.b) {
		if string(d.b[d.i:]) == lit[:len(d.b)-d.i] {
			return d.eof()
		}
		return d.syntax("invalid literal")
	}
	if string(d.b[d.i:d.i+n]) != lit {
		return d.syntax("invalid literal")
	}
	d.i += n
	return nil
}
