package shift

import (
	"errors"
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
