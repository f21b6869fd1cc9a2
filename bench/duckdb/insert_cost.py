"""What one insert into a table shaped like `shifts` costs DuckDB, alone.

Rows of the 29 columns of `shifts` (event ids of ~35 characters) go in
from Arrow, one transaction per commit, with and without a unique index on
event_id, at several commit sizes. It isolates the engine from the
pipeline: the figures in BENCHMARKS.md ("The hot table") come from

    $(ls -d ~/.cache/stakhanov/venv-*/bin/python | head -1) bench/duckdb/insert_cost.py

(the notebooks' virtualenv: duckdb on the Go driver's DuckDB release).
"""
import os
import sys
import tempfile
import time

import duckdb
import numpy as np
import pyarrow as pa

N = int(sys.argv[1]) if len(sys.argv) > 1 else 600_000


def table(n):
    rng = np.random.default_rng(1935)
    cols = {"event_id": pa.array([f"plant{i % 552}-1935{i % 92:04d}-worker{i % 40000}-{i}" for i in range(n)])}
    for name in ["plant_id", "industry", "section", "role", "worker_id", "unit", "kafka_topic"]:
        cols[name] = pa.array([f"{name}{i % 500}" for i in range(n)])
    for name in ["shift_hours", "output", "scrap", "rate", "norm_rate", "ratio", "scrap_share", "norm_mean",
                 "norm_p90", "norm_mad", "norm_bulk", "crew_rate", "crew_norm_rate", "crew_ratio"]:
        cols[name] = pa.array(rng.random(n))
    for name in ["crew_size", "norm_count"]:
        cols[name] = pa.array(rng.integers(0, 100, n).astype("int32"))
    # 8 partitions interleaved, offsets rising in each, as the sink sees them
    cols["kafka_partition"] = pa.array((np.arange(n) % 8).astype("int32"))
    cols["kafka_offset"] = pa.array(np.arange(n) // 8)
    cols["late"] = pa.array(np.zeros(n, dtype=bool))
    cols["shift_start"] = pa.array(np.arange(n).astype("datetime64[us]"))
    return pa.table(cols)


def run(t, label, per_commit, unique="event_id", ignore=False, settings=()):
    with tempfile.TemporaryDirectory() as d:
        con = duckdb.connect(os.path.join(d, "x.duckdb"))
        con.execute("SET threads = 2")
        for s in settings:
            con.execute(s)
        con.execute("CREATE TABLE s AS SELECT * FROM t LIMIT 0")
        if unique:
            con.execute(f"CREATE UNIQUE INDEX s_key ON s ({unique})")
        verb = "INSERT OR IGNORE" if ignore else "INSERT"
        start = time.perf_counter()
        for i in range(0, t.num_rows, per_commit):
            batch = t.slice(i, per_commit)  # noqa: F841 (scanned by name)
            con.execute("BEGIN")
            con.execute(f"{verb} INTO s SELECT * FROM batch")
            con.execute("COMMIT")
        took = time.perf_counter() - start
        con.close()
    print(f"{label:<48} {per_commit:>7} rows/commit  {t.num_rows / took:>9,.0f} rows/s", flush=True)


t = table(N)
run(t, "unique event_id, INSERT", 50_000)
run(t, "unique event_id, INSERT OR IGNORE", 50_000, ignore=True)
run(t, "unique event_id, checkpoint_threshold 1GB", 50_000, settings=["SET checkpoint_threshold = '1GB'"])
for size in (100_000, 200_000, 300_000):
    run(t, "unique event_id, INSERT", size)
run(t, "unique (kafka_partition, kafka_offset), INSERT", 50_000, unique="kafka_partition, kafka_offset")
run(t, "no unique index, INSERT", 50_000, unique=None)
