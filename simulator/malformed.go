package simulator

import (
	"strconv"
	"strings"
	"time"

	"github.com/stakhanov/stakhanov/shift"
)

// kv is one field of a report, its value as raw JSON.
type kv struct{ k, v string }

// fields returns a report as a field list, for the malformed messages to
// take apart.
func fields(g *group, rec *shiftRec, id string) []kv {
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	str := func(s string) string { return `"` + s + `"` }
	fs := []kv{
		{"event_id", str(id)},
		{"plant_id", str(g.plant.id)},
		{"industry", str(g.plant.industry.name)},
	}
	if g.section != "" {
		fs = append(fs, kv{"section", str(g.section)})
	}
	fs = append(fs,
		kv{"role", str(g.spec.role)},
		kv{"worker_id", str(g.workers[rec.w].id)},
	)
	if rec.crewField {
		fs = append(fs, kv{"crew_size", strconv.Itoa(rec.crew)})
	}
	fs = append(fs,
		kv{"shift_start", str(rec.start.Format(time.RFC3339))},
		kv{"shift_hours", num(g.hours)},
		kv{"output", num(rec.output)},
		kv{"unit", str(g.spec.unit)},
	)
	if rec.hasScrap {
		fs = append(fs, kv{"scrap", num(rec.scrap)})
	}
	return fs
}

func marshal(fs []kv) []byte {
	b := []byte{'{'}
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f.k...)
		b = append(b, `":`...)
		b = append(b, f.v...)
	}
	return append(b, '}')
}

// set replaces a field's value, or appends the field.
func set(fs []kv, k, v string) []kv {
	for i := range fs {
		if fs[i].k == k {
			fs[i].v = v
			return fs
		}
	}
	return append(fs, kv{k, v})
}

func get(fs []kv, k string) string {
	for _, f := range fs {
		if f.k == k {
			return f.v
		}
	}
	return ""
}

func without(fs []kv, k string) []kv {
	out := fs[:0]
	for _, f := range fs {
		if f.k != k {
			out = append(out, f)
		}
	}
	return out
}

// pick returns one of the choices.
func pick(r *rng, choices ...string) string { return choices[r.intn(len(choices))] }

// defect is one way to spoil a report. make gets the report's fields (a
// copy it may change) and returns the message value.
type defect struct {
	name   string
	reason string
	make   func(r *rng, fs []kv, rec *shiftRec) []byte
}

var requiredFields = []string{"event_id", "plant_id", "industry", "role", "worker_id", "shift_start", "shift_hours", "output", "unit"}

// defects is every kind of malformed message, each with the reason
// shift.Decode must give. One is drawn uniformly for each malformed message.
// (A value above shift.MaxValueBytes is left out: it would exceed Kafka's
// default message size.)
var defects = []defect{
	{"not_json", shift.ReasonInvalidJSON, func(r *rng, fs []kv, rec *shiftRec) []byte {
		w := strings.Trim(get(fs, "worker_id"), `"`)
		return []byte(pick(r,
			"Shift report: "+w+" "+get(fs, "output")+" "+strings.Trim(get(fs, "unit"), `"`),
			"<shift><worker>"+w+"</worker><output>"+get(fs, "output")+"</output></shift>",
			"plant_id,worker_id,output\n"+strings.Trim(get(fs, "plant_id"), `"`)+","+w+","+get(fs, "output"),
			"ERROR: report lost at the pit-head telegraph",
		))
	}},
	{"empty", shift.ReasonEmpty, func(r *rng, fs []kv, rec *shiftRec) []byte { return []byte{} }},
	{"blank", shift.ReasonTruncated, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return []byte(pick(r, " ", "\n", "\t \r\n"))
	}},
	{"truncated", shift.ReasonTruncated, func(r *rng, fs []kv, rec *shiftRec) []byte {
		b := marshal(fs)
		return b[:1+r.intn(len(b)-1)]
	}},
	{"not_object", shift.ReasonNotObject, func(r *rng, fs []kv, rec *shiftRec) []byte {
		switch r.intn(3) {
		case 0:
			return append(append([]byte{'['}, marshal(fs)...), ']')
		case 1:
			return []byte(get(fs, "event_id"))
		}
		return []byte(get(fs, "output"))
	}},
	{"trailing_data", shift.ReasonTrailingData, func(r *rng, fs []kv, rec *shiftRec) []byte {
		b := marshal(fs)
		return append(append(append([]byte{}, b...), '\n'), b...)
	}},
	{"output_as_string", shift.ReasonWrongType, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, "output", `"`+strings.Trim(get(fs, "output"), `"`)+`"`))
	}},
	{"id_as_number", shift.ReasonWrongType, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, pick(r, "plant_id", "worker_id", "event_id", "unit"), strconv.Itoa(1+r.intn(999))))
	}},
	{"fractional_crew", shift.ReasonWrongType, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, "crew_size", pick(r, "2.5", "1.5", "3.25")))
	}},
	{"null_or_bool_number", shift.ReasonWrongType, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, pick(r, "output", "shift_hours", "scrap", "crew_size"), pick(r, "null", "true", "false", `"NaN"`, "[]", "{}")))
	}},
	{"nan_token", shift.ReasonInvalidJSON, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, pick(r, "output", "shift_hours"), pick(r, "NaN", "Infinity", "-Infinity", "+14", ".5", "0x1F")))
	}},
	{"huge_number", shift.ReasonNumberOutOfRange, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, pick(r, "output", "shift_hours", "scrap", "crew_size"), pick(r, "1e400", "-1e400", "2e308")))
	}},
	{"output_too_large", shift.ReasonOutputRange, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, "output", pick(r, "2e12", "1000000000001", "9.9e99")))
	}},
	{"negative_output", shift.ReasonNegativeOutput, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, "output", pick(r, "-"+get(fs, "output"), "-1", "-0.5")))
	}},
	{"negative_scrap", shift.ReasonNegativeScrap, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, "scrap", pick(r, "-0.5", "-1", "-0.01")))
	}},
	{"scrap_above_output", shift.ReasonScrapAboveOutput, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, "scrap", strconv.FormatFloat(rec.output+1+float64(r.intn(50)), 'f', -1, 64)))
	}},
	{"shift_hours_out_of_range", shift.ReasonShiftHoursRange, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, "shift_hours", pick(r, "0", "25", "-6", "24.5", "48")))
	}},
	{"crew_size_out_of_range", shift.ReasonCrewSizeRange, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, "crew_size", pick(r, "0", "-2", "20000")))
	}},
	{"missing_field", shift.ReasonMissingField, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(without(fs, requiredFields[r.intn(len(requiredFields))]))
	}},
	{"empty_field", shift.ReasonEmptyField, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, pick(r, "event_id", "plant_id", "industry", "role", "worker_id", "unit"), `""`))
	}},
	{"bad_timestamp", shift.ReasonBadTimestamp, func(r *rng, fs []kv, rec *shiftRec) []byte {
		t := rec.start
		return marshal(set(fs, "shift_start", `"`+pick(r,
			t.Format("2006-01-02 15:04:05"),
			t.Format("02.01.2006 15:04"),
			t.Format("2006-01-02T15:04:05"),
			strings.ToLower(t.Format(time.RFC3339)),
			t.Format("2006-01-02"),
			t.Format("2006-01-")+"32T06:00:00Z",
			strconv.FormatInt(t.Unix(), 10),
			"night shift",
		)+`"`))
	}},
	{"timestamp_out_of_range", shift.ReasonTimestampRange, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, "shift_start", pick(r, `"1899-12-31T22:00:00Z"`, `"2100-01-01T06:00:00Z"`, `"0001-01-01T00:00:00Z"`, `"9999-12-31T22:00:00Z"`)))
	}},
	{"shift_start_as_number", shift.ReasonWrongType, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return marshal(set(fs, "shift_start", strconv.FormatInt(rec.start.Unix(), 10)))
	}},
	{"duplicate_key", shift.ReasonDuplicateKey, func(r *rng, fs []kv, rec *shiftRec) []byte {
		if r.chance(0.5) {
			k := pick(r, "output", "worker_id", "shift_start")
			return marshal(append(fs, kv{k, get(fs, k)}))
		}
		return marshal(append(fs, kv{"note", `"first"`}, kv{"note", `"second"`}))
	}},
	{"invalid_utf8", shift.ReasonInvalidUTF8, func(r *rng, fs []kv, rec *shiftRec) []byte {
		w := strings.Trim(get(fs, "worker_id"), `"`)
		bad := pick(r, "\xff", "\xe9", "\xc3\x28", "\xed\xa0\x80", "\xf0\x9f")
		return marshal(set(fs, "worker_id", `"`+w[:1]+bad+w[1:]+`"`))
	}},
	{"lone_surrogate", shift.ReasonInvalidUTF8, func(r *rng, fs []kv, rec *shiftRec) []byte {
		w := strings.Trim(get(fs, "worker_id"), `"`)
		return marshal(set(fs, "worker_id", `"`+w+pick(r, `\ud835`, `\udc00`, `\ud835x`)+`"`))
	}},
	{"control_character", shift.ReasonControlCharacter, func(r *rng, fs []kv, rec *shiftRec) []byte {
		k := pick(r, "event_id", "plant_id", "worker_id", "role")
		v := strings.Trim(get(fs, k), `"`)
		return marshal(set(fs, k, `"`+v+pick(r, `\u0000`, `\u0007`, `\n`, `\t`, `\u001b[31m`, "\x7f", `\u007f`)+`"`))
	}},
	{"raw_control_character", shift.ReasonInvalidJSON, func(r *rng, fs []kv, rec *shiftRec) []byte {
		v := strings.Trim(get(fs, "worker_id"), `"`)
		return marshal(set(fs, "worker_id", `"`+v+pick(r, "\x00", "\x07", "\n", "\t")+`"`))
	}},
	{"invalid_escape", shift.ReasonUnsupportedEscape, func(r *rng, fs []kv, rec *shiftRec) []byte {
		v := strings.Trim(get(fs, "worker_id"), `"`)
		return marshal(set(fs, "worker_id", `"`+v+pick(r, `\x41`, `\'`, `\a`, `\u12G4`)+`"`))
	}},
	{"long_event_id", shift.ReasonFieldTooLong, func(r *rng, fs []kv, rec *shiftRec) []byte {
		v := strings.Trim(get(fs, "event_id"), `"`)
		pad := shift.MaxEventIDLen + 1 - len(v) + r.intn(200)
		return marshal(set(fs, "event_id", `"`+v+"-"+strings.Repeat("x", max(pad, 1))+`"`))
	}},
	{"long_identifier", shift.ReasonFieldTooLong, func(r *rng, fs []kv, rec *shiftRec) []byte {
		k := pick(r, "plant_id", "worker_id", "section", "unit")
		return marshal(set(fs, k, `"`+strings.Repeat("stakhanovets-", 20+r.intn(10))+`"`))
	}},
	{"too_deep", shift.ReasonTooDeep, func(r *rng, fs []kv, rec *shiftRec) []byte {
		n := shift.MaxDepth + 2 + r.intn(20)
		return marshal(append(fs, kv{"meta", strings.Repeat("[", n) + strings.Repeat("]", n)}))
	}},
	{"single_quotes", shift.ReasonInvalidJSON, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return []byte(strings.ReplaceAll(string(marshal(fs)), `"`, `'`))
	}},
	{"unquoted_keys", shift.ReasonInvalidJSON, func(r *rng, fs []kv, rec *shiftRec) []byte {
		b := marshal(fs)
		return []byte(strings.Replace(string(b), `"event_id"`, `event_id`, 1))
	}},
	{"trailing_comma", shift.ReasonInvalidJSON, func(r *rng, fs []kv, rec *shiftRec) []byte {
		b := marshal(fs)
		return append(b[:len(b)-1], ",}"...)
	}},
	{"byte_order_mark", shift.ReasonInvalidJSON, func(r *rng, fs []kv, rec *shiftRec) []byte {
		return append([]byte("\xef\xbb\xbf"), marshal(fs)...)
	}},
}

// malformed makes a malformed message from a shift.
func malformed(r *rng, g *group, rec *shiftRec, id string) (value []byte, defectName, reason string) {
	d := &defects[r.intn(len(defects))]
	return d.make(r, fields(g, rec, id), rec), d.name, d.reason
}
