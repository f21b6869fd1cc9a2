package shift_test

import (
	"fmt"

	"github.com/stakhanov/stakhanov/shift"
)

func ExampleDecode() {
	ev, err := shift.Decode([]byte(`{"event_id":"e1","plant_id":"tsentralnaya-irmino","industry":"coal",
		"role":"hewer","worker_id":"a.stakhanov","crew_size":3,"shift_start":"1935-08-30T22:00:00Z",
		"shift_hours":6,"output":102,"unit":"t"}`))
	fmt.Println(ev.WorkerID, ev.Rate(), "t/h;", err)

	_, err = shift.Decode([]byte(`{"event_id":"e2","plant_id":"p","industry":"coal","role":"hewer",
		"worker_id":"w","shift_start":"1935-08-30T22:00:00Z","shift_hours":6,"output":10,"scrap":12,"unit":"t"}`))
	fmt.Println(shift.Reason(err))
	// Output:
	// a.stakhanov 17 t/h; <nil>
	// scrap_above_output
}
