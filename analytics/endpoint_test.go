package analytics

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
)

func startEndpoint(t *testing.T, s *Store, o EndpointOptions) *httptest.Server {
	t.Helper()
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := NewEndpoint(s, s, o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request and returns status, body and the error body if any.
func do(t *testing.T, req *http.Request) (int, []byte, ErrorBody) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var eb ErrorBody
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(body, &eb); err != nil {
			t.Fatalf("HTTP %d with a body that is not JSON: %q", resp.StatusCode, body)
		}
	}
	return resp.StatusCode, body, eb
}

func get(t *testing.T, base, sql, format string) (int, []byte, ErrorBody) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/query?format="+format+"&sql="+url.QueryEscape(sql), nil)
	return do(t, req)
}

func TestEndpoint(t *testing.T) {
	s, path := openTemp(t)
	snapshotFixture(t, s)
	o := DefaultEndpointOptions()
	o.SnapshotDir = filepath.Join(t.TempDir(), "snapshots")
	o.DuckDBPath = path
	o.LoopbackHostOnly = true
	srv := startEndpoint(t, s, o)

	t.Run("healthz", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" || resp.Header.Get(HeaderDuckDB) != path {
			t.Errorf("HTTP %d %q, file %q", resp.StatusCode, b, resp.Header.Get(HeaderDuckDB))
		}
	})
	t.Run("GET csv", func(t *testing.T) {
		status, body, _ := get(t, srv.URL, "SELECT count(*) AS n FROM shifts", FormatCSV)
		if status != 200 || string(body) != "n\n150\n" {
			t.Errorf("HTTP %d %q", status, body)
		}
	})
	t.Run("POST json, default table", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/query?format=json", strings.NewReader("SELECT count(*) AS n FROM alerts"))
		status, body, _ := do(t, req)
		if status != 200 || string(body) != "[\n{\"n\":6}\n]\n" {
			t.Errorf("HTTP %d %q", status, body)
		}
		req, _ = http.NewRequest(http.MethodPost, srv.URL+"/v1/query", strings.NewReader("SELECT 1 AS one"))
		if status, body, _ := do(t, req); status != 200 || string(body) != "one\n---\n  1\n(1 row)\n" {
			t.Errorf("HTTP %d %q", status, body)
		}
	})
	t.Run("arrow", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/v1/query?format=arrow&sql=" + url.QueryEscape("SELECT * FROM shifts"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/vnd.apache.arrow.stream" {
			t.Fatalf("HTTP %d, %s", resp.StatusCode, ct)
		}
		r, err := ipc.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		var rows int64
		for r.Next() {
			rows += r.RecordBatch().NumRows()
		}
		if r.Err() != nil || rows != 150 || r.Schema().NumFields() != 29 {
			t.Errorf("%d rows, %d columns, %v", rows, r.Schema().NumFields(), r.Err())
		}
	})
	t.Run("refused", func(t *testing.T) {
		for sql, typ := range map[string]string{
			"INSERT INTO shifts (event_id) VALUES ('x')": "INSERT",
			"DROP TABLE shifts":                          "DROP",
			"ATTACH 'x.duckdb' AS x":                     "ATTACH",
			"COPY shifts TO 'x.csv'":                     "COPY",
			"SET threads = 1":                            "SET",
			"CALL pragma_version()":                      "CALL",
			"SELECT 1; DELETE FROM shifts":               "MULTI",
		} {
			status, _, eb := get(t, srv.URL, sql, FormatCSV)
			if status != http.StatusForbidden || eb.StatementType != typ || !strings.Contains(eb.Error, typ) {
				t.Errorf("%s: HTTP %d %+v, want 403 %s", sql, status, eb, typ)
			}
		}
		if n := count(t, s, "shifts"); n != 150 {
			t.Errorf("%d shifts", n)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, c := range []struct{ sql, format, want string }{
			{"SELEC 1", FormatCSV, "Parser Error"},
			{"SELECT * FROM nope", FormatCSV, "Catalog Error"},
			{"SELECT 'x'::INTEGER", FormatCSV, "Conversion Error"},
			{"SELECT 1", "xml", "unknown output format"},
			{"  ", FormatCSV, "no SQL"},
		} {
			status, _, eb := get(t, srv.URL, c.sql, c.format)
			if status != http.StatusBadRequest || !strings.Contains(eb.Error, c.want) {
				t.Errorf("%q: HTTP %d %+v, want 400 %s", c.sql, status, eb, c.want)
			}
		}
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v1/query", nil)
		if status, _, _ := doRaw(t, req); status != http.StatusMethodNotAllowed {
			t.Errorf("DELETE: HTTP %d", status)
		}
		req, _ = http.NewRequest(http.MethodGet, srv.URL+"/healthz", nil)
		req.Host = "attacker.example:80"
		if status, _, _ := do(t, req); status != http.StatusForbidden {
			t.Errorf("foreign Host: HTTP %d", status)
		}
	})
	t.Run("snapshot", func(t *testing.T) {
		// a path in the request is no path to write to
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/snapshot?dir=/tmp/elsewhere", strings.NewReader(`{"dir":"/tmp/elsewhere"}`))
		status, body, _ := do(t, req)
		if status != 200 {
			t.Fatalf("HTTP %d %s", status, body)
		}
		var res SnapshotResult
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatal(err)
		}
		if res.Path != filepath.Join(o.SnapshotDir, SnapshotFile) || res.Tables["shifts"] != 150 || res.TookMS < 0 {
			t.Errorf("%+v", res)
		}
		if _, err := os.Stat(res.Path); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat("/tmp/elsewhere"); err == nil {
			t.Error("/tmp/elsewhere exists")
		}
	})
}

func doRaw(t *testing.T, req *http.Request) (int, []byte, error) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestEndpointLimits: a query past its time gets 504, one beyond the
// bound 503 while the first runs, and snapshots need a directory.
func TestEndpointLimits(t *testing.T) {
	s, _ := openTemp(t)
	o := DefaultEndpointOptions()
	o.MaxConcurrent = 1
	o.QueryTimeout = 1500 * time.Millisecond
	srv := startEndpoint(t, s, o)

	slow := make(chan ErrorBody, 1)
	status := make(chan int, 1)
	start := time.Now()
	go func() {
		for {
			// a probe below may hold the one slot for a moment
			st, _, eb := get(t, srv.URL, "SELECT sum(hash(i)) FROM range(100000000000) t(i)", FormatCSV)
			if st == http.StatusServiceUnavailable && time.Since(start) < o.QueryTimeout {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			status <- st
			slow <- eb
			return
		}
	}()
	busy := false
	time.Sleep(100 * time.Millisecond)
	for !busy && time.Since(start) < o.QueryTimeout {
		st, _, eb := get(t, srv.URL, "SELECT 1", FormatCSV)
		if st == http.StatusServiceUnavailable {
			busy = true
			if !strings.Contains(eb.Error, "too many queries") {
				t.Errorf("503 says %q", eb.Error)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !busy {
		t.Error("no 503 while the slow query ran")
	}
	if st, eb := <-status, <-slow; st != http.StatusGatewayTimeout || !strings.Contains(eb.Error, "ran out of") {
		t.Errorf("slow query: HTTP %d %+v, want 504", st, eb)
	}
	if took := time.Since(start); took > o.QueryTimeout+3*time.Second {
		t.Errorf("the slow query was stopped after %v", took)
	}
	// the slot is free again
	if st, body, _ := get(t, srv.URL, "SELECT 1 AS n", FormatCSV); st != 200 || string(body) != "n\n1\n" {
		t.Errorf("after the timeout: HTTP %d %q", st, body)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/snapshot", nil)
	if st, _, _ := do(t, req); st != http.StatusNotFound {
		t.Errorf("snapshot without a directory: HTTP %d", st)
	}
	if _, err := NewEndpoint(s, s, EndpointOptions{}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("zero options: %v", err)
	}
}
