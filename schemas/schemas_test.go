package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/stakhanov/stakhanov/shift"
	"github.com/stakhanov/stakhanov/simulator"
)

// stakhanovEvent is the contract's example event.
const stakhanovEvent = `{"event_id":"tsentralnaya-irmino-19350830-a.stakhanov-1","plant_id":"tsentralnaya-irmino",
 "industry":"coal","section":"seam-nikanor","role":"hewer","worker_id":"a.stakhanov",
 "crew_size":3,"shift_start":"1935-08-30T22:00:00Z","shift_hours":6,"output":102,"unit":"t"}`

// event returns the contract's example event with fields replaced (or, for
// a nil value, removed), as JSON with the remaining fields in order.
func event(t *testing.T, changes map[string]any) string {
	t.Helper()
	fields := []struct {
		k string
		v any
	}{
		{"event_id", "tsentralnaya-irmino-19350830-a.stakhanov-1"}, {"plant_id", "tsentralnaya-irmino"},
		{"industry", "coal"}, {"section", "seam-nikanor"}, {"role", "hewer"}, {"worker_id", "a.stakhanov"},
		{"crew_size", 3}, {"shift_start", "1935-08-30T22:00:00Z"}, {"shift_hours", 6}, {"output", 102}, {"unit", "t"},
	}
	var b strings.Builder
	b.WriteByte('{')
	write := func(k string, v any) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteByte(':')
		if raw, ok := v.(json.RawMessage); ok {
			b.Write(raw)
			return
		}
		vj, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(vj)
	}
	done := map[string]bool{}
	for _, f := range fields {
		v, changed := changes[f.k]
		done[f.k] = true
		switch {
		case !changed:
			write(f.k, f.v)
		case v != nil:
			write(f.k, v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(changes)) {
		if !done[k] && changes[k] != nil {
			write(k, changes[k])
		}
	}
	b.WriteByte('}')
	return b.String()
}

// raw is a JSON value written as is: numbers the way a producer spells them.
func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestSchemaCompiles(t *testing.T) {
	for _, c := range []struct {
		name string
		get  func() (*jsonschema.Schema, error)
		id   string
	}{
		{"event", Event, EventSchemaID},
		{"alert", Alert, AlertSchemaID},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := c.get()
			if err != nil {
				t.Fatal(err)
			}
			if s == nil {
				t.Fatal("nil schema")
			}
			if s.ID != c.id {
				t.Fatalf("compiled %q, want %s", s.ID, c.id)
			}
			again, _ := c.get()
			if again != s {
				t.Fatal("compiled twice")
			}
		})
	}
}

// TestSchemaExamples: the examples the files show validate.
func TestSchemaExamples(t *testing.T) {
	for _, c := range []struct {
		name     string
		text     []byte
		validate func([]byte) error
	}{
		{"event", EventJSON(), ValidateEvent},
		{"alert", AlertJSON(), ValidateAlert},
	} {
		t.Run(c.name, func(t *testing.T) {
			var doc struct {
				Examples []json.RawMessage `json:"examples"`
			}
			if err := json.Unmarshal(c.text, &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Examples) == 0 {
				t.Fatal("no examples")
			}
			for i, ex := range doc.Examples {
				if err := c.validate(ex); err != nil {
					t.Errorf("example %d: %v", i, err)
				}
			}
		})
	}
}

// inexpressible are the defects of simulated malformed messages that the
// event schema cannot see (see its $comment): the decoder alone rejects
// them.
var inexpressible = map[string]string{
	"scrap_above_output": "compares two fields",
	"duplicate_key":      "the parsed object keeps one of the values",
	"lone_surrogate":     "JSON parsers replace the escape with U+FFFD",
	"too_deep":           "nesting depth of unknown fields",
}

// TestSchemaSimulatedEvents: the event schema and the decoder judge every
// message of a simulated stream alike, but for the defects the schema
// cannot express.
func TestSchemaSimulatedEvents(t *testing.T) {
	cfg := simulator.DefaultConfig()
	// The default summer holds some 200 malformed messages; twenty times
	// as many make sure each of the simulator's kinds of defect turns up.
	cfg.MalformedRate = 0.1
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string][]simulator.Message{}
	for {
		m, ok := sim.Next()
		if !ok {
			break
		}
		name := m.Kind.String()
		if m.Kind == simulator.KindMalformed {
			name += "/" + m.Defect
		}
		groups[name] = append(groups[name], m)
	}
	for _, k := range []simulator.Kind{simulator.KindValid, simulator.KindDuplicate, simulator.KindLate} {
		if len(groups[k.String()]) == 0 {
			t.Fatalf("the stream has no %v messages", k)
		}
	}
	defects := 0
	for name := range groups {
		if strings.HasPrefix(name, "malformed/") {
			defects++
		}
	}
	// the simulator makes 36 kinds of defect; most must be in a stream
	// of this size for the test to mean anything
	if defects < 30 {
		t.Fatalf("only %d kinds of malformed message", defects)
	}
	for _, d := range slices.Sorted(maps.Keys(inexpressible)) {
		if len(groups["malformed/"+d]) == 0 {
			t.Fatalf("no malformed/%s message in the stream", d)
		}
	}

	accepted, rejected := 0, 0
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		msgs := groups[name]
		t.Run(name, func(t *testing.T) {
			for _, m := range msgs {
				_, decErr := shift.Decode(m.Value)
				schErr := ValidateEvent(m.Value)
				if m.Kind != simulator.KindMalformed {
					if decErr != nil {
						t.Fatalf("message %d: decoder rejects a %v message: %v", m.Index, m.Kind, decErr)
					}
					if schErr != nil {
						t.Fatalf("message %d does not validate: %v\n%s", m.Index, schErr, m.Value)
					}
					continue
				}
				if decErr == nil {
					t.Fatalf("message %d: decoder accepts a malformed message: %s", m.Index, m.Value)
				}
				if why, ok := inexpressible[m.Defect]; ok {
					// Kept as an assertion so that the schema's $comment
					// stays true: a schema that learns to reject these
					// should say so there.
					if schErr != nil {
						t.Fatalf("message %d (%s: %s) is rejected by the schema now: %v", m.Index, m.Defect, why, schErr)
					}
					accepted++
					continue
				}
				if schErr == nil {
					t.Fatalf("message %d validates but the decoder says %s: %q", m.Index, shift.Reason(decErr), m.Value)
				}
				if !errors.Is(schErr, ErrInvalid) {
					t.Fatalf("message %d: error does not wrap ErrInvalid: %v", m.Index, schErr)
				}
				rejected++
			}
		})
	}
	t.Logf("%d kinds of defect; malformed messages: %d rejected by the schema, %d only by the decoder (%v)",
		defects, rejected, accepted, slices.Sorted(maps.Keys(inexpressible)))
	if rejected == 0 {
		t.Fatal("the schema rejected no malformed message")
	}
}

// TestSchemaEvents: hand-written events on which the schema and the decoder
// agree.
func TestSchemaEvents(t *testing.T) {
	long := func(n int, r string) string { return strings.Repeat(r, n) }
	cases := []struct {
		name  string
		value string
		valid bool
	}{
		{"contract example", stakhanovEvent, true},
		{"required fields only", event(t, map[string]any{"section": nil, "crew_size": nil}), true},
		{"crew_size written as 2.0", event(t, map[string]any{"crew_size": raw("2.0")}), true},
		{"crew_size in exponent form", event(t, map[string]any{"crew_size": raw("1e1")}), true},
		{"crew_size at its bounds 1", event(t, map[string]any{"crew_size": 1}), true},
		{"crew_size at its bounds 10000", event(t, map[string]any{"crew_size": 10000}), true},
		{"empty section", event(t, map[string]any{"section": ""}), true},
		{"unknown fields of every kind", event(t, map[string]any{"note": raw(`{"a":[1,null,true,"x",{"b":1e400}]}`), "z": raw("null")}), true},
		{"zone offset", event(t, map[string]any{"shift_start": "1935-08-31T04:00:00+06:00"}), true},
		{"negative zone offset", event(t, map[string]any{"shift_start": "1935-08-30T17:00:00-05:00"}), true},
		{"fraction of a second", event(t, map[string]any{"shift_start": "1935-08-30T22:00:00.123456789Z"}), true},
		{"first instant of 1900", event(t, map[string]any{"shift_start": "1900-01-01T00:00:00Z"}), true},
		{"last second of 2099", event(t, map[string]any{"shift_start": "2099-12-31T23:59:59Z"}), true},
		{"output 0", event(t, map[string]any{"output": 0}), true},
		{"output 10^12", event(t, map[string]any{"output": raw("1e12")}), true},
		{"scrap equal to output", event(t, map[string]any{"scrap": 102}), true},
		{"shift_hours 24", event(t, map[string]any{"shift_hours": 24}), true},
		{"shift_hours tiny", event(t, map[string]any{"shift_hours": raw("0.001")}), true},
		{"event_id of 128 characters, 256 bytes", event(t, map[string]any{"event_id": long(128, "ж")}), true},
		{"identifier of 256 characters", event(t, map[string]any{"worker_id": long(256, "a")}), true},
		{"non-ASCII identifiers", event(t, map[string]any{"worker_id": "а.стаханов", "plant_id": "центральная-ирмино"}), true},
		{"escaped characters", event(t, map[string]any{"worker_id": raw(`"a.\u0441\/x"`)}), true},

		{"empty message", "", false},
		{"whitespace", " \n", false},
		{"not JSON", "Shift report: a.stakhanov 102 t", false},
		{"array", "[" + stakhanovEvent + "]", false},
		{"string", `"tsentralnaya-irmino"`, false},
		{"trailing data", stakhanovEvent + stakhanovEvent, false},
		{"NaN", event(t, map[string]any{"output": raw("NaN")}), false},
		{"invalid UTF-8", event(t, map[string]any{"worker_id": raw("\"a\xffb\"")}), false},
		{"output as string", event(t, map[string]any{"output": "102"}), false},
		{"event_id as number", event(t, map[string]any{"event_id": 1}), false},
		{"section null", event(t, map[string]any{"section": raw("null")}), false},
		{"shift_start as number", event(t, map[string]any{"shift_start": -1083974400}), false},
		{"fractional crew_size", event(t, map[string]any{"crew_size": raw("2.5")}), false},
		{"boolean shift_hours", event(t, map[string]any{"shift_hours": true}), false},
		{"empty event_id", event(t, map[string]any{"event_id": ""}), false},
		{"empty unit", event(t, map[string]any{"unit": ""}), false},
		{"event_id of 129 characters", event(t, map[string]any{"event_id": long(129, "ж")}), false},
		{"identifier of 257 characters", event(t, map[string]any{"plant_id": long(257, "a")}), false},
		{"section of 257 characters", event(t, map[string]any{"section": long(257, "a")}), false},
		{"control character", event(t, map[string]any{"worker_id": "a\x07"}), false},
		{"DEL character", event(t, map[string]any{"role": "hewer\x7f"}), false},
		{"newline escape", event(t, map[string]any{"event_id": raw(`"e\n1"`)}), false},
		{"date with a space", event(t, map[string]any{"shift_start": "1935-08-30 22:00:00Z"}), false},
		{"date without zone", event(t, map[string]any{"shift_start": "1935-08-30T22:00:00"}), false},
		{"date only", event(t, map[string]any{"shift_start": "1935-08-30"}), false},
		{"lower-case t and z", event(t, map[string]any{"shift_start": "1935-08-30t22:00:00z"}), false},
		{"30 February", event(t, map[string]any{"shift_start": "1935-02-30T22:00:00Z"}), false},
		{"hour 24", event(t, map[string]any{"shift_start": "1935-08-30T24:00:00Z"}), false},
		{"leap second", event(t, map[string]any{"shift_start": "1935-06-30T23:59:60Z"}), false},
		{"offset without colon", event(t, map[string]any{"shift_start": "1935-08-30T22:00:00+0300"}), false},
		{"comma before the fraction", event(t, map[string]any{"shift_start": "1935-08-30T22:00:00,5Z"}), false},
		{"offset +24:00", event(t, map[string]any{"shift_start": "1935-08-31T22:00:00+24:00"}), false},
		{"offset +00:60", event(t, map[string]any{"shift_start": "1935-08-31T22:00:00+00:60"}), false},
		{"offset +23:59", event(t, map[string]any{"shift_start": "1935-08-31T22:00:00+23:59"}), true},
		{"European date", event(t, map[string]any{"shift_start": "30.08.1935 22:00"}), false},
		{"Unix time as string", event(t, map[string]any{"shift_start": "-1083974400"}), false},
		{"year 1899", event(t, map[string]any{"shift_start": "1899-12-31T23:59:59Z"}), false},
		{"year 2100", event(t, map[string]any{"shift_start": "2100-01-01T00:00:00Z"}), false},
		{"year 9999", event(t, map[string]any{"shift_start": "9999-12-31T22:00:00Z"}), false},
		{"shift_hours 0", event(t, map[string]any{"shift_hours": 0}), false},
		{"shift_hours 24.5", event(t, map[string]any{"shift_hours": 24.5}), false},
		{"shift_hours negative", event(t, map[string]any{"shift_hours": -6}), false},
		{"negative output", event(t, map[string]any{"output": -1}), false},
		{"output above 10^12", event(t, map[string]any{"output": raw("1000000000001")}), false},
		{"output beyond float64", event(t, map[string]any{"output": raw("1e400")}), false},
		{"crew_size 0", event(t, map[string]any{"crew_size": 0}), false},
		{"crew_size 10001", event(t, map[string]any{"crew_size": 10001}), false},
		{"negative scrap", event(t, map[string]any{"scrap": -0.5}), false},
	}
	for _, f := range []string{"event_id", "plant_id", "industry", "role", "worker_id", "shift_start", "shift_hours", "output", "unit"} {
		cases = append(cases, struct {
			name  string
			value string
			valid bool
		}{"missing " + f, event(t, map[string]any{f: nil}), false})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, decErr := shift.Decode([]byte(c.value))
			if (decErr == nil) != c.valid {
				t.Fatalf("the case is wrong: decoder says %v", decErr)
			}
			err := ValidateEvent([]byte(c.value))
			switch {
			case c.valid && err != nil:
				t.Fatalf("does not validate: %v\n%s", err, c.value)
			case !c.valid && err == nil:
				t.Fatalf("validates, but the decoder says %s:\n%s", shift.Reason(decErr), c.value)
			case !c.valid && !errors.Is(err, ErrInvalid):
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
		})
	}
}

// TestSchemaEventLimits pins down where the schema and the decoder differ,
// as the schema's $comment says: if one of these changes, so must the
// comment.
func TestSchemaEventLimits(t *testing.T) {
	deep := strings.Repeat("[", shift.MaxDepth+2) + strings.Repeat("]", shift.MaxDepth+2)
	cases := []struct {
		name       string
		value      string
		schemaOK   bool
		decoderWhy string // the decoder's reason; "" when it accepts
	}{
		{"scrap above output", event(t, map[string]any{"scrap": 103}), true, shift.ReasonScrapAboveOutput},
		{"duplicate known key", strings.Replace(stakhanovEvent, `"unit":"t"`, `"unit":"t","output":1`, 1), true, shift.ReasonDuplicateKey},
		{"duplicate unknown key", event(t, map[string]any{"note": raw(`1,"note":2`)}), true, shift.ReasonDuplicateKey},
		{"lone surrogate escape", event(t, map[string]any{"worker_id": raw(`"a\ud835"`)}), true, shift.ReasonInvalidUTF8},
		{"deep unknown field", event(t, map[string]any{"meta": raw(deep)}), true, shift.ReasonTooDeep},
		{"over 1 MiB", event(t, map[string]any{"note": strings.Repeat("x", shift.MaxValueBytes)}), true, shift.ReasonTooLarge},
		{"offset takes the time before 1900", event(t, map[string]any{"shift_start": "1900-01-01T00:30:00+01:00"}), true, shift.ReasonTimestampRange},
		{"offset takes the time into 2100", event(t, map[string]any{"shift_start": "2099-12-31T23:30:00-01:00"}), true, shift.ReasonTimestampRange},
		{"shift_hours rounding to 0", event(t, map[string]any{"shift_hours": raw("1e-400")}), true, shift.ReasonShiftHoursRange},

		{"shift_hours rounding to 24", event(t, map[string]any{"shift_hours": raw("24.0000000000000001")}), false, ""},
		{"crew_size rounding to an integer", event(t, map[string]any{"crew_size": raw("1.00000000000000001")}), false, ""},
		{"output rounding to -0", event(t, map[string]any{"output": raw("-1e-400")}), false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, decErr := shift.Decode([]byte(c.value))
			if got := shift.Reason(decErr); got != c.decoderWhy {
				t.Fatalf("decoder says %q (%v), want %q", got, decErr, c.decoderWhy)
			}
			if err := ValidateEvent([]byte(c.value)); (err == nil) != c.schemaOK {
				t.Fatalf("schema says %v, want ok=%v", err, c.schemaOK)
			}
		})
	}
}

// alert returns a valid alert of type typ, as a map to spoil.
func alert(typ string) map[string]any {
	a := map[string]any{
		"alert_id": "73c8afad49e9baa7ba7ba4d32a38e433", "type": typ,
		"plant_id": "tsentralnaya-irmino", "industry": "coal", "role": "hewer", "unit": "t",
		"worker_id": "a.stakhanov", "event_id": "tsentralnaya-irmino-19350830-a.stakhanov-1",
		"day": "1935-08-30", "rate": 17, "norm_rate": 2.335, "ratio": 7.28051391862955,
		"scrap_share": 0, "group_size": 272, "bulk_share": 0.8566176470588235,
		"detected_at": "1935-08-31T04:00:00Z", "late": false,
	}
	switch typ {
	case "suspect_record":
		a["scrap_share"] = 0.25
	case "pace_setter":
		a["event_id"], a["rate"], a["norm_rate"], a["ratio"], a["group_size"], a["bulk_share"] = "", 4.5, 2.25, 2.0, 11, 0.81
		a["detected_at"] = "1935-08-31T06:00:00Z"
	case "common_pace":
		a["worker_id"], a["event_id"], a["rate"], a["norm_rate"], a["ratio"], a["group_size"], a["bulk_share"] = "", "", 2.25, 2.25, 1, 11, 0.81
		a["detected_at"] = "1935-08-31T06:00:00Z"
	}
	return a
}

func TestSchemaAlerts(t *testing.T) {
	with := func(typ string, kv ...any) map[string]any {
		a := alert(typ)
		for i := 0; i < len(kv); i += 2 {
			k := kv[i].(string)
			if _, del := kv[i+1].(deleted); del {
				delete(a, k)
				continue
			}
			a[k] = kv[i+1]
		}
		return a
	}
	cases := []struct {
		name  string
		alert map[string]any
		valid bool
	}{
		{"record_shift", alert("record_shift"), true},
		{"suspect_record", alert("suspect_record"), true},
		{"pace_setter", alert("pace_setter"), true},
		{"common_pace", alert("common_pace"), true},
		{"overflowed rate and ratio", with("record_shift", "rate", nil, "ratio", nil), true},
		{"overflowed day median", with("pace_setter", "norm_rate", nil, "rate", nil, "ratio", nil), true},
		{"detected in 2100", with("record_shift", "detected_at", "2100-01-01T04:00:00Z"), true},
		{"a late shift's record", with("record_shift", "late", true), true},
		{"a late shift's suspect record", with("suspect_record", "late", true), true},
		{"a late pace-setter", with("pace_setter", "late", true), false},
		{"a late common pace", with("common_pace", "late", true), false},
		{"late as a string", with("record_shift", "late", "true"), false},
		{"missing late", with("record_shift", "late", deleted{}), false},

		{"unknown type", with("record_shift", "type", "record"), false},
		{"no type", with("record_shift", "type", deleted{}), false},
		{"missing bulk_share", with("common_pace", "bulk_share", deleted{}), false},
		{"missing worker_id", with("common_pace", "worker_id", deleted{}), false},
		{"extra field", with("record_shift", "crew_size", 3), false},
		{"record without event_id", with("record_shift", "event_id", ""), false},
		{"suspect record without worker", with("suspect_record", "worker_id", ""), false},
		{"record with event_id null", with("record_shift", "event_id", nil), false},
		{"record below ratio 1", with("record_shift", "ratio", 0.5), false},
		{"record without norm", with("record_shift", "norm_rate", nil), false},
		{"record with all scrap", with("record_shift", "scrap_share", 1), false},
		{"suspect record without scrap", with("suspect_record", "scrap_share", 0), false},
		{"pace_setter without worker", with("pace_setter", "worker_id", ""), false},
		{"pace_setter with event_id", with("pace_setter", "event_id", "e1"), false},
		{"pace_setter with scrap", with("pace_setter", "scrap_share", 0.01), false},
		{"pace_setter below the median", with("pace_setter", "ratio", 0.9), false},
		{"common_pace with worker", with("common_pace", "worker_id", "a.stakhanov"), false},
		{"common_pace with ratio 2", with("common_pace", "ratio", 2), false},
		{"common_pace of one worker", with("common_pace", "group_size", 1), false},
		{"common_pace with nobody at the level", with("common_pace", "bulk_share", 0), false},
		{"upper-case alert_id", with("record_shift", "alert_id", "73C8AFAD49E9BAA7BA7BA4D32A38E433"), false},
		{"short alert_id", with("record_shift", "alert_id", "73c8afad49e9baa7ba7ba4d32a38e43"), false},
		{"empty plant_id", with("record_shift", "plant_id", ""), false},
		{"control character in role", with("record_shift", "role", "hewer\n"), false},
		{"day with time", with("record_shift", "day", "1935-08-30T00:00:00Z"), false},
		{"day 31 June", with("record_shift", "day", "1935-06-31"), false},
		{"detected_at with an offset", with("record_shift", "detected_at", "1935-08-31T08:00:00+04:00"), false},
		{"detected_at with a fraction", with("record_shift", "detected_at", "1935-08-31T04:00:00.5Z"), false},
		{"negative rate", with("record_shift", "rate", -17), false},
		{"norm_rate 0", with("pace_setter", "norm_rate", 0), false},
		{"scrap_share null", with("record_shift", "scrap_share", nil), false},
		{"bulk_share null", with("record_shift", "bulk_share", nil), false},
		{"bulk_share above 1", with("record_shift", "bulk_share", 1.1), false},
		{"fractional group_size", with("record_shift", "group_size", 27.5), false},
		{"group_size 0", with("record_shift", "group_size", 0), false},
		{"rate as string", with("record_shift", "rate", "17"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.alert)
			if err != nil {
				t.Fatal(err)
			}
			err = ValidateAlert(b)
			switch {
			case c.valid && err != nil:
				t.Fatalf("does not validate: %v\n%s", err, b)
			case !c.valid && err == nil:
				t.Fatalf("validates:\n%s", b)
			case !c.valid && !errors.Is(err, ErrInvalid):
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
		})
	}
}

// deleted, as a value in TestSchemaAlerts, removes the field.
type deleted struct{}

func TestSchemaValidateNotJSON(t *testing.T) {
	for _, v := range []string{"", "{", `{"a":1} {}`, "\xff"} {
		t.Run(fmt.Sprintf("%q", v), func(t *testing.T) {
			for _, f := range []func([]byte) error{ValidateEvent, ValidateAlert} {
				err := f([]byte(v))
				var ve *jsonschema.ValidationError
				if !errors.Is(err, ErrInvalid) || errors.As(err, &ve) {
					t.Fatalf("got %v", err)
				}
			}
		})
	}
}
