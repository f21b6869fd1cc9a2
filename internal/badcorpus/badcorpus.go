// Package badcorpus loads the corpus of bad shift-event messages under
// shift/testdata/bad: every kind of bad input the pipeline must reject, each
// with the reason it must be rejected for. The decoder's tests and the
// pipeline's tests share it.
package badcorpus

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Case is one message of the corpus.
type Case struct {
	Name   string
	Value  []byte
	Reason string
	// ThroughKafka is false for values larger than a broker's default
	// message.max.bytes: no producer can send them.
	ThroughKafka bool
}

// Dir is the corpus directory in this source tree.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "shift", "testdata", "bad")
}

// Load reads the corpus, plus two large cases made here rather than stored.
func Load() ([]Case, error) {
	dir := Dir()
	f, err := os.Open(filepath.Join(dir, "expected.tsv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Case
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		parts := strings.Split(line, "\t")
		if len(parts) != 3 {
			return nil, fmt.Errorf("expected.tsv: bad line %q", line)
		}
		v, err := os.ReadFile(filepath.Join(dir, parts[0]))
		if err != nil {
			return nil, err
		}
		out = append(out, Case{Name: strings.TrimSuffix(parts[0], ".bin"), Value: v, Reason: parts[1], ThroughKafka: parts[2] == "yes"})
	}
	out = append(out,
		Case{Name: "garbage-900k", Value: bytes.Repeat([]byte("x"), 900_000), Reason: "invalid_json", ThroughKafka: true},
		Case{Name: "too-large-1100k", Value: append(append([]byte(`{"pad":"`), bytes.Repeat([]byte("y"), 1_100_000)...), `"}`...), Reason: "too_large"},
	)
	return out, sc.Err()
}
