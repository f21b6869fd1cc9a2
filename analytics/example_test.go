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

// Open a store, commit one batch with its offsets, and query it.
func Example() {
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

	start := time.Date(1935, 8, 30, 22, 0, 0, 0, time.UTC)
	ev := shift.Event{EventID: "e-1", PlantID: "tsentralnaya-irmino", Industry: "coal",
		Role: "hewer", WorkerID: "stakhanov", CrewSize: 3, ShiftStart: start,
		ShiftHours: 6, Output: 102, Unit: "t"}
	batch := &ingest.Batch{
		Topic: "shifts.v1",
		Shifts: []processors.Shift{{Event: ev, Partition: 0, Offset: 41,
			Rate: ev.Rate(), CrewRate: ev.CrewRate(),
			Norm:  processors.Norm{Count: 30, Median: 7.0 / 6, Mean: 1.2, P90: 1.5, MAD: 0.1, Bulk: 0.8},
			Ratio: ev.Rate() / (7.0 / 6)}},
		Offsets: map[int32]int64{0: 42},
	}
	res, err := store.Commit(ctx, batch)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("inserted", res.ShiftsInserted)

	err = store.Query(ctx, `SELECT worker_id, day, rate, round(ratio, 1) AS ratio
		FROM shifts ORDER BY ratio DESC`, os.Stdout, analytics.FormatTable)
	if err != nil {
		log.Fatal(err)
	}
	offsets, err := store.Offsets(ctx, "shifts.v1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("resume partition 0 at", offsets[0])
	// Output:
	// inserted 1
	// worker_id  day         rate  ratio
	// ---------  ----------  ----  -----
	// stakhanov  1935-08-30    17   14.6
	// (1 row)
	// resume partition 0 at 42
}
