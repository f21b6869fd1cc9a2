package ingest

import (
	"bytes"
	"context"
	"testing"
)

// TestCheckpointLeftoversAreDeleted: chunks of a generation whose deletion
// failed (its owner died between manifest and tombstones) are found by the
// next load and deleted by the save after it, so the compacted topic does
// not keep them for ever.
func TestCheckpointLeftoversAreDeleted(t *testing.T) {
	env := testKafka(t, 1, "shift-events")
	o := env.options("ckpt")
	b, err := newBase(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := EnsureTopics(ctx, b.client, 1, o.CheckpointTopic()); err != nil {
		t.Fatal(err)
	}
	role := newProcessorRole(&b, &counters{})
	defer role.close()
	big := bytes.Repeat([]byte{7}, 2*checkpointChunk+10) // three chunks
	gen1, err := role.ckpt.save(ctx, 0, checkpoint{}, 10, big)
	if err != nil {
		t.Fatal(err)
	}
	// a save that "forgot" its predecessor, as one whose tombstones failed
	if _, err := role.ckpt.save(ctx, 0, checkpoint{gen: gen1.gen}, 20, []byte("second")); err != nil {
		t.Fatal(err)
	}
	cp, ok, err := role.ckpt.load(ctx, 0)
	if err != nil || !ok || string(cp.state) != "second" || cp.offset != 20 {
		t.Fatalf("load: %v %v %+v", err, ok, cp)
	}
	if len(cp.stale) != gen1.chunks {
		t.Fatalf("found %d leftover chunks, want %d", len(cp.stale), gen1.chunks)
	}
	if _, err := role.ckpt.save(ctx, 0, cp, 30, []byte("third")); err != nil {
		t.Fatal(err)
	}
	cp, ok, err = role.ckpt.load(ctx, 0)
	if err != nil || !ok || string(cp.state) != "third" || len(cp.stale) != 0 {
		t.Fatalf("after the next save: %v %v state %q, %d leftovers", err, ok, cp.state, len(cp.stale))
	}
}
