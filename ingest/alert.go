package ingest

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/stakhanov/stakhanov/processors"
)

// AppendAlertJSON appends the alert message of the contract: one JSON
// object, keyed in Kafka by plant_id. Numbers that are undefined (NaN) are
// null. Field order is fixed so that a re-sent alert is byte-identical.
func AppendAlertJSON(b []byte, a *processors.Alert) []byte {
	b = append(b, `{"alert_id":`...)
	b = appendJSONString(b, a.ID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, string(a.Type))
	for _, f := range [...]struct{ k, v string }{
		{"plant_id", a.PlantID}, {"industry", a.Industry}, {"role", a.Role}, {"unit", a.Unit},
		{"worker_id", a.WorkerID}, {"event_id", a.EventID}, {"day", a.Day.String()},
	} {
		b = append(b, ',', '"')
		b = append(b, f.k...)
		b = append(b, '"', ':')
		b = appendJSONString(b, f.v)
	}
	for _, f := range [...]struct {
		k string
		v float64
	}{{"rate", a.Rate}, {"norm_rate", a.NormRate}, {"ratio", a.Ratio}, {"scrap_share", a.ScrapShare}} {
		b = appendNumberField(b, f.k, f.v)
	}
	b = append(b, `,"group_size":`...)
	b = strconv.AppendInt(b, int64(a.GroupSize), 10)
	b = appendNumberField(b, "bulk_share", a.BulkShare)
	b = append(b, `,"detected_at":"`...)
	b = a.DetectedAt.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","late":`...)
	b = strconv.AppendBool(b, a.Late)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. strconv.AppendQuote is Go
// syntax, not JSON: it writes \x and \U escapes for some characters an
// event may carry, which JSON readers refuse. Here only what JSON requires
// is escaped (", \ and control characters); invalid UTF-8 becomes
// U+FFFD, as encoding/json does; U+2028 and U+2029 are escaped for
// readers that embed JSON in JavaScript.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			switch r {
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
			}
		case r == 0x2028 || r == 0x2029:
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default: // a bad byte comes as utf8.RuneError: written as U+FFFD

			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

func appendNumberField(b []byte, k string, v float64) []byte {
	b = append(b, ',', '"')
	b = append(b, k...)
	b = append(b, '"', ':')
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
