package simulator_test

import (
	"fmt"
	"log"

	"github.com/stakhanov/stakhanov/shift"
	"github.com/stakhanov/stakhanov/simulator"
)

// Generate the default summer of 1935 and find Stakhanov's night shift in it.
func Example() {
	sim, err := simulator.New(simulator.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	kinds := map[simulator.Kind]int{}
	for {
		m, ok := sim.Next()
		if !ok {
			break
		}
		kinds[m.Kind]++
		// m.Key and m.Value are what a producer would send to Kafka.
		if m.Kind == simulator.KindValid && m.EventID == sim.Truth().Stakhanov {
			ev, _ := shift.Decode(m.Value)
			fmt.Printf("%s, %s at %s: %v %s in %v h (%v per hour), crew of %d\n",
				ev.WorkerID, ev.Role, ev.PlantID, ev.Output, ev.Unit, ev.ShiftHours, ev.Rate(), ev.CrewSize)
		}
	}
	t := sim.Truth()
	fmt.Println("messages:", t.Messages, "valid events:", t.Valid)
	fmt.Println("duplicates:", kinds[simulator.KindDuplicate], "late:", kinds[simulator.KindLate], "malformed:", kinds[simulator.KindMalformed])
	fmt.Println("records:", len(t.RecordShifts), "suspect records:", len(t.SuspectRecords), "pace-setters:", len(t.PaceSetters))
	fmt.Println("near misses:", len(t.NearRecords), "shifts,", len(t.NearDays), "days")
	// Output:
	// a.stakhanov, hewer at tsentralnaya-irmino: 102 t in 6 h (17 per hour), crew of 3
	// messages: 42598 valid events: 41979
	// duplicates: 419 late: 105 malformed: 200
	// records: 25 suspect records: 11 pace-setters: 83
	// near misses: 25 shifts, 29 days
}
