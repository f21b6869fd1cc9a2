package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go"
)

// Checkpoints live in a compacted topic, partition p holding input
// partition p's. A checkpoint is a processor snapshot cut into chunks under
// keys "p/c/<generation>/<i>", then a manifest under "p/m" naming the
// generation, its chunk count, length and CRC, and the input offset the
// snapshot was taken at. The manifest is written after its chunks, so a
// reader that finds a manifest finds its chunks; the previous generation's
// chunks are then deleted with tombstones and compaction reclaims them.

const (
	checkpointMagic   = "SKCP"
	checkpointVersion = 1
	// chunks stay well under the broker's 1 MiB message.max.bytes
	checkpointChunk = 900_000
)

// ErrCheckpointCorrupt: a manifest whose chunks are missing or do not
// match it.
var ErrCheckpointCorrupt = errors.New("checkpoint corrupt")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type checkpoints struct {
	*base
	topic string
	w     *kafka.Writer
}

// checkpoint is one partition's saved state.
type checkpoint struct {
	gen    uint64
	chunks int
	offset int64 // next input offset to process
	state  []byte
	// stale are chunk keys of other generations found on load: deletes
	// that failed before (an owner that died, or lost its generation,
	// mid-way). The next save deletes them with its predecessor's.
	stale []string
}

func (c *checkpoints) close() error { return c.w.Close() }

// load reads partition part's latest checkpoint; ok is false when it has
// none.
func (c *checkpoints) load(ctx context.Context, part int32) (cp checkpoint, ok bool, err error) {
	start, end, err := partitionBounds(ctx, c.client, c.topic, part)
	if err != nil {
		return cp, false, err
	}
	var manifest []byte
	chunks := map[string][]byte{}
	prefix := string(partitionKey(part, ""))
	for off := start; off < end; {
		resp, next, err := c.fetch(ctx, c.topic, part, off, 16<<20)
		if err != nil {
			return cp, false, err
		}
		off = next
		before := off
		for {
			rec, err := resp.Records.ReadRecord()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					return cp, false, fmt.Errorf("reading checkpoints: %w", err)
				}
				break
			}
			if rec.Offset < off {
				continue
			}
			off = rec.Offset + 1
			key := string(readBytes(nil, rec.Key))
			if len(key) <= len(prefix) || key[:len(prefix)] != prefix {
				continue
			}
			val := readBytes(nil, rec.Value)
			switch {
			case key == prefix+"/m":
				manifest = val // nil: deleted
			case rec.Value == nil:
				delete(chunks, key)
			default:
				chunks[key] = val
			}
		}
		if off == before {
			break // nothing more to read below end (compaction left a gap)
		}
	}
	if manifest == nil {
		return cp, false, nil
	}
	var sum uint32
	var size int
	cp, size, sum, err = parseManifest(manifest)
	if err != nil {
		return cp, false, err
	}
	state := make([]byte, 0, size)
	for i := 0; i < cp.chunks; i++ {
		b, ok := chunks[chunkKey(part, cp.gen, i)]
		if !ok {
			return cp, false, fmt.Errorf("%w: partition %d generation %d lacks chunk %d", ErrCheckpointCorrupt, part, cp.gen, i)
		}
		state = append(state, b...)
	}
	if len(state) != size || crc32.Checksum(state, castagnoli) != sum {
		return cp, false, fmt.Errorf("%w: partition %d generation %d does not match its manifest", ErrCheckpointCorrupt, part, cp.gen)
	}
	cp.state = state
	current := string(partitionKey(part, "c/"+strconv.FormatUint(cp.gen, 10)+"/"))
	for k := range chunks {
		if !strings.HasPrefix(k, current) {
			cp.stale = append(cp.stale, k)
		}
	}
	return cp, true, nil
}

// save writes state as the next generation after prev and deletes prev's
// chunks.
func (c *checkpoints) save(ctx context.Context, part int32, prev checkpoint, offset int64, state []byte) (checkpoint, error) {
	cp := checkpoint{gen: prev.gen + 1, offset: offset}
	var msgs []kafka.Message
	for i := 0; i == 0 || i*checkpointChunk < len(state); i++ {
		end := min((i+1)*checkpointChunk, len(state))
		msgs = append(msgs, kafka.Message{Key: []byte(chunkKey(part, cp.gen, i)), Value: state[i*checkpointChunk : end]})
	}
	cp.chunks = len(msgs)
	if err := c.w.WriteMessages(ctx, msgs...); err != nil {
		return prev, fmt.Errorf("writing checkpoint chunks: %w", err)
	}
	m := kafka.Message{Key: partitionKey(part, "m"), Value: appendManifest(nil, cp, len(state), crc32.Checksum(state, castagnoli))}
	if err := c.w.WriteMessages(ctx, m); err != nil {
		return prev, fmt.Errorf("writing checkpoint manifest: %w", err)
	}
	var tomb []kafka.Message
	for i := 0; i < prev.chunks; i++ {
		tomb = append(tomb, kafka.Message{Key: []byte(chunkKey(part, prev.gen, i))})
	}
	for _, k := range prev.stale {
		tomb = append(tomb, kafka.Message{Key: []byte(k)})
	}
	if len(tomb) > 0 {
		if err := c.w.WriteMessages(ctx, tomb...); err != nil {
			// only space is lost: the manifest names the new generation,
			// and whoever loads this partition next deletes the leftovers
			c.log.Debug("deleting an old checkpoint failed", "partition", part, "generation", prev.gen, "err", err)
			cp.stale = append(cp.stale, prev.stale...)
			for _, m := range tomb[:prev.chunks] {
				cp.stale = append(cp.stale, string(m.Key))
			}
		}
	}
	return cp, nil
}

func chunkKey(part int32, gen uint64, i int) string {
	return string(partitionKey(part, "c/"+strconv.FormatUint(gen, 10)+"/"+strconv.Itoa(i)))
}

func appendManifest(b []byte, cp checkpoint, size int, sum uint32) []byte {
	b = append(b, checkpointMagic...)
	b = append(b, checkpointVersion)
	b = binary.AppendUvarint(b, cp.gen)
	b = binary.AppendUvarint(b, uint64(cp.chunks))
	b = binary.AppendVarint(b, cp.offset)
	b = binary.AppendUvarint(b, uint64(size))
	return binary.BigEndian.AppendUint32(b, sum)
}

func parseManifest(b []byte) (cp checkpoint, size int, sum uint32, err error) {
	bad := fmt.Errorf("%w: bad manifest", ErrCheckpointCorrupt)
	if !bytes.HasPrefix(b, []byte(checkpointMagic)) || len(b) < len(checkpointMagic)+1 {
		return cp, 0, 0, bad
	}
	b = b[len(checkpointMagic):]
	if b[0] != checkpointVersion {
		return cp, 0, 0, fmt.Errorf("%w: manifest version %d", ErrCheckpointCorrupt, b[0])
	}
	b = b[1:]
	var n int
	read := func() uint64 {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			n = -1
			return 0
		}
		b = b[k:]
		return v
	}
	cp.gen = read()
	cp.chunks = int(read())
	off, k := binary.Varint(b)
	if k <= 0 || n < 0 {
		return cp, 0, 0, bad
	}
	b = b[k:]
	cp.offset = off
	size = int(read())
	if n < 0 || len(b) != 4 || cp.chunks < 1 || size < 0 {
		return cp, 0, 0, bad
	}
	return cp, size, binary.BigEndian.Uint32(b), nil
}

// partitionBounds returns the first and next offsets of one partition.
func partitionBounds(ctx context.Context, c *kafka.Client, topic string, part int32) (int64, int64, error) {
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(int(part)), kafka.LastOffsetOf(int(part))},
	}})
	if err != nil {
		return 0, 0, fmt.Errorf("listing offsets of %s/%d: %w", topic, part, err)
	}
	for _, po := range res.Topics[topic] {
		if po.Partition == int(part) {
			if po.Error != nil {
				return 0, 0, fmt.Errorf("listing offsets of %s/%d: %w", topic, part, po.Error)
			}
			return po.FirstOffset, po.LastOffset, nil
		}
	}
	return 0, 0, fmt.Errorf("listing offsets of %s/%d: no answer", topic, part)
}
