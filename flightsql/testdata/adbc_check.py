"""Reads a Stakhanov Flight SQL server as a Python analyst does: ADBC's
Flight SQL driver, into pyarrow and Polars.

    python adbc_check.py URI TOKEN_FILE [CA_FILE]

Prints one JSON object of what it saw; the Go test (TestADBCPython) holds
the expectations. TOKEN_FILE holds the bearer token; CA_FILE, for a
grpc+tls:// URI, the authority to trust.
"""

import json
import sys
from importlib.metadata import version

import adbc_driver_flightsql.dbapi as flight_sql
import polars as pl
import pyarrow as pa
from adbc_driver_flightsql import DatabaseOptions


def connect(uri, token, ca):
    kwargs = {DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer " + token}
    if ca:
        with open(ca) as f:
            kwargs[DatabaseOptions.TLS_ROOT_CERTS.value] = f.read()
    return flight_sql.connect(uri, db_kwargs=kwargs)


def error_of(conn, sql):
    """The error a statement ends in, or None."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.fetch_arrow_table()
    except Exception as e:  # the driver's own exception classes
        return f"{type(e).__name__}: {e}"
    return None


def main():
    uri, token_file = sys.argv[1], sys.argv[2]
    ca = sys.argv[3] if len(sys.argv) > 3 else ""
    with open(token_file) as f:
        token = f.read().strip()
    out = {"versions": {p: version(p) for p in ("adbc-driver-flightsql", "pyarrow", "polars")}}
    with connect(uri, token, ca) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT i, s, d FROM t ORDER BY i")
            table = cur.fetch_arrow_table()
        assert isinstance(table, pa.Table)
        out["arrow"] = {
            "rows": table.num_rows,
            "types": [str(f.type) for f in table.schema],
            "sum_i": pa.compute.sum(table["i"]).as_py(),
            "last_s": table["s"][-1].as_py(),
        }
        df = pl.read_database("SELECT i % 3 AS k, count(*) AS n FROM t GROUP BY ALL ORDER BY k", connection=conn)
        out["polars"] = {"type": type(df).__name__, "rows": df.to_dicts()}
        objects = conn.adbc_get_objects(depth="columns").read_all().to_pylist()
        tables = {}
        for cat in objects:
            for sch in cat["catalog_db_schemas"] or []:
                for tab in sch["db_schema_tables"] or []:
                    tables[tab["table_name"]] = [c["column_name"] for c in tab["table_columns"] or []]
        out["objects"] = {"t": tables.get("t"), "v": tables.get("v")}
        out["delete"] = error_of(conn, "DELETE FROM t")
        out["attach"] = error_of(conn, "ATTACH 'x.duckdb' AS x")
    try:
        with connect(uri, token + "x", ca) as bad:
            out["wrong_token"] = error_of(bad, "SELECT 1")
    except Exception as e:  # refused as early as connecting
        out["wrong_token"] = f"{type(e).__name__}: {e}"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
