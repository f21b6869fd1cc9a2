package records_test

import (
	"math"
	"testing"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/processors/records"
)

func TestJudge(t *testing.T) {
	r := processors.DefaultOptions().RecordRule() // 20 shifts, 3×, 5 % scrap
	cases := []struct {
		name  string
		n     int
		ratio float64
		scrap float64
		want  records.Verdict
	}{
		{"stakhanov", 300, 7.3, 0, records.Record},
		{"exactly 3x", 20, 3, 0.05, records.Record},
		{"just under 3x", 20, 2.999, 0, records.None},
		{"too little history", 19, 10, 0, records.None},
		{"scrap heavy", 50, 4, 0.0501, records.Suspect},
		{"all scrap", 50, 4, 1, records.Suspect},
		{"no norm", 50, math.NaN(), 0, records.None},
		{"zero norm", 50, math.Inf(1), 0, records.Record},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := r.Judge(c.n, c.ratio, c.scrap); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}
