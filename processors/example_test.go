package processors_test

import (
	"fmt"
	"time"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// A coal face where ten hewers cut about 14 t a shift for three days, then
// one of them, with two helpers, cuts 102 t. His night shift also moves the
// partition's stream time past the previous day's end plus lateness, which
// closes that day: its shop held a common pace.
func ExamplePartition() {
	p, err := processors.NewPartition(processors.DefaultOptions(), 0)
	if err != nil {
		panic(err)
	}
	var out processors.Output
	day := time.Date(1935, 8, 27, 22, 0, 0, 0, time.UTC)
	offset := int64(0)
	hew := func(worker string, start time.Time, tons float64, crew int) {
		ev := shift.Event{
			EventID: fmt.Sprintf("%s-%s", worker, start.Format("0102")), PlantID: "tsentralnaya-irmino",
			Industry: "coal", Role: "hewer", Unit: "t", WorkerID: worker, CrewSize: crew,
			ShiftStart: start, ShiftHours: 6, Output: tons,
		}
		_ = p.Process(&ev, processors.Input{Offset: offset}, &out)
		offset++
	}
	for d := 0; d < 3; d++ {
		for w := 0; w < 10; w++ {
			hew(fmt.Sprintf("hewer-%d", w), day.Add(time.Duration(d)*24*time.Hour), 13+float64(w%3), 1)
		}
	}
	out.Reset()
	hew("a.stakhanov", day.Add(72*time.Hour), 102, 3)

	s := out.Shifts[0]
	fmt.Printf("norm %.2f t/h over %d shifts, ratio %.1f, per crew-hour %.1f\n", s.Norm.Median, s.Norm.Count, s.Ratio, s.CrewRatio)
	for _, a := range out.Alerts {
		fmt.Println(a.Type, a.WorkerID, a.Day)
	}
	// Output:
	// norm 2.33 t/h over 30 shifts, ratio 7.3, per crew-hour 2.4
	// record_shift a.stakhanov 1935-08-30
	// common_pace  1935-08-29
}
