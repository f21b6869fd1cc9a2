package schemas_test

import (
	"errors"
	"fmt"

	"github.com/stakhanov/stakhanov/schemas"
)

func Example() {
	event := `{"event_id":"tsentralnaya-irmino-19350830-a.stakhanov-1","plant_id":"tsentralnaya-irmino",
 "industry":"coal","section":"seam-nikanor","role":"hewer","worker_id":"a.stakhanov",
 "crew_size":3,"shift_start":"1935-08-30T22:00:00Z","shift_hours":6,"output":102,"unit":"t"}`
	fmt.Println("event:", schemas.ValidateEvent([]byte(event)))

	// A report without its output, and with a helper counted in halves.
	bad := `{"event_id":"tsentralnaya-irmino-19350830-a.stakhanov-1","plant_id":"tsentralnaya-irmino",
 "industry":"coal","role":"hewer","worker_id":"a.stakhanov",
 "crew_size":1.5,"shift_start":"1935-08-30T22:00:00Z","shift_hours":6,"unit":"t"}`
	err := schemas.ValidateEvent([]byte(bad))
	fmt.Println(errors.Is(err, schemas.ErrInvalid))
	fmt.Println(err)

	alert := `{"alert_id":"73c8afad49e9baa7ba7ba4d32a38e433","type":"common_pace","plant_id":"tsentralnaya-irmino",
 "industry":"coal","role":"hewer","unit":"t","worker_id":"","event_id":"","day":"1935-08-30","rate":2.3,
 "norm_rate":2.3,"ratio":1,"scrap_share":0,"group_size":12,"bulk_share":0.75,"detected_at":"1935-08-31T06:00:00Z","late":false}`
	fmt.Println("alert:", schemas.ValidateAlert([]byte(alert)))
	// Output:
	// event: <nil>
	// true
	// schemas: shift event: message does not match its schema: jsonschema validation failed with 'https://stakhanov.dev/schemas/shift-event.schema.json#'
	// - at '': missing property 'output'
	// - at '/crew_size': got number, want integer
	// alert: <nil>
}
