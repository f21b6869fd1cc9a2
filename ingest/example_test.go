package ingest_test

import (
	"fmt"
	"time"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

func ExampleAppendAlertJSON() {
	day := shift.DayOf(time.Date(1935, 8, 30, 0, 0, 0, 0, time.UTC))
	a := processors.Alert{
		Type: processors.RecordShift, PlantID: "tsentralnaya-irmino", Industry: "coal", Role: "hewer", Unit: "t",
		WorkerID: "a.stakhanov", EventID: "e1", Day: day, Rate: 17, NormRate: 2.335, Ratio: 17 / 2.335,
		GroupSize: 272, BulkShare: 0.86, DetectedAt: time.Date(1935, 8, 30, 22, 0, 0, 0, time.UTC),
	}
	a.ID = processors.ShiftAlertID(a.Type, a.EventID)
	fmt.Println(string(ingest.AppendAlertJSON(nil, &a)))
	// Output:
	// {"alert_id":"e53e4b3ebff2a1384b1a12d2dac874dc","type":"record_shift","plant_id":"tsentralnaya-irmino","industry":"coal","role":"hewer","unit":"t","worker_id":"a.stakhanov","event_id":"e1","day":"1935-08-30","rate":17,"norm_rate":2.335,"ratio":7.28051391862955,"scrap_share":0,"group_size":272,"bulk_share":0.86,"detected_at":"1935-08-30T22:00:00Z","late":false}
}
