package ingest

import (
	"math"
	"strconv"
	"time"

	"github.com/stakhanov/stakhanov/processors"
)

// AppendAlertJSON appends the alert message of the contract: one JSON
// object, keyed in Kafka by plant_id. Numbers that are undefined (NaN) are
// null. Field order is fixed so that a re-sent alert is byte-identical.
func AppendAlertJSON(b []byte, a *processors.Alert) []byte {
	b = append(b, `{"alert_id":`...)
	b = strconv.AppendQuote(b, a.ID)
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, string(a.Type))
	for _, f := range [...]struct{ k, v string }{
		{"plant_id", a.PlantID}, {"industry", a.Industry}, {"role", a.Role}, {"unit", a.Unit},
		{"worker_id", a.WorkerID}, {"event_id", a.EventID}, {"day", a.Day.String()},
	} {
		b = append(b, ',', '"')
		b = append(b, f.k...)
		b = append(b, '"', ':')
		b = strconv.AppendQuote(b, f.v)
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
	return append(b, '"', '}')
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
