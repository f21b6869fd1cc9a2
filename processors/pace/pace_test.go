package pace_test

import (
	"slices"
	"testing"

	"github.com/stakhanov/stakhanov/processors"
)

func TestJudge(t *testing.T) {
	r := processors.DefaultOptions().PaceRule() // 8 workers, 1.5×, ±10 % for 70 %
	cases := []struct {
		name    string
		rates   []float64
		judged  bool
		common  bool
		setters []int
	}{
		{"flag board", []float64{10, 10.2, 9.8, 10.1, 9.9, 10, 25, 10, 18}, true, true, []int{6, 8}},
		{"seven workers", []float64{10, 10, 10, 10, 10, 10, 30}, false, false, nil},
		{"spread shop", []float64{5, 7, 9, 11, 13, 15, 17, 19}, true, false, []int{7}},
		{"exactly 1.5x", []float64{10, 10, 10, 10, 10, 10, 10, 15}, true, true, []int{7}},
		{"exactly 70 percent", []float64{10, 10, 10, 10, 10, 10, 10, 20, 20, 5}, true, true, []int{7, 8}},
		{"just under 70 percent", []float64{10, 10, 10, 10, 10, 10, 20, 20, 5, 5}, true, false, []int{6, 7}},
		{"idle shop", []float64{0, 0, 0, 0, 0, 0, 0, 0, 3}, false, false, nil},
		// median 10; 9 and 11 are exactly −10 % and +10 %: 7 of 10 at
		// the common level
		{"exactly at 10 percent", []float64{10, 10, 10, 10, 10, 9, 11, 5, 5, 20}, true, true, []int{9}},
		{"beyond 10 percent", []float64{10, 10, 10, 10, 10, 8.99, 11.01, 5, 5, 20}, true, false, []int{9}},
		{"eight workers", []float64{10, 10, 10, 10, 10, 10, 10, 30}, true, true, []int{7}},
		{"just under 1.5x", []float64{10, 10, 10, 10, 10, 10, 10, 14.99}, true, true, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := r.Judge(c.rates)
			if v.Judged != c.judged || v.Common != c.common || !slices.Equal(v.Setters, c.setters) {
				t.Fatalf("got %+v, want judged %v common %v setters %v", v, c.judged, c.common, c.setters)
			}
		})
	}
}
