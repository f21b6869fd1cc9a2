package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// failingSink fails every commit with ErrSinkFailed, as a sink whose file is
// damaged does.
type failingSink struct {
	*MemorySink
	commits atomic.Int64
}

func (f *failingSink) Commit(ctx context.Context, b *Batch) (CommitResult, error) {
	f.commits.Add(1)
	return CommitResult{}, fmt.Errorf("damaged: %w", ErrSinkFailed)
}

// TestSinkFailedStopsTheSink: a commit that fails with ErrSinkFailed is not
// retried; the sink role stops and Run returns the error at once, without
// waiting for a signal or the shutdown timeout.
func TestSinkFailedStopsTheSink(t *testing.T) {
	env := testKafka(t, 2, "shift-events")
	o := env.options("sinkfailed")
	o.ShutdownTimeout = time.Minute // a retrying flush would hold Run this long
	produce(t, env.addr, env.topic("shift-events"), workload()[:200])
	sink := &failingSink{MemorySink: NewMemorySink()}
	p, err := New(o, sink)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrSinkFailed) {
			t.Fatalf("Run returned %v, want ErrSinkFailed", err)
		}
		t.Logf("Run returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(45 * time.Second):
		t.Fatal("Run did not stop on ErrSinkFailed")
	}
	if n := sink.commits.Load(); n != 1 {
		t.Fatalf("%d commits tried, want 1: the failure was retried", n)
	}
}
