package flightsql

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/access"
	"github.com/stakhanov/stakhanov/internal/testenv"
	"github.com/stakhanov/stakhanov/internal/testpki"
)

// Real third-party clients against a server with a token and TLS of a
// test authority: Python's ADBC driver (into pyarrow and Polars) and the
// Apache Arrow Flight SQL JDBC driver (what DBeaver, Superset and Tableau
// load).

// securedServer serves openStore's file as the pipeline serves it beyond
// loopback: the token of a token file and TLS of a test authority, read by
// package access as for the HTTP endpoint. It returns the server's URI,
// the token file and the authority's PEM file.
func securedServer(t *testing.T) (uri, tokenFile, caFile string) {
	t.Helper()
	ca := testpki.NewCA(t, t.TempDir(), "flight")
	cert, key := ca.Server(t, "sink", "127.0.0.1", "localhost")
	tokens, tokenFile := serverTokens(t, "adbc-and-jdbc-token")
	o := DefaultOptions()
	o.Tokens = tokens
	o.TLS = serverTLS(t, access.TLSOptions{CertFile: cert, KeyFile: key})
	return serve(t, openStore(t), o), tokenFile, ca.CAFile
}

func TestADBCPython(t *testing.T) {
	py := os.Getenv("STAKHANOV_PYTHON")
	if py == "" {
		testenv.Missing(t, "STAKHANOV_PYTHON is not set: it names a Python with adbc-driver-flightsql, pyarrow and polars",
			"make test sets up notebooks/requirements.txt's virtualenv under ~/.cache/stakhanov and sets it; by hand: python3 -m venv DIR && DIR/bin/pip install -r notebooks/requirements.txt, then STAKHANOV_PYTHON=DIR/bin/python")
	}
	uri, tokenFile, caFile := securedServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, filepath.Join("testdata", "adbc_check.py"), uri, tokenFile, caFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", py, err, stderr.String())
	}
	var got struct {
		Versions map[string]string
		Arrow    struct {
			Rows  int64
			Types []string
			SumI  int64  `json:"sum_i"`
			LastS string `json:"last_s"`
		}
		Polars struct {
			Type string
			Rows []map[string]int64
		}
		Objects    map[string][]string
		Delete     *string
		Attach     *string
		WrongToken *string `json:"wrong_token"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("read by %v", got.Versions)
	if got.Arrow.Rows != testRows || got.Arrow.SumI != testRows*(testRows-1)/2 || got.Arrow.LastS != "row 9999" ||
		strings.Join(got.Arrow.Types, ",") != "int64,string,date32[day]" {
		t.Errorf("pyarrow read %+v", got.Arrow)
	}
	// 10 000 rows: i % 3 is 0 for 3 334 of them, 1 and 2 for 3 333 each
	want := []map[string]int64{{"k": 0, "n": 3334}, {"k": 1, "n": 3333}, {"k": 2, "n": 3333}}
	if got.Polars.Type != "DataFrame" || len(got.Polars.Rows) != 3 {
		t.Fatalf("polars read %+v", got.Polars)
	}
	for i, r := range want {
		if got.Polars.Rows[i]["k"] != r["k"] || got.Polars.Rows[i]["n"] != r["n"] {
			t.Errorf("polars row %d: %v, want %v", i, got.Polars.Rows[i], r)
		}
	}
	if strings.Join(got.Objects["t"], ",") != "i,s,d" || strings.Join(got.Objects["v"], ",") != "i" {
		t.Errorf("adbc_get_objects: %v", got.Objects)
	}
	for name, msg := range map[string]*string{"DELETE": got.Delete, "ATTACH": got.Attach} {
		if msg == nil || !strings.Contains(*msg, name) || !strings.Contains(*msg, "only reads") {
			t.Errorf("%s: %v", name, deref(msg))
		}
	}
	if got.WrongToken == nil || !strings.Contains(*got.WrongToken, "wrong token") {
		t.Errorf("a wrong token: %v", deref(got.WrongToken))
	}
}

func deref(s *string) string {
	if s == nil {
		return "(no error)"
	}
	return *s
}

func TestJDBC(t *testing.T) {
	java := testenv.Command(t, "java", "make deps installs a JDK (apt-get install openjdk-17-jdk-headless)")
	jar := os.Getenv("STAKHANOV_FLIGHT_JDBC_JAR")
	if jar == "" {
		testenv.Missing(t, "STAKHANOV_FLIGHT_JDBC_JAR is not set: it names the Apache Arrow Flight SQL JDBC driver's jar",
			"make test fetches it from Maven Central once (make flight-jdbc-driver, cached under ~/.cache/stakhanov) and sets it")
	}
	if _, err := os.Stat(jar); err != nil {
		testenv.Missing(t, "the Flight SQL JDBC driver's jar: "+err.Error(), "make flight-jdbc-driver fetches it from Maven Central")
	}
	uri, tokenFile, caFile := securedServer(t)
	hostPort := strings.TrimPrefix(uri, SchemeTLS+"://")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, "--add-opens=java.base/java.nio=ALL-UNNAMED", "-Xmx256m", "-XX:TieredStopAtLevel=1",
		"-cp", jar, filepath.Join("testdata", "JdbcCheck.java"), hostPort, tokenFile, caFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("java: %v\n%s\n%s", err, out, stderr.String())
	}
	var got struct {
		Driver     string
		N          int64
		Total      string
		Last       string
		Rows       int64
		InOrder    bool   `json:"in_order"`
		DType      string `json:"d_type"`
		Product    string
		ReadOnly   bool `json:"read_only"`
		Tables     []string
		Columns    []string
		Delete     *string
		Insert     *string
		WrongToken *string `json:"wrong_token"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("driver %s", got.Driver)
	// max(s) is text order: "row 9999" sorts last
	if got.N != testRows || got.Total != "49995000" || got.Last != "row 9999" {
		t.Errorf("aggregate: n %d, total %s, last %q", got.N, got.Total, got.Last)
	}
	if got.Rows != testRows || !got.InOrder || got.DType != "DATE" {
		t.Errorf("long result: %d rows, in order %v, d is %s", got.Rows, got.InOrder, got.DType)
	}
	if !strings.Contains(got.Product, "Stakhanov") || !got.ReadOnly {
		t.Errorf("product %q, read-only %v", got.Product, got.ReadOnly)
	}
	if len(filterKnown(got.Tables, []string{"main.t:BASE TABLE", "main.v:VIEW", "main.shifts:BASE TABLE"})) != 3 {
		t.Errorf("getTables: %v", got.Tables)
	}
	if strings.Join(got.Columns, ",") != "i,s,d" {
		t.Errorf("getColumns of t: %v", got.Columns)
	}
	for name, msg := range map[string]*string{"DELETE": got.Delete, "INSERT": got.Insert} {
		if msg == nil || !strings.Contains(*msg, name) || !strings.Contains(*msg, "only reads") {
			t.Errorf("%s: %s", name, deref(msg))
		}
	}
	if got.WrongToken == nil || !strings.Contains(*got.WrongToken, "wrong token") {
		t.Errorf("a wrong token: %s", deref(got.WrongToken))
	}
}
