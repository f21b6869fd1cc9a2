//go:build !duckdb_arrow

package manifests

import (
	"fmt"
	"os"
	"testing"
)

// Without the tag the pipeline's app package does not compile, and the
// checks would be skipped without a word: fail, and say how to run them.
func TestMain(m *testing.M) {
	fmt.Fprintln(os.Stderr, "deploy/manifests: the checks link the pipeline, whose DuckDB driver needs the build tag duckdb_arrow:\n\tGOFLAGS=-tags=duckdb_arrow go test ./...   (make deploy-test sets it)")
	os.Exit(1)
}
