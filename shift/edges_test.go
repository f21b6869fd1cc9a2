package shift

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// withField returns valid with one more field, raw JSON, before the others.
func withField(field string) string { return strings.Replace(valid, "{", "{"+field+",", 1) }

// nested returns n arrays (or objects, each value under key "a") around inner.
func nested(n int, obj bool, inner string) string {
	if obj {
		return strings.Repeat(`{"a":`, n) + inner + strings.Repeat("}", n)
	}
	return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
}

// TestDecodeNesting: an ignored field may hold arrays and objects nested
// MaxDepth deep, whatever the innermost one holds, and not one deeper.
func TestDecodeNesting(t *testing.T) {
	if MaxDepth != 32 {
		t.Fatalf("MaxDepth %d, the contract says 32", MaxDepth)
	}
	for _, obj := range []bool{false, true} {
		for _, inner := range []string{"", "1", `"s"`, "[]", "{}"} {
			for _, n := range []int{1, MaxDepth, MaxDepth + 1} {
				// [] and {} inside add one level of their own
				depth := n
				if inner == "[]" || inner == "{}" {
					depth++
				}
				if obj && inner == "" {
					continue // {"a":} is not JSON
				}
				v := nested(n, obj, inner)
				_, err := Decode([]byte(withField(`"x":` + v)))
				want := ""
				if depth > MaxDepth {
					want = ReasonTooDeep
				}
				if got := Reason(err); got != want {
					t.Errorf("%d deep: %.60s…: reason %q, want %q (%v)", depth, v, got, want, err)
				}
				if obj {
					continue // an object as the whole message is the event
				}
				// an array as the whole message is no event
				_, err = Decode([]byte(v))
				if want == "" {
					want = ReasonNotObject
				}
				if got := Reason(err); got != want {
					t.Errorf("%d deep, alone: %.60s…: reason %q, want %q (%v)", depth, v, got, want, err)
				}
			}
		}
	}
}

// TestDecodeSurrogates: \u escapes of UTF-16 surrogates must come in pairs,
// a high half then a low one; input that ends where the low half would begin
// is truncated, not yet unpaired.
func TestDecodeSurrogates(t *testing.T) {
	cases := []struct {
		name, in, reason, worker string
	}{
		{"pair", replace("worker_id", `"w\ud83d\ude00"`), "", "w😀"},
		{"pair, upper case", replace("worker_id", `"\uD83D\uDE00w"`), "", "😀w"},
		{"first pair", replace("worker_id", `"\ud800\udc00"`), "", "\U00010000"},
		{"last pair", replace("worker_id", `"\udbff\udfff"`), "", "\U0010ffff"},
		{"below the surrogates", replace("worker_id", `"\ud7ff"`), "", "\ud7ff"},
		{"above the surrogates", replace("worker_id", `"\ue000"`), "", "\ue000"},
		{"high alone", replace("worker_id", `"\ud83d"`), ReasonInvalidUTF8, ""},
		{"low alone", replace("worker_id", `"\ude00"`), ReasonInvalidUTF8, ""},
		{"low then high", replace("worker_id", `"\ude00\ud83d"`), ReasonInvalidUTF8, ""},
		{"high then high", replace("worker_id", `"\ud83d\ud83d\ude00"`), ReasonInvalidUTF8, ""},
		{"high then letter", replace("worker_id", `"\ud83dx"`), ReasonInvalidUTF8, ""},
		{"high then other escape", replace("worker_id", `"\ud83d\n"`), ReasonInvalidUTF8, ""},
		{"in an ignored field", withField(`"x":"\udfff"`), ReasonInvalidUTF8, ""},
		// the input ends
		{"end after high", `{"worker_id":"\ud83d`, ReasonTruncated, ""},
		{"end after last high", `{"worker_id":"\udbff`, ReasonTruncated, ""},
		{"end after high and backslash", `{"worker_id":"\ud83d\`, ReasonTruncated, ""},
		{"end after high and \\u", `{"worker_id":"\ud83d\u`, ReasonTruncated, ""},
		{"end within low", `{"worker_id":"\ud83d\ude0`, ReasonTruncated, ""},
		{"end after pair", `{"worker_id":"\ud83d\ude00`, ReasonTruncated, ""},
		{"end in ignored field", `{"x":"\ud83d`, ReasonTruncated, ""},
		{"end after first low", `{"worker_id":"\udc00`, ReasonInvalidUTF8, ""},
		{"end after low", `{"worker_id":"\ude00`, ReasonInvalidUTF8, ""},
		{"end after high and letter", `{"worker_id":"\ud83dx`, ReasonInvalidUTF8, ""},
		{"end after high and non-low", `{"worker_id":"\ud83d\u0041`, ReasonInvalidUTF8, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := Decode([]byte(c.in))
			if got := Reason(err); got != c.reason {
				t.Fatalf("%s: reason %q, want %q (%v)", c.in, got, c.reason, err)
			}
			if err == nil && ev.WorkerID != c.worker {
				t.Fatalf("worker %q, want %q", ev.WorkerID, c.worker)
			}
		})
	}
}

// rich are valid messages that between them hold every piece of the grammar:
// whitespace around every token, escapes of every kind in identifiers and in
// ignored fields, surrogate pairs, multi-byte characters, numbers with
// fractions, exponents and signs, and ignored arrays, objects and literals.
var rich = []string{
	" \t\r\n" + `{ "v" : 2 ,` + "\n\t" + `"event_id" : "e-\u00e9\u00C9\ud83d\ude00\"\\\/1" , ` +
		`"meta" : { "a" : [ 1 , -2.5e-3 , 0 , -0 , 1E+9 , 1e400 , true , false , null , "s\b\f\n\r\t\u0000" , [ ] , { } , ` +
		`[ [ { "b" : [ null ] } ] ] ] , "c" : -12 } ,` + "\r\n" +
		`"plant_id" : "pláňt 1" , "industry" : "coal" , "section" : "face 7" , "role" : "hewer" , ` +
		`"worker_id" : "w\u0041😀" , "crew_size" : 1e1 , "shift_start" : "2026-01-02T06:00:00.25-03:30" , ` +
		`"shift_hours" : 7.5 , "output" : 1.0205E+2 , "unit" : "t" , "scrap" : 5e-1 , "w" : "\uD83D\uDE00" }`,
	`{"x":[],"y":{},"event_id":"e2","plant_id":"p","industry":"i","role":"r","worker_id":"w",` +
		`"shift_start":"1900-01-01T00:00:00Z","shift_hours":0.5,"output":1999.09,"unit":"u","scrap":0,"z":false}`,
	valid,
}

func TestDecodeRich(t *testing.T) {
	ev, err := Decode([]byte(rich[0]))
	if err != nil {
		t.Fatal(err)
	}
	want := Event{EventID: "e-éÉ😀\"\\/1", PlantID: "pláňt 1", Industry: "coal", Section: "face 7", Role: "hewer",
		WorkerID: "wA😀", CrewSize: 10, ShiftStart: time.Date(2026, 1, 2, 9, 30, 0, 250e6, time.UTC),
		ShiftHours: 7.5, Output: 102.05, Unit: "t", Scrap: 0.5}
	if ev != want {
		t.Fatalf("got %+v\nwant %+v", ev, want)
	}
	ev, err = Decode([]byte(rich[1]))
	if err != nil {
		t.Fatal(err)
	}
	want = Event{EventID: "e2", PlantID: "p", Industry: "i", Role: "r", WorkerID: "w", CrewSize: 1,
		ShiftStart: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), ShiftHours: 0.5, Output: 1999.09, Unit: "u"}
	if ev != want {
		t.Fatalf("got %+v\nwant %+v", ev, want)
	}
}

// decodeReason decodes in and returns the reason, failing the test on a
// panic or on an error that is not a *BadRecordError.
func decodeReason(t *testing.T, in string) (reason string) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("%q: panic: %v", in, p)
			reason = "panic"
		}
	}()
	_, err := Decode([]byte(in))
	if err == nil {
		return ""
	}
	var br *BadRecordError
	if !errors.As(err, &br) || br.Reason == "" {
		t.Errorf("%q: error %v is no *BadRecordError with a reason", in, err)
	}
	return Reason(err)
}

// TestDecodeCut: a valid message cut anywhere is truncated_json (an empty
// one empty_message, one cut inside a multi-byte character invalid_utf8), and
// never a panic. With bytes no JSON may hold appended at the cut, the message
// is bad in another way, but is no longer taken for a truncated one.
func TestDecodeCut(t *testing.T) {
	const garbage = "\x00\x00\x00\x00\x00"
	for i, m := range rich {
		if r := decodeReason(t, m); r != "" {
			t.Fatalf("rich[%d] refused: %s", i, r)
		}
		for n := range len(m) {
			cut := m[:n]
			want := ReasonTruncated
			switch {
			case n == 0:
				want = ReasonEmpty
			case !utf8.ValidString(cut):
				want = ReasonInvalidUTF8
			}
			if got := decodeReason(t, cut); got != want {
				t.Errorf("rich[%d] cut at %d, …%q: reason %q, want %q", i, n, cut[max(0, n-20):], got, want)
				break // the first wrong cut of a message is enough
			}
			if got := decodeReason(t, cut+garbage); got == "" || got == ReasonTruncated {
				t.Errorf("rich[%d] cut at %d, …%q + NULs: reason %q", i, n, cut[max(0, n-20):], got)
				break
			}
		}
		// and after the whole message, only whitespace may follow
		for _, tail := range []string{" ", "\t\r\n ", "x", "{}", "}", ",", garbage} {
			want := ReasonTrailingData
			if strings.TrimLeft(tail, " \t\r\n") == "" {
				want = ""
			}
			if got := decodeReason(t, m+tail); got != want {
				t.Errorf("rich[%d] + %q: reason %q, want %q", i, tail, got, want)
			}
		}
	}
}

// TestDecodeNotObject: a message that is JSON but no object is not_object; one
// that starts with a character no JSON value starts with is invalid_json. The
// cases sit on each side of each character a JSON value may start with.
func TestDecodeNotObject(t *testing.T) {
	cases := []struct{ in, reason string }{
		{"{}", ReasonMissingField},
		{" \t\r\n{ } ", ReasonMissingField},
		{"{", ReasonTruncated},
		{" { \n", ReasonTruncated},
		{"[]", ReasonNotObject},
		{" [ 1 , [ 2 ] , { } ] ", ReasonNotObject},
		{"[", ReasonTruncated},
		{"[1", ReasonTruncated},
		{"[1,]", ReasonInvalidJSON},
		{"Z", ReasonInvalidJSON},  // '[' - 1
		{"\\", ReasonInvalidJSON}, // '[' + 1
		{`""`, ReasonNotObject},
		{`"x`, ReasonTruncated},
		{"!", ReasonInvalidJSON}, // '"' - 1
		{"#", ReasonInvalidJSON}, // '"' + 1
		{"-1", ReasonNotObject},
		{"-0.5e-3", ReasonNotObject},
		{"-", ReasonTruncated},
		{"-x", ReasonInvalidJSON},
		{",", ReasonInvalidJSON}, // '-' - 1
		{".", ReasonInvalidJSON}, // '-' + 1
		{"+1", ReasonInvalidJSON},
		{"0", ReasonNotObject},
		{"5", ReasonNotObject},
		{"9", ReasonNotObject},
		{"1e400", ReasonNotObject}, // a number all the same
		{"/", ReasonInvalidJSON},   // '0' - 1
		{":", ReasonInvalidJSON},   // '9' + 1
		{"true", ReasonNotObject},
		{"false", ReasonNotObject},
		{"null", ReasonNotObject},
		{"tru", ReasonTruncated},
		{"fals", ReasonTruncated},
		{"n", ReasonTruncated},
		{"trux", ReasonInvalidJSON},
		{"nul1", ReasonInvalidJSON},
		{"True", ReasonInvalidJSON},
		{"s", ReasonInvalidJSON}, // 't' - 1
		{"u", ReasonInvalidJSON}, // 't' + 1
		{"e", ReasonInvalidJSON}, // 'f' - 1
		{"g", ReasonInvalidJSON}, // 'f' + 1
		{"m", ReasonInvalidJSON}, // 'n' - 1
		{"o", ReasonInvalidJSON}, // 'n' + 1
		{"}", ReasonInvalidJSON},
		{"]", ReasonInvalidJSON},
		{"\v{}", ReasonInvalidJSON},     // not JSON whitespace
		{"\u00a0{}", ReasonInvalidJSON}, // nor is a no-break space
		{"\ufeff{}", ReasonInvalidJSON}, // nor a byte order mark
		{" \t\r\n", ReasonTruncated},    // only whitespace
		{"\x00", ReasonInvalidJSON},     // a NUL byte
	}
	for _, c := range cases {
		if got := decodeReason(t, c.in); got != c.reason {
			t.Errorf("%q: reason %q, want %q", c.in, got, c.reason)
		}
	}
}

// next formats the float64 next after f towards g, the smallest step past a
// bound.
func next(f, g float64) string { return strconv.FormatFloat(math.Nextafter(f, g), 'g', -1, 64) }

// TestDecodeLimits: each limit of the contract at its exact value and one
// step past it.
func TestDecodeLimits(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	type edge struct {
		name, in, reason string
		ok               func(Event) bool // for an accepted message, when not nil
	}
	cases := []edge{
		{"value of MaxValueBytes", valid + strings.Repeat(" ", MaxValueBytes-len(valid)), "", nil},
		{"value of MaxValueBytes, all object", withField(`"pad":"` + strings.Repeat("x", MaxValueBytes-len(valid)-9) + `"`), "", nil},
		{"value one byte over", valid + strings.Repeat(" ", MaxValueBytes+1-len(valid)), ReasonTooLarge, nil},

		{"crew 1", replace("crew_size", "1"), "", func(e Event) bool { return e.CrewSize == 1 }},
		{"crew 1.0", replace("crew_size", "1.0"), "", func(e Event) bool { return e.CrewSize == 1 }},
		{"crew 10000", replace("crew_size", "10000"), "", func(e Event) bool { return e.CrewSize == 10000 }},
		{"crew 1e4", replace("crew_size", "1e4"), "", func(e Event) bool { return e.CrewSize == 10000 }},
		{"crew 10001", replace("crew_size", "10001"), ReasonCrewSizeRange, nil},
		{"crew 0", replace("crew_size", "0"), ReasonCrewSizeRange, nil},
		{"crew -1", replace("crew_size", "-1"), ReasonCrewSizeRange, nil},
		{"crew 0.5", replace("crew_size", "0.5"), ReasonWrongType, nil},
		{"crew just above 1", replace("crew_size", next(1, 2)), ReasonWrongType, nil},
		{"crew 10000.5", replace("crew_size", "10000.5"), ReasonWrongType, nil},
		{"crew string", replace("crew_size", `"3"`), ReasonWrongType, nil},

		{"hours 24", replace("shift_hours", "24"), "", func(e Event) bool { return e.ShiftHours == 24 }},
		{"hours just above 24", replace("shift_hours", next(24, 25)), ReasonShiftHoursRange, nil},
		{"hours just above 0", replace("shift_hours", next(0, 1)), "", func(e Event) bool { return e.ShiftHours == 5e-324 }},
		{"hours 0", replace("shift_hours", "0"), ReasonShiftHoursRange, nil},
		{"hours -0", replace("shift_hours", "-0"), ReasonShiftHoursRange, nil},
		{"hours below float64", replace("shift_hours", "1e-400"), ReasonShiftHoursRange, nil},
		{"hours -1", replace("shift_hours", "-1"), ReasonShiftHoursRange, nil},

		{"output 0", replace("output", "0"), "", func(e Event) bool { return e.Output == 0 && e.ScrapShare() == 0 }},
		{"output 1e12", replace("output", "1e12"), "", func(e Event) bool { return e.Output == 1e12 }},
		{"output just above 1e12", replace("output", next(1e12, 2e12)), ReasonOutputRange, nil},
		{"output just below 0", replace("output", "-5e-324"), ReasonNegativeOutput, nil},
		{"scrap equal to output", replace("scrap", "102"), "", func(e Event) bool { return e.Scrap == 102 && e.ScrapShare() == 1 }},
		{"scrap half", replace("scrap", "51"), "", func(e Event) bool { return e.ScrapShare() == 0.5 }},
		{"scrap just above output", replace("scrap", next(102, 103)), ReasonScrapAboveOutput, nil},
		{"scrap just below 0", replace("scrap", "-5e-324"), ReasonNegativeScrap, nil},

		{"first instant", replace("shift_start", `"1900-01-01T00:00:00Z"`), "", func(e Event) bool { return e.ShiftStart == utc(1900, 1, 1, 0, 0, 0, 0) }},
		{"just before 1900", replace("shift_start", `"1899-12-31T23:59:59.999999999Z"`), ReasonTimestampRange, nil},
		{"last instant", replace("shift_start", `"2099-12-31T23:59:59.999999999Z"`), "", func(e Event) bool { return e.ShiftStart == utc(2099, 12, 31, 23, 59, 59, 999999999) }},
		{"2100", replace("shift_start", `"2100-01-01T00:00:00Z"`), ReasonTimestampRange, nil},
		{"1900 written, 1899 in UTC", replace("shift_start", `"1900-01-01T00:30:00+01:00"`), ReasonTimestampRange, nil},
		{"1899 written, 1900 in UTC", replace("shift_start", `"1899-12-31T23:30:00-01:00"`), "", func(e Event) bool { return e.ShiftStart == utc(1900, 1, 1, 0, 30, 0, 0) }},
		{"2100 written, 2099 in UTC", replace("shift_start", `"2100-01-01T00:30:00+01:00"`), "", func(e Event) bool { return e.ShiftStart == utc(2099, 12, 31, 23, 30, 0, 0) }},
		{"2099 written, 2100 in UTC", replace("shift_start", `"2099-12-31T23:30:00-01:00"`), ReasonTimestampRange, nil},
		{"zone +23:59", replace("shift_start", `"1935-08-31T22:00:00+23:59"`), "", func(e Event) bool { return e.ShiftStart == utc(1935, 8, 30, 22, 1, 0, 0) }},
		{"zone -23:59", replace("shift_start", `"1935-08-31T22:00:00-23:59"`), "", func(e Event) bool { return e.ShiftStart == utc(1935, 9, 1, 21, 59, 0, 0) }},
		{"zone -00:00", replace("shift_start", `"1935-08-31T22:00:00-00:00"`), "", func(e Event) bool { return e.ShiftStart == utc(1935, 8, 31, 22, 0, 0, 0) }},
		{"zone +05:29", replace("shift_start", `"1935-08-31T22:00:00+05:29"`), "", func(e Event) bool { return e.ShiftStart == utc(1935, 8, 31, 16, 31, 0, 0) }},
		{"fraction and zone", replace("shift_start", `"1935-08-31T22:00:00.5-03:30"`), "", func(e Event) bool { return e.ShiftStart == utc(1935, 9, 1, 1, 30, 0, 5e8) }},
		{"zone without colon", replace("shift_start", `"1935-08-31T22:00:00+0300"`), ReasonBadTimestamp, nil},
		{"zone hours only", replace("shift_start", `"1935-08-31T22:00:00+03"`), ReasonBadTimestamp, nil},
		{"zone +25:00", replace("shift_start", `"1935-08-31T22:00:00+25:00"`), ReasonBadTimestamp, nil},
		// RFC 3339's time-offset: hours 00–23, minutes 00–59, where Go's
		// parser takes up to 24:60; and a '.' before the fraction
		{"zone +24:00", replace("shift_start", `"1935-08-31T22:00:00+24:00"`), ReasonBadTimestamp, nil},
		{"zone -24:00", replace("shift_start", `"1935-08-31T22:00:00-24:00"`), ReasonBadTimestamp, nil},
		{"zone +00:60", replace("shift_start", `"1935-08-31T22:00:00+00:60"`), ReasonBadTimestamp, nil},
		{"zone +23:60", replace("shift_start", `"1935-08-31T22:00:00+23:60"`), ReasonBadTimestamp, nil},
		{"comma before the fraction", replace("shift_start", `"1935-08-31T22:00:00,5Z"`), ReasonBadTimestamp, nil},
		{"lower-case z", replace("shift_start", `"1935-08-31T22:00:00z"`), ReasonBadTimestamp, nil},
		{"lower-case t", replace("shift_start", `"1935-08-31t22:00:00Z"`), ReasonBadTimestamp, nil},
		{"no seconds", replace("shift_start", `"1935-08-31T22:00Z"`), ReasonBadTimestamp, nil},
		{"empty timestamp", replace("shift_start", `""`), ReasonBadTimestamp, nil},
		{"no such day", replace("shift_start", `"1935-02-29T22:00:00Z"`), ReasonBadTimestamp, nil},
		{"leap second", replace("shift_start", `"1935-08-31T23:59:60Z"`), ReasonBadTimestamp, nil},

		{"space in id", replace("worker_id", `"a b"`), "", func(e Event) bool { return e.WorkerID == "a b" }},
		{"tilde in id", replace("worker_id", `"a~b"`), "", func(e Event) bool { return e.WorkerID == "a~b" }},
		{"unit separator in id", replace("worker_id", `"a\u001fb"`), ReasonControlCharacter, nil},
		{"NUL in id", replace("worker_id", `"\u0000"`), ReasonControlCharacter, nil},
		{"tab in id", replace("worker_id", `"a\tb"`), ReasonControlCharacter, nil},
		{"escaped DEL in id", replace("worker_id", `"a\u007fb"`), ReasonControlCharacter, nil},
		{"raw DEL in id", replace("worker_id", "\"a\x7fb\""), ReasonControlCharacter, nil},
		{"raw unit separator in id", replace("worker_id", "\"a\x1fb\""), ReasonInvalidJSON, nil},
		{"control character in section", replace("section", `"\r"`), ReasonControlCharacter, nil},
		{"empty section", replace("section", `""`), "", func(e Event) bool { return e.Section == "" }},
	}
	// identifiers are counted in characters, after unescaping
	for _, f := range []string{"event_id", "plant_id", "industry", "section", "role", "worker_id", "unit"} {
		limit := MaxIDLen
		if f == "event_id" {
			limit = MaxEventIDLen
		}
		for _, ch := range []string{"a", "é", "😀", `\u00e9`} {
			cases = append(cases,
				edge{f + " at the limit of " + ch, replace(f, `"`+strings.Repeat(ch, limit)+`"`), "", nil},
				edge{f + " one over the limit of " + ch, replace(f, `"`+strings.Repeat(ch, limit+1)+`"`), ReasonFieldTooLong, nil})
		}
	}
	if MaxEventIDLen != 128 || MaxIDLen != 256 || MaxCrewSize != 10000 || MaxOutput != 1e12 || MaxValueBytes != 1<<20 {
		t.Fatal("a limit differs from the contract")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := decodeReason(t, c.in); got != c.reason {
				t.Fatalf("reason %q, want %q", got, c.reason)
			}
			if c.ok != nil {
				if ev, _ := Decode([]byte(c.in)); !c.ok(ev) {
					t.Fatalf("decoded as %+v", ev)
				}
			}
		})
	}
}

// TestDecodeNumbers: the JSON number grammar, digit by digit, in a field the
// event keeps.
func TestDecodeNumbers(t *testing.T) {
	cases := []struct {
		in     string
		reason string
		output float64 // when accepted
	}{
		{"0", "", 0},
		{"0.0", "", 0},
		{"9", "", 9},
		{"19", "", 19},
		{"1999.09", "", 1999.09},
		{"1.0", "", 1},
		{"1.9", "", 1.9},
		{"10.05", "", 10.05},
		{"1e2", "", 100},
		{"1E2", "", 100},
		{"1e+2", "", 100},
		{"1E+2", "", 100},
		{"1e-2", "", 0.01},
		{"1.5e1", "", 15},
		{"1e09", "", 1e9},
		{"1e9", "", 1e9},
		{"19e-1", "", 1.9},
		{"0e0", "", 0},
		{"1e-400", "", 0}, // below the smallest float64: 0
		{"1.", ReasonInvalidJSON, 0},
		{"1.e2", ReasonInvalidJSON, 0},
		{".5", ReasonInvalidJSON, 0},
		{"1e", ReasonInvalidJSON, 0},
		{"1e+", ReasonInvalidJSON, 0},
		{"1e-", ReasonInvalidJSON, 0},
		{"1ee2", ReasonInvalidJSON, 0},
		{"1e2.5", ReasonInvalidJSON, 0},
		{"1.5.5", ReasonInvalidJSON, 0},
		{"1e+-2", ReasonInvalidJSON, 0},
		{"-", ReasonInvalidJSON, 0},
		{"--1", ReasonInvalidJSON, 0},
		{"+1", ReasonInvalidJSON, 0},
		{"00", ReasonInvalidJSON, 0},
		{"-01", ReasonInvalidJSON, 0},
		{"0x10", ReasonInvalidJSON, 0},
		{"1_000", ReasonInvalidJSON, 0},
		{"-Infinity", ReasonInvalidJSON, 0},
		{"1e400", ReasonNumberOutOfRange, 0},
		{"-1e400", ReasonNumberOutOfRange, 0},
		{`"1"`, ReasonWrongType, 0},
		{"true", ReasonWrongType, 0},
		{"false", ReasonWrongType, 0},
		{"null", ReasonWrongType, 0},
		{"[1]", ReasonWrongType, 0},
		{"{}", ReasonWrongType, 0},
	}
	for _, c := range cases {
		in := replace("output", c.in)
		if got := decodeReason(t, in); got != c.reason {
			t.Errorf("output %s: reason %q, want %q", c.in, got, c.reason)
			continue
		}
		if ev, err := Decode([]byte(in)); err == nil && ev.Output != c.output {
			t.Errorf("output %s: decoded as %v", c.in, ev.Output)
		}
	}
}

// TestDecodeIgnored: an unknown field may hold any JSON value, and must hold
// one.
func TestDecodeIgnored(t *testing.T) {
	cases := []struct{ value, reason string }{
		{"[]", ""},
		{"{}", ""},
		{" [ ] ", ""},
		{" { } ", ""},
		{"[[],{}]", ""},
		{`{"a":[],"b":{}}`, ""},
		{` [ 1 , { "a" : null } , "s" ] `, ""},
		{`[1,-2,"3",[4],{"5":6},true,false,null]`, ""},
		{"true", ""},
		{"false", ""},
		{"null", ""},
		{"-0.5e-3", ""},
		{"1E+9", ""},
		{"1e400", ""},
		{"-1e400", ""},
		{`""`, ""},
		{`"\b\f\n\r\t\"\\\/\u0000\u00E9"`, ""},
		{"[,]", ReasonInvalidJSON},
		{"[1,]", ReasonInvalidJSON},
		{"[1 2]", ReasonInvalidJSON},
		{"[1}", ReasonInvalidJSON},
		{`{"a"}`, ReasonInvalidJSON},
		{`{"a":}`, ReasonInvalidJSON},
		{`{"a":1,}`, ReasonInvalidJSON},
		{`{"a":1]`, ReasonInvalidJSON},
		{`{"a" 1}`, ReasonInvalidJSON},
		{"{1:2}", ReasonInvalidJSON},
		{"{a:1}", ReasonInvalidJSON},
		{"tru", ReasonInvalidJSON},
		{"True", ReasonInvalidJSON},
		{"nul", ReasonInvalidJSON},
		{"nulll", ReasonInvalidJSON},
		{"falsy", ReasonInvalidJSON},
		{"'a'", ReasonInvalidJSON},
		{"-", ReasonInvalidJSON},
		{"01", ReasonInvalidJSON},
		{"NaN", ReasonInvalidJSON},
		{"]", ReasonInvalidJSON},
		{"", ReasonInvalidJSON},
		{`"\x"`, ReasonUnsupportedEscape},
		{`"\u12"`, ReasonUnsupportedEscape},
		{`"\u00g0"`, ReasonUnsupportedEscape},
		{`"\U00e9"`, ReasonUnsupportedEscape},
		{"\"\x01\"", ReasonInvalidJSON},
	}
	for _, c := range cases {
		if got := decodeReason(t, withField(`"x":`+c.value)); got != c.reason {
			t.Errorf("x: %s: reason %q, want %q", c.value, got, c.reason)
		}
	}
}

// TestDecodeFieldNamed: a missing or empty field is named in the error, and
// the error reads as the reason, the field and the detail.
func TestDecodeFieldNamed(t *testing.T) {
	for _, f := range []string{"event_id", "plant_id", "industry", "role", "worker_id", "shift_start", "shift_hours", "output", "unit"} {
		_, err := Decode([]byte(replace(f, "")))
		var br *BadRecordError
		if !errors.As(err, &br) || br.Reason != ReasonMissingField || br.Field != f {
			t.Errorf("without %s: %v", f, err)
		}
		if got, want := err.Error(), "bad shift record: missing_field ("+f+")"; got != want {
			t.Errorf("without %s: %q, want %q", f, got, want)
		}
		if f == "shift_start" || f == "shift_hours" || f == "output" {
			continue
		}
		_, err = Decode([]byte(replace(f, `""`)))
		if !errors.As(err, &br) || br.Reason != ReasonEmptyField || br.Field != f {
			t.Errorf("%s empty: %v", f, err)
		}
	}
	for _, c := range []struct{ in, msg string }{
		{"", "bad shift record: empty_message"},
		{replace("event_id", `"`+strings.Repeat("e", 129)+`"`), "bad shift record: field_too_long (event_id): 129 characters, limit 128"},
		{valid + " x", "bad shift record: trailing_data: at byte " + strconv.Itoa(len(valid)+1)},
	} {
		_, err := Decode([]byte(c.in))
		if err == nil || err.Error() != c.msg {
			t.Errorf("%.40q: error %v, want %q", c.in, err, c.msg)
		}
	}
	if Reason(nil) != "" || Reason(errors.New("other")) != "" {
		t.Error("Reason of an error that is no *BadRecordError")
	}
}

// TestDayOfEdges: days before the epoch are floored, not truncated towards
// zero, midnights included.
func TestDayOfEdges(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		day  Day
		text string
	}{
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 0, "1970-01-01"},
		{time.Date(1970, 1, 1, 23, 59, 59, 999999999, time.UTC), 0, "1970-01-01"},
		{time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC), 1, "1970-01-02"},
		{time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), -1, "1969-12-31"},
		{time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), -1, "1969-12-31"},
		{time.Date(1969, 12, 30, 23, 59, 59, 0, time.UTC), -2, "1969-12-30"},
		{time.Date(1969, 12, 30, 0, 0, 0, 0, time.UTC), -2, "1969-12-30"},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), -25567, "1900-01-01"},                    // 70 years, 17 of them leap
		{time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC), 47481, "2099-12-31"},                // 130 years, 32 of them leap, less a day
		{time.Date(1935, 8, 31, 3, 0, 0, 0, time.FixedZone("", 4*3600)), -12543, "1935-08-30"}, // 35 years, 9 of them leap, less 241 days,
	} {
		d := DayOf(c.t)
		if d != c.day || d.String() != c.text {
			t.Errorf("DayOf(%v) = %d %s, want %d %s", c.t, d, d, c.day, c.text)
		}
		if d.Start().After(c.t) || !d.End().After(c.t) {
			t.Errorf("%v not in [%v, %v)", c.t, d.Start(), d.End())
		}
	}
}
