package analytics_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// How much of Stakhanov's record came from his crew: ten hewers cut about
// 14 t a shift for three days, then he cuts 102 t with two helpers. The
// crew_effect view, which every file the pipeline writes has, answers.
func Example_crewEffect() {
	dir, err := os.MkdirTemp("", "stakhanov-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, err := analytics.Open(ctx, analytics.DefaultOptions(filepath.Join(dir, "results.duckdb")))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	p, err := processors.NewPartition(processors.DefaultOptions(), 0)
	if err != nil {
		log.Fatal(err)
	}
	var out processors.Output
	offset := int64(0)
	hew := func(worker string, start time.Time, tons float64, crew int) {
		ev := shift.Event{
			EventID: fmt.Sprintf("%s-%s", worker, start.Format("0102")), PlantID: "tsentralnaya-irmino",
			Industry: "coal", Role: "hewer", Unit: "t", WorkerID: worker, CrewSize: crew,
			ShiftStart: start, ShiftHours: 6, Output: tons,
		}
		if err := p.Process(&ev, processors.Input{Offset: offset}, &out); err != nil {
			log.Fatal(err)
		}
		offset++
	}
	night := time.Date(1935, 8, 27, 22, 0, 0, 0, time.UTC)
	for d := range 3 {
		for w := range 10 {
			hew(fmt.Sprintf("hewer-%d", w), night.AddDate(0, 0, d), 13+float64(w%3), 1)
		}
	}
	hew("a.stakhanov", night.AddDate(0, 0, 3), 102, 3)
	_, err = store.Commit(ctx, &ingest.Batch{Topic: "shifts.v1", Shifts: out.Shifts, Alerts: out.Alerts,
		Norms: out.Norms, Offsets: map[int32]int64{0: offset}})
	if err != nil {
		log.Fatal(err)
	}

	err = store.Query(ctx, `SELECT worker_id, crew_size, round(ratio, 1) AS ratio,
		round(crew_ratio, 1) AS crew_ratio, round(crew_factor, 1) AS crew_factor,
		round(from_crew_share, 2) AS from_crew_share
		FROM crew_effect`, os.Stdout, analytics.FormatTable)
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// worker_id    crew_size  ratio  crew_ratio  crew_factor  from_crew_share
	// -----------  ---------  -----  ----------  -----------  ---------------
	// a.stakhanov          3    7.3         2.4            3             0.77
	// (1 row)
}
