package shift

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const valid = `{"event_id":"e1","plant_id":"donbas-1","industry":"coal","section":"face-7","role":"hewer","worker_id":"w42","crew_size":3,"shift_start":"1935-08-31T22:00:00Z","shift_hours":6,"output":102,"unit":"t","scrap":0}`

func TestDecodeValid(t *testing.T) {
	ev, err := Decode([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	want := Event{EventID: "e1", PlantID: "donbas-1", Industry: "coal", Section: "face-7", Role: "hewer",
		WorkerID: "w42", CrewSize: 3, ShiftStart: time.Date(1935, 8, 31, 22, 0, 0, 0, time.UTC),
		ShiftHours: 6, Output: 102, Unit: "t"}
	if ev != want {
		t.Fatalf("got %+v\nwant %+v", ev, want)
	}
	if r := ev.Rate(); r != 17 {
		t.Errorf("rate %v", r)
	}
	if r := ev.CrewRate(); r != 17.0/3 {
		t.Errorf("crew rate %v", r)
	}
}

func TestDecodeDefaultsAndUnknownFields(t *testing.T) {
	in := `{"v":2,"extra":{"a":[1,2,{"b":null}],"c":true},"event_id":"e\u00e9\ud83d\ude00","plant_id":"p","industry":"i","role":"r","worker_id":"w","shift_start":"2026-01-02T06:00:00+03:00","shift_hours":8,"output":0,"unit":"parts","big":1e400}`
	ev, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if ev.CrewSize != 1 || ev.Scrap != 0 || ev.Section != "" {
		t.Errorf("defaults not applied: %+v", ev)
	}
	if ev.EventID != "eé😀" {
		t.Errorf("escapes: %q", ev.EventID)
	}
	if !ev.ShiftStart.Equal(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)) || ev.ShiftStart.Location() != time.UTC {
		t.Errorf("start %v", ev.ShiftStart)
	}
	if ev.ScrapShare() != 0 {
		t.Errorf("scrap share of zero output must be 0")
	}
}

// replace returns valid with one field's raw JSON value replaced, or the field
// removed when value is "".
func replace(field, value string) string {
	i := strings.Index(valid, `"`+field+`":`)
	j := i + len(field) + 3
	k := j
	depth := 0
	for inStr := false; k < len(valid); k++ {
		c := valid[k]
		if inStr {
			if c == '"' {
				inStr = false
			}
			continue
		}
		if c == '"' {
			inStr = true
		} else if (c == ',' || c == '}') && depth == 0 {
			break
		}
	}
	if value == "" {
		if valid[k] == ',' {
			k++
		}
		return valid[:i] + valid[k:]
	}
	return valid[:j] + value + valid[k:]
}

func TestDecodeBad(t *testing.T) {
	cases := []struct {
		name, in, reason string
	}{
		{"empty", "", ReasonEmpty},
		{"whitespace", "  \n", ReasonTruncated},
		{"not json", "hello", ReasonInvalidJSON},
		{"truncated", valid[:len(valid)/2], ReasonTruncated},
		{"array", `[1,2]`, ReasonNotObject},
		{"string", `"x"`, ReasonNotObject},
		{"trailing", valid + `{}`, ReasonTrailingData},
		{"invalid utf8", strings.Replace(valid, "w42", "w\xff42", 1), ReasonInvalidUTF8},
		{"too large", `{"pad":"` + strings.Repeat("x", MaxValueBytes) + `"}`, ReasonTooLarge},
		{"duplicate key", strings.Replace(valid, `"unit":"t"`, `"unit":"t","unit":"kg"`, 1), ReasonDuplicateKey},
		{"duplicate unknown key", strings.Replace(valid, `{`, `{"x":1,"x":2,`, 1), ReasonDuplicateKey},
		{"deep", strings.Replace(valid, `{`, `{"x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`,`, 1), ReasonTooDeep},
		{"missing worker", replace("worker_id", ""), ReasonMissingField},
		{"missing output", replace("output", ""), ReasonMissingField},
		{"output string", replace("output", `"102"`), ReasonWrongType},
		{"output null", replace("output", `null`), ReasonWrongType},
		{"plant number", replace("plant_id", `7`), ReasonWrongType},
		{"crew fractional", replace("crew_size", `2.5`), ReasonWrongType},
		{"crew zero", replace("crew_size", `0`), ReasonCrewSizeRange},
		{"output 1e400", replace("output", `1e400`), ReasonNumberOutOfRange},
		{"output NaN", replace("output", `NaN`), ReasonInvalidJSON},
		{"output Infinity", replace("output", `Infinity`), ReasonInvalidJSON},
		{"negative output", replace("output", `-1`), ReasonNegativeOutput},
		{"absurd output", replace("output", `1e15`), ReasonOutputRange},
		{"scrap above output", replace("scrap", `103`), ReasonScrapAboveOutput},
		{"negative scrap", replace("scrap", `-0.5`), ReasonNegativeScrap},
		{"hours zero", replace("shift_hours", `0`), ReasonShiftHoursRange},
		{"hours 25", replace("shift_hours", `25`), ReasonShiftHoursRange},
		{"timestamp not rfc3339", replace("shift_start", `"1935-08-31 22:00:00"`), ReasonBadTimestamp},
		{"timestamp no zone", replace("shift_start", `"1935-08-31T22:00:00"`), ReasonBadTimestamp},
		{"timestamp epoch number", replace("shift_start", `1700000000`), ReasonWrongType},
		{"before 1900", replace("shift_start", `"1899-12-31T23:00:00Z"`), ReasonTimestampRange},
		{"far future", replace("shift_start", `"2300-01-01T00:00:00Z"`), ReasonTimestampRange},
		{"empty plant", replace("plant_id", `""`), ReasonEmptyField},
		{"empty event id", replace("event_id", `""`), ReasonEmptyField},
		{"long event id", replace("event_id", `"`+strings.Repeat("e", 129)+`"`), ReasonFieldTooLong},
		{"control char in id", replace("worker_id", `"w\u0007"`), ReasonControlCharacter},
		{"raw control char", replace("worker_id", "\"w\x01\""), ReasonInvalidJSON},
		{"lone surrogate", replace("worker_id", `"\ud800"`), ReasonInvalidUTF8},
		{"bad escape", replace("worker_id", `"\x41"`), ReasonUnsupportedEscape},
		{"leading zero", replace("output", `0102`), ReasonInvalidJSON},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.in))
			if err == nil {
				t.Fatalf("accepted %q", c.in)
			}
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v does not wrap ErrBadRecord", err)
			}
			if got := Reason(err); got != c.reason {
				t.Fatalf("reason %q, want %q (%v)", got, c.reason, err)
			}
		})
	}
	if n := len(cases); n < 25 {
		t.Fatalf("only %d kinds of bad record covered", n)
	}
}

func TestDayOf(t *testing.T) {
	d := DayOf(time.Date(1935, 8, 31, 23, 59, 59, 0, time.UTC))
	if d.String() != "1935-08-31" || !d.End().Equal(time.Date(1935, 9, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("day %v end %v", d, d.End())
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte(`{"event_id":"a\u00e9","x":[{}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err != nil {
			if Reason(err) == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		if ev.EventID == "" || ev.ShiftHours <= 0 || ev.ShiftHours > 24 || ev.Output < 0 || ev.Scrap > ev.Output || ev.CrewSize < 1 {
			t.Fatalf("accepted an invalid event: %+v", ev)
		}
	})
}
