package records

import (
	"math"
	"testing"
)

func TestJudge(t *testing.T) {
	r := Rule{MinShifts: 20, Ratio: 3, SuspectScrapShare: 0.05}
	cases := []struct {
		name  string
		n     int
		ratio float64
		scrap float64
		want  Verdict
	}{
		{"stakhanov", 300, 7.3, 0, Record},
		{"exactly 3x", 20, 3, 0.05, Record},
		{"just under 3x", 20, 2.999, 0, None},
		{"too little history", 19, 10, 0, None},
		{"scrap heavy", 50, 4, 0.0501, Suspect},
		{"all scrap", 50, 4, 1, Suspect},
		{"no norm", 50, math.NaN(), 0, None},
		{"zero norm", 50, math.Inf(1), 0, Record},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := r.Judge(c.n, c.ratio, c.scrap); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}
