"""Read a Stakhanov snapshot from a process other than the pipeline's.

TestLiveReadingWhileIngesting runs this while the pipeline still holds its
DuckDB file, to show that a snapshot is a file any process can open: the
DuckDB copy with the duckdb package, the Parquet exports with DuckDB,
pyarrow and (when installed) Polars. It prints one JSON object of row
counts, which the test compares with what the pipeline reported.

usage: python read_snapshot.py SNAPSHOT_FILE PARQUET_DIR [EXPORT_DIR]
"""

import json
import os
import sys

TABLES = ["shifts", "alerts", "norms", "rejects"]
# the partition columns, present in the paths only
PARTITIONS = {"shifts": ["month"], "alerts": ["year"], "norms": ["year"], "rejects": []}


def parquet_counts(root):
    """Row counts of one Parquet export, read three ways."""
    import duckdb
    import pyarrow.dataset as ds

    out = {"duckdb": {}, "pyarrow": {}}
    con = duckdb.connect()  # in memory
    for t in TABLES:
        glob = os.path.join(root, t, "**", "*.parquet")
        out["duckdb"][t] = con.execute(
            "SELECT count(*) FROM read_parquet(?, hive_partitioning = true)", [glob]).fetchone()[0]
        d = ds.dataset(os.path.join(root, t), format="parquet", partitioning="hive")
        missing = [c for c in PARTITIONS[t] if c not in d.schema.names]
        if missing and d.count_rows() > 0:
            raise SystemExit(f"{t}: pyarrow sees no {missing} in {d.schema.names}")
        out["pyarrow"][t] = d.count_rows()
    con.close()
    try:
        import polars as pl
    except ImportError:
        return out
    out["polars"] = {}
    for t in TABLES:
        lf = pl.scan_parquet(os.path.join(root, t, "**", "*.parquet"), hive_partitioning=True)
        out["polars"][t] = lf.select(pl.len()).collect().item()
    return out


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    snapshot, parquet = sys.argv[1], sys.argv[2]
    # Resolve the link once: a later snapshot may swap it while we read,
    # and the export it named now stays until the snapshot after that.
    parquet = os.path.realpath(parquet)

    import duckdb
    import pyarrow

    result = {"versions": {"python": sys.version.split()[0], "duckdb": duckdb.__version__,
                           "pyarrow": pyarrow.__version__}}
    try:
        import polars
        result["versions"]["polars"] = polars.__version__
    except ImportError:
        pass

    # The DuckDB copy, read-only, as a second process while the pipeline
    # holds its own file.
    con = duckdb.connect(snapshot, read_only=True)
    result["snapshot"] = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    # a view of the analytical model, to show the copy is a whole database
    result["snapshot_views"] = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone()[0]
    con.close()

    result["snapshot_parquet"] = parquet_counts(parquet)
    if len(sys.argv) == 4:
        result["export"] = parquet_counts(sys.argv[3])
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
