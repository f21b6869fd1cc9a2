package analytics

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Output formats of Query.
const (
	// FormatTable is for people: aligned columns under a header, numbers
	// right-aligned, a row count at the end. Column widths come from the
	// first TableWidthRows rows; a longer value later overflows its column
	// rather than making Query hold the whole result in memory.
	FormatTable = "table"
	// FormatCSV is RFC 4180 with a header row. NULL and the empty string
	// are both an empty field.
	FormatCSV = "csv"
	// FormatJSON is one JSON array with an object per row, keys in column
	// order, one row per line. A single document rather than JSON lines
	// because the usual consumers (jq, a browser, a test) take one value;
	// it is still written as the rows arrive. NULL, NaN and ±Inf are null.
	FormatJSON = "json"
	// FormatArrow is an Arrow IPC stream (the streaming format, media type
	// application/vnd.apache.arrow.stream) in the Arrow types DuckDB gives
	// its columns: for pyarrow, Polars or DuckDB itself, which then read
	// typed columns instead of parsing text. An empty result is a stream
	// with the schema and no batch.
	FormatArrow = "arrow"
)

// TableWidthRows is how many rows FormatTable reads before it fixes the
// column widths.
const TableWidthRows = 1000

// Formats lists the formats Query accepts.
var Formats = []string{FormatTable, FormatCSV, FormatJSON, FormatArrow}

// ErrUnknownFormat is wrapped by the error for a format not in Formats.
var ErrUnknownFormat = errors.New("analytics: unknown output format")

// CheckFormat reports whether format is one of Formats.
func CheckFormat(format string) error {
	if slices.Contains(Formats, format) {
		return nil
	}
	return fmt.Errorf("%w %q (want one of %s)", ErrUnknownFormat, format, strings.Join(Formats, ", "))
}

// ContentType is the media type of a format's output.
func ContentType(format string) string {
	switch format {
	case FormatCSV:
		return "text/csv; charset=utf-8; header=present"
	case FormatJSON:
		return "application/json"
	case FormatArrow:
		return "application/vnd.apache.arrow.stream"
	}
	return "text/plain; charset=utf-8"
}

// Query runs one SQL statement and writes its result to w in format.
// Times are RFC 3339 (UTC for TIMESTAMPTZ, since connections run in UTC),
// dates YYYY-MM-DD; NULL is an empty cell in table and CSV, null in JSON.
// BLOBs show printable ASCII as is and other bytes as \xNN, like DuckDB's
// own CLI; LIST, STRUCT and MAP values are JSON.
//
// Query trusts its caller: on a store opened read-write the statement may
// write. For SQL from elsewhere use QueryReadOnly.
func (s *Store) Query(ctx context.Context, query string, w io.Writer, format string) error {
	if err := CheckFormat(format); err != nil {
		return fmt.Errorf("analytics: query: %w", err)
	}
	conn, err := s.handle().Conn(ctx)
	if err != nil {
		return fmt.Errorf("analytics: query: %w", s.check(err))
	}
	defer conn.Close()
	if err := writeResult(ctx, conn, query, w, format); err != nil {
		return fmt.Errorf("analytics: query: %w", s.check(err))
	}
	return nil
}

// handle is the current database handle. It is read under the commit lock
// because a commit that met a fatal error replaces it (see reopen); the
// wait is at most the commit in hand.
func (s *Store) handle() *sql.DB {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db
}

// writeResult runs query on conn and writes its result to w in format,
// which the caller has checked.
func writeResult(ctx context.Context, conn *sql.Conn, query string, w io.Writer, format string) error {
	if format == FormatArrow {
		return writeArrow(ctx, conn, query, w)
	}
	var out resultWriter
	bw := bufio.NewWriter(w)
	switch format {
	case FormatTable:
		out = &tableWriter{w: bw}
	case FormatCSV:
		out = &csvWriter{w: csv.NewWriter(bw)}
	case FormatJSON:
		out = &jsonWriter{w: bw}
	}
	if err := queryRows(ctx, conn, query, out); err != nil {
		return err
	}
	return bw.Flush()
}

// writeArrow streams the result through DuckDB's Arrow interface, batch by
// batch, so that a large result is never held whole.
func writeArrow(ctx context.Context, conn *sql.Conn, query string, w io.Writer) error {
	return conn.Raw(func(dc any) error {
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		rr, err := a.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		defer rr.Release()
		iw := ipc.NewWriter(w, ipc.WithSchema(rr.Schema()))
		for rr.Next() {
			if err := iw.Write(rr.RecordBatch()); err != nil {
				return errors.Join(err, iw.Close())
			}
		}
		if err := rr.Err(); err != nil {
			// No end-of-stream marker: a reader sees a truncated stream,
			// not a complete-looking short result.
			return err
		}
		return iw.Close()
	})
}

func queryRows(ctx context.Context, conn *sql.Conn, query string, out resultWriter) error {
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return err
	}
	cols := make([]resultColumn, len(types))
	for i, t := range types {
		cols[i] = resultColumn{name: t.Name(), dbType: t.DatabaseTypeName()}
	}
	if err := out.begin(cols); err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if err := out.row(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return out.end()
}

type resultColumn struct {
	name   string
	dbType string
}

func (c resultColumn) numeric() bool {
	switch c.dbType {
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
		"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
		"FLOAT", "DOUBLE":
		return true
	}
	return strings.HasPrefix(c.dbType, "DECIMAL")
}

// resultWriter is one output format. row may keep nothing of vals: the
// slice is reused for the next row.
type resultWriter interface {
	begin(cols []resultColumn) error
	row(vals []any) error
	end() error
}

// text renders a value for table and CSV; ok is false for NULL.
func text(v any, dbType string) (s string, ok bool) {
	switch v := v.(type) {
	case nil:
		return "", false
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return formatFloat(v, 64), true
	case float32:
		return formatFloat(float64(v), 32), true
	case time.Time:
		return formatTime(v, dbType), true
	case []byte:
		if dbType == "UUID" && len(v) == 16 {
			var u duckdb.UUID
			copy(u[:], v)
			return u.String(), true
		}
		return formatBlob(v), true
	case *big.Int:
		return v.String(), true
	case duckdb.Decimal:
		return formatDecimal(v), true
	case duckdb.Interval:
		return formatInterval(v), true
	case []any, map[string]any, duckdb.OrderedMap, duckdb.Map:
		b, err := json.Marshal(jsonable(v))
		if err != nil {
			return fmt.Sprint(v), true
		}
		return string(b), true
	case fmt.Stringer:
		return v.String(), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10), true
	}
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		return fmt.Sprint(v), true
	}
	return string(b), true
}

// formatFloat writes plain decimals where they stay short and exponents
// where they would not (1e-09, 1.5e+20).
func formatFloat(f float64, bits int) string {
	switch a := math.Abs(f); {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 0):
		if f > 0 {
			return "Infinity"
		}
		return "-Infinity"
	case a == 0 || (a >= 1e-6 && a < 1e15):
		return strconv.FormatFloat(f, 'f', -1, bits)
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

func formatTime(t time.Time, dbType string) string {
	switch dbType {
	case "DATE":
		return t.Format(time.DateOnly)
	case "TIME":
		return t.Format("15:04:05.999999")
	case "TIMETZ":
		return t.Format("15:04:05.999999Z07:00")
	}
	return t.Format(time.RFC3339Nano)
}

func formatBlob(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f && c != '\\' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteString(`\x`)
		sb.WriteString(strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return sb.String()
}

// formatDecimal keeps the declared scale, as DuckDB prints it (14.20, not
// the 14.2 of Decimal.String).
func formatDecimal(d duckdb.Decimal) string {
	s := new(big.Int).Abs(d.Value).String()
	if scale := int(d.Scale); scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if d.Value.Sign() < 0 {
		s = "-" + s
	}
	return s
}

// formatInterval writes an ISO 8601 duration, e.g. P1M2DT3.5S.
func formatInterval(iv duckdb.Interval) string {
	var sb strings.Builder
	sb.WriteByte('P')
	if iv.Months != 0 {
		fmt.Fprintf(&sb, "%dM", iv.Months)
	}
	if iv.Days != 0 {
		fmt.Fprintf(&sb, "%dD", iv.Days)
	}
	if iv.Micros != 0 || (iv.Months == 0 && iv.Days == 0) {
		secs := strconv.FormatFloat(float64(iv.Micros)/1e6, 'f', -1, 64)
		fmt.Fprintf(&sb, "T%sS", secs)
	}
	return sb.String()
}

// jsonable turns a scanned value into one encoding/json writes as the
// formats promise: nested values follow the same rules as top-level ones.
func jsonable(v any) any {
	switch v := v.(type) {
	case nil, bool, string:
		return v
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return v
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil
		}
		return v
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case []byte:
		return formatBlob(v)
	case *big.Int:
		return json.Number(v.String())
	case duckdb.Decimal:
		return json.Number(formatDecimal(v))
	case duckdb.Interval:
		return formatInterval(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = jsonable(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = jsonable(e)
		}
		return out
	case duckdb.OrderedMap:
		// Set keeps the order, which is part of a DuckDB map's value.
		var out duckdb.OrderedMap
		keys, vals := v.Keys(), v.Values()
		for i, k := range keys {
			ks, _ := text(k, "")
			out.Set(ks, jsonable(vals[i]))
		}
		return out
	case duckdb.Map:
		out := make(map[string]any, len(v))
		for k, e := range v {
			ks, _ := text(k, "")
			out[ks] = jsonable(e)
		}
		return out
	case fmt.Stringer:
		return v.String()
	}
	return v
}

type csvWriter struct {
	w      *csv.Writer
	cols   []resultColumn
	record []string
}

func (c *csvWriter) begin(cols []resultColumn) error {
	c.cols = cols
	c.record = make([]string, len(cols))
	for i, col := range cols {
		c.record[i] = col.name
	}
	return c.w.Write(c.record)
}

func (c *csvWriter) row(vals []any) error {
	for i, v := range vals {
		c.record[i], _ = text(v, c.cols[i].dbType)
	}
	return c.w.Write(c.record)
}

func (c *csvWriter) end() error {
	c.w.Flush()
	return c.w.Error()
}

type jsonWriter struct {
	w    *bufio.Writer
	cols []resultColumn
	keys [][]byte // column names, encoded once
	n    int
}

func (j *jsonWriter) begin(cols []resultColumn) error {
	j.cols = cols
	j.keys = make([][]byte, len(cols))
	for i, c := range cols {
		k, err := json.Marshal(c.name)
		if err != nil {
			return err
		}
		j.keys[i] = k
	}
	_, err := j.w.WriteString("[")
	return err
}

func (j *jsonWriter) row(vals []any) error {
	if j.n == 0 {
		j.w.WriteString("\n{")
	} else {
		j.w.WriteString(",\n{")
	}
	j.n++
	for i, v := range vals {
		if i > 0 {
			j.w.WriteByte(',')
		}
		j.w.Write(j.keys[i])
		j.w.WriteByte(':')
		b, err := json.Marshal(j.value(v, j.cols[i].dbType))
		if err != nil {
			return fmt.Errorf("column %s: %w", j.cols[i].name, err)
		}
		j.w.Write(b)
	}
	_, err := j.w.WriteString("}")
	return err
}

// value is jsonable with the column's type in view: a DATE is a date, not
// a midnight timestamp; a UUID is text, not bytes.
func (j *jsonWriter) value(v any, dbType string) any {
	switch v.(type) {
	case time.Time, []byte:
		s, _ := text(v, dbType)
		return s
	}
	return jsonable(v)
}

func (j *jsonWriter) end() error {
	if j.n > 0 {
		j.w.WriteString("\n")
	}
	_, err := j.w.WriteString("]\n")
	return err
}

type tableWriter struct {
	w      *bufio.Writer
	cols   []resultColumn
	widths []int
	buf    [][]string // rows held until the widths are fixed; nil after
	fixed  bool
	n      int
}

func (t *tableWriter) begin(cols []resultColumn) error {
	t.cols = cols
	t.widths = make([]int, len(cols))
	for i, c := range cols {
		t.widths[i] = displayWidth(c.name)
	}
	return nil
}

func (t *tableWriter) row(vals []any) error {
	cells := make([]string, len(vals))
	for i, v := range vals {
		s, _ := text(v, t.cols[i].dbType)
		cells[i] = tableEscaper.Replace(s)
	}
	t.n++
	if t.fixed {
		return t.line(cells)
	}
	for i, c := range cells {
		t.widths[i] = max(t.widths[i], displayWidth(c))
	}
	t.buf = append(t.buf, cells)
	if len(t.buf) >= TableWidthRows {
		return t.flush()
	}
	return nil
}

// flush fixes the widths and writes the header and the held rows.
func (t *tableWriter) flush() error {
	t.fixed = true
	header := make([]string, len(t.cols))
	rule := make([]string, len(t.cols))
	for i, c := range t.cols {
		header[i] = c.name
		rule[i] = strings.Repeat("-", t.widths[i])
	}
	if err := t.line(header); err != nil {
		return err
	}
	if err := t.line(rule); err != nil {
		return err
	}
	for _, r := range t.buf {
		if err := t.line(r); err != nil {
			return err
		}
	}
	t.buf = nil
	return nil
}

// line writes one line, columns two spaces apart, numeric columns (with
// their headers) right-aligned, and no trailing blanks.
func (t *tableWriter) line(cells []string) error {
	var sb strings.Builder
	for i, c := range cells {
		if i > 0 {
			sb.WriteString("  ")
		}
		pad := max(t.widths[i]-displayWidth(c), 0)
		if t.cols[i].numeric() {
			sb.WriteString(strings.Repeat(" ", pad))
			sb.WriteString(c)
			continue
		}
		sb.WriteString(c)
		sb.WriteString(strings.Repeat(" ", pad))
	}
	_, err := t.w.WriteString(strings.TrimRight(sb.String(), " ") + "\n")
	return err
}

func (t *tableWriter) end() error {
	if !t.fixed {
		if err := t.flush(); err != nil {
			return err
		}
	}
	noun := "rows"
	if t.n == 1 {
		noun = "row"
	}
	_, err := fmt.Fprintf(t.w, "(%d %s)\n", t.n, noun)
	return err
}

// tableEscaper keeps one row on one line.
var tableEscaper = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`)

func displayWidth(s string) int { return utf8.RuneCountInString(s) }
