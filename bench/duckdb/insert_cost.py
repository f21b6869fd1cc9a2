"""What one insert into a table shaped like `shifts` costs DuckDB, alone.

Rows of the 29 columns of `shifts` (event ids of ~35 characters) go in
from Arrow, one transaction per commit, with and without a unique index on
event_id, at several commit sizes. It isolates the engine from the
pipeline: the figures in BENCHMARKS.md ("The hot table") come from

    $(ls -d ~/.cache/stakhanov/venv-*/bin/python | head -1) bench/duckdb/insert_cost.py

(the notebooks' virtualenv: duckdb on the Go driver's DuckDB release).
With the argument `commit` it splits each commit's time between the INSERT
and the COMMIT instead, on one DuckDB thread as the pipeline runs it, in
250 000-row commits of 1 M rows ("What was done" in BENCHMARKS.md):

    $(ls -d ~/.cache/stakhanov/venv-*/bin/python | head -1) bench/duckdb/insert_cost.py commit
"""
import os
import sys
import tempfile
import time

import duckdb
import numpy as np
import pyarrow as pa

MODE = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].isdigit() else "insert"
N = int(sys.argv[-1]) if len(sys.argv) > 1 and sys.argv[-1].isdigit() else 600_000


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


def split(t, label, per_commit, unique=None, threads=1, settings=()):
    """Times the INSERT and the COMMIT of each commit apart."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.duckdb")
        con = duckdb.connect(path)
        con.execute(f"SET threads = {threads}")
        con.execute("SET checkpoint_threshold = '256MB'")  # the pipeline's
        for s in settings:
            con.execute(s)
        con.execute("CREATE TABLE s AS SELECT * FROM t LIMIT 0")
        if unique:
            con.execute(f"CREATE UNIQUE INDEX s_key ON s ({unique})")
        ins = com = 0.0
        for i in range(0, t.num_rows, per_commit):
            batch = t.slice(i, per_commit)  # noqa: F841 (scanned by name)
            con.execute("BEGIN")
            a = time.perf_counter()
            con.execute("INSERT INTO s SELECT * FROM batch")
            b = time.perf_counter()
            con.execute("COMMIT")
            ins, com = ins + b - a, com + time.perf_counter() - b
        con.execute("CHECKPOINT")
        size = os.path.getsize(path)
        con.close()
    n = t.num_rows / per_commit
    print(f"{label:<44} INSERT {ins / n * 1000:4.0f} ms  COMMIT {com / n * 1000:4.0f} ms  "
          f"{t.num_rows / (ins + com):>9,.0f} rows/s  file {size / 1e6:4.0f} MB", flush=True)


if MODE == "commit":
    t = table(1_000_000)
    split(t, "event_id unique", 250_000, unique="event_id")
    split(t, "no key", 250_000)
    split(t, "no key, 2 threads", 250_000, threads=2)
    split(t, "no key, without alp, alprd, fsst", 250_000, settings=["SET disabled_compression_methods = 'alp,alprd,fsst'"])
    split(t, "no key, uncompressed", 250_000, settings=["SET force_compression = 'uncompressed'"])
    sys.exit(0)

t = table(N)
run(t, "unique event_id, INSERT", 50_000)
run(t, "unique event_id, INSERT OR IGNORE", 50_000, ignore=True)
run(t, "unique event_id, checkpoint_threshold 1GB", 50_000, settings=["SET checkpoint_threshold = '1GB'"])
for size in (100_000, 200_000, 300_000):
    run(t, "unique event_id, INSERT", size)
run(t, "unique (kafka_partition, kafka_offset), INSERT", 50_000, unique="kafka_partition, kafka_offset")
run(t, "no unique index, INSERT", 50_000, unique=None)
