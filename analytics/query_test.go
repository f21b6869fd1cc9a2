package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func queryFixture(t *testing.T) *Store {
	t.Helper()
	s, _ := openTemp(t)
	for _, q := range []string{
		`CREATE TABLE q (id INTEGER, name VARCHAR, rate DOUBLE, day DATE, ts TIMESTAMPTZ,
			ok BOOLEAN, raw BLOB, tags VARCHAR[], big HUGEINT, price DECIMAL(10,2))`,
		`INSERT INTO q VALUES
			(1, 'Stakhanov', 102.5, DATE '1935-08-31', TIMESTAMPTZ '1935-08-31 22:00:00+00', true,
			 '\x41\x00'::BLOB, ['coal', 'record'], 170141183460469231731687303715884105727, 14.25),
			(22, 'a,"quoted"
line', 0.000000001, NULL, TIMESTAMPTZ '2024-03-04 06:00:00.123456+03', false, NULL, [], -1, NULL),
			(333, NULL, 'NaN'::DOUBLE, DATE '2024-03-04', NULL, NULL, ''::BLOB, NULL, NULL, 0)`,
	} {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestQueryFormats(t *testing.T) {
	s := queryFixture(t)
	const query = "SELECT * FROM q ORDER BY id"
	tests := []struct {
		format string
		want   string
	}{
		{FormatTable, `
 id  name               rate  day         ts                           ok     raw    tags                                                   big  price
---  ----------------  -----  ----------  ---------------------------  -----  -----  -----------------  ---------------------------------------  -----
  1  Stakhanov         102.5  1935-08-31  1935-08-31T22:00:00Z         true   A\x00  ["coal","record"]  170141183460469231731687303715884105727  14.25
 22  a,"quoted"\nline  1e-09              2024-03-04T03:00:00.123456Z  false         []                                                      -1
333                      NaN  2024-03-04                                                                                                          0.00
(3 rows)
`},
		{FormatCSV, `id,name,rate,day,ts,ok,raw,tags,big,price
1,Stakhanov,102.5,1935-08-31,1935-08-31T22:00:00Z,true,A\x00,"[""coal"",""record""]",170141183460469231731687303715884105727,14.25
22,"a,""quoted""
line",1e-09,,2024-03-04T03:00:00.123456Z,false,,[],-1,
333,,NaN,2024-03-04,,,,,,0.00
`},
		{FormatJSON, `[
{"id":1,"name":"Stakhanov","rate":102.5,"day":"1935-08-31","ts":"1935-08-31T22:00:00Z","ok":true,"raw":"A\\x00","tags":["coal","record"],"big":170141183460469231731687303715884105727,"price":14.25},
{"id":22,"name":"a,\"quoted\"\nline","rate":1e-9,"day":null,"ts":"2024-03-04T03:00:00.123456Z","ok":false,"raw":null,"tags":[],"big":-1,"price":null},
{"id":333,"name":null,"rate":null,"day":"2024-03-04","ts":null,"ok":null,"raw":"","tags":null,"big":null,"price":0.00}
]
`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := s.Query(context.Background(), query, &buf, tt.format); err != nil {
				t.Fatal(err)
			}
			want := strings.TrimPrefix(tt.want, "\n")
			if buf.String() != want {
				t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
			}
			if tt.format == FormatJSON {
				var v []map[string]any
				if err := json.Unmarshal(buf.Bytes(), &v); err != nil || len(v) != 3 {
					t.Errorf("not a JSON array of 3 objects: %v", err)
				}
			}
		})
	}
}

func TestQueryEdges(t *testing.T) {
	s := queryFixture(t)
	ctx := context.Background()
	t.Run("unknown format", func(t *testing.T) {
		var buf bytes.Buffer
		if err := s.Query(ctx, "SELECT 1", &buf, "xml"); err == nil || buf.Len() != 0 {
			t.Errorf("err %v, output %q", err, buf.String())
		}
	})
	t.Run("bad SQL", func(t *testing.T) {
		if err := s.Query(ctx, "SELEC 1", &bytes.Buffer{}, FormatCSV); err == nil {
			t.Error("no error")
		}
	})
	t.Run("empty result", func(t *testing.T) {
		for format, want := range map[string]string{
			FormatTable: "id\n--\n(0 rows)\n",
			FormatCSV:   "id\n",
			FormatJSON:  "[]\n",
		} {
			var buf bytes.Buffer
			if err := s.Query(ctx, "SELECT id FROM q WHERE false", &buf, format); err != nil {
				t.Fatal(err)
			}
			if buf.String() != want {
				t.Errorf("%s: %q, want %q", format, buf.String(), want)
			}
		}
	})
	t.Run("table widths fixed after TableWidthRows", func(t *testing.T) {
		var buf bytes.Buffer
		q := `SELECT i, CASE WHEN i = 1500 THEN 'a much longer value' ELSE 'x' END AS v
			FROM range(2000) t(i) ORDER BY i`
		if err := s.Query(ctx, q, &buf, FormatTable); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if len(lines) != 2003 || lines[2002] != "(2000 rows)" {
			t.Fatalf("%d lines, last %q", len(lines), lines[len(lines)-1])
		}
		if lines[0] != "  i  v" || lines[1502] != "1500  a much longer value" {
			t.Errorf("header %q, row 1500 %q", lines[0], lines[1502])
		}
	})
	t.Run("time zone is UTC", func(t *testing.T) {
		var buf bytes.Buffer
		q := `SELECT (TIMESTAMPTZ '2024-03-04 01:00:00+03')::DATE AS d, current_setting('TimeZone') AS tz`
		if err := s.Query(ctx, q, &buf, FormatCSV); err != nil {
			t.Fatal(err)
		}
		if want := "d,tz\n2024-03-03,UTC\n"; buf.String() != want {
			t.Errorf("%q, want %q", buf.String(), want)
		}
	})
}

func TestQueryOtherTypes(t *testing.T) {
	s, _ := openTemp(t)
	const q = `SELECT INTERVAL 1 MONTH + INTERVAL 2 DAY + INTERVAL 1500 MILLISECOND AS iv,
		'c0a80000-0000-4000-8000-000000000001'::UUID AS u,
		{'a': 1, 'b': ['x']} AS st, MAP {'k2': 1.5, 'k1': 2} AS m, '{"x":[1,2]}'::JSON AS j,
		TIME '12:34:56.5' AS tm, 1.5::FLOAT AS f, 'Infinity'::DOUBLE AS inf,
		[1,2]::INTEGER[2] AS arr, 'b'::ENUM('a','b') AS e, -0.5::DECIMAL(5,2) AS dec`
	var buf bytes.Buffer
	if err := s.Query(context.Background(), q, &buf, FormatCSV); err != nil {
		t.Fatal(err)
	}
	want := `iv,u,st,m,j,tm,f,inf,arr,e,dec
P1M2DT1.5S,c0a80000-0000-4000-8000-000000000001,"{""a"":1,""b"":[""x""]}","{""k2"":1.5,""k1"":2.0}","{""x"":[1,2]}",12:34:56.5,1.5,Infinity,"[1,2]",b,-0.50
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := s.Query(context.Background(), q, &buf, FormatJSON); err != nil {
		t.Fatal(err)
	}
	var v []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, buf.String())
	}
	if v[0]["inf"] != nil || v[0]["dec"] != -0.5 {
		t.Errorf("inf %v, dec %v", v[0]["inf"], v[0]["dec"])
	}
}
