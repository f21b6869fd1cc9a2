package ingest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/processors"
)

// TestAlertJSONStrings: identifiers the event decoder accepts come out as
// valid JSON that reads back to the same text (bad UTF-8 as U+FFFD).
func TestAlertJSONStrings(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"plain", "a.stakhanov", "a.stakhanov"},
		{"quote and backslash", `say "102" \ t`, `say "102" \ t`},
		{"control characters", "a\x00b\x1f\n\t\r", "a\x00b\x1f\n\t\r"},
		{"beyond the basic plane, private use", "a\U000F0000", "a\U000F0000"},
		{"tag character", "a\U000E0001", "a\U000E0001"},
		{"Cyrillic and emoji", "Алексей Стаханов 🚩", "Алексей Стаханов 🚩"},
		{"line separators", "a\u2028b\u2029", "a\u2028b\u2029"},
		{"invalid UTF-8", "a\xffb", "a\ufffdb"},
		{"a real U+FFFD", "a\ufffd", "a\ufffd"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := processors.Alert{ID: "id", Type: processors.RecordShift, PlantID: tt.in, WorkerID: tt.in,
				DetectedAt: time.Date(1935, 8, 31, 5, 45, 0, 0, time.UTC)}
			b := AppendAlertJSON(nil, &a)
			if !json.Valid(b) {
				t.Fatalf("not JSON: %s", b)
			}
			var got struct {
				PlantID  string `json:"plant_id"`
				WorkerID string `json:"worker_id"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.PlantID != tt.want || got.WorkerID != tt.want {
				t.Fatalf("read back %q, want %q", got.PlantID, tt.want)
			}
			if strings.Contains(string(b), `\x`) || strings.Contains(string(b), `\U`) {
				t.Fatalf("Go escapes in %s", b)
			}
		})
	}
}
