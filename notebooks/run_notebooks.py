#!/usr/bin/env python3
"""Execute the analysts' notebooks top to bottom against one DuckDB file.

    python notebooks/run_notebooks.py --db FILE [--out DIR] [--html DIR]
                                      [--figures DIR] [NOTEBOOK ...]
    python notebooks/run_notebooks.py --check-clean | --strip [NOTEBOOK ...]

Every notebook (default: notebooks/[0-9]*.ipynb) runs in a fresh kernel of
this interpreter, with STAKHANOV_DUCKDB set to FILE and the notebook's
directory as its working directory. A cell that raises — an assertion included — fails the
notebook; the others still run, and the exit status is 1 if any failed.
The notebooks in the repository stay as they are: executed copies go to
--out, HTML renderings to --html, and each figure as a PNG to --figures.

--check-clean fails if a notebook carries outputs, execution counts or
times (they are committed without); --strip removes them in place.
"""

import argparse
import base64
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
KERNEL = "stakhanov-notebooks"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def notebooks(args):
    paths = [Path(p).resolve() for p in args.notebooks] or sorted(HERE.glob("[0-9]*.ipynb"))
    if not paths:
        sys.exit(f"no notebooks in {HERE}")
    return paths


def dirty(nb):
    """What a notebook carries that a committed one must not."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i}: outputs")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i}: execution count")
        if "execution" in cell.get("metadata", {}):
            found.append(f"cell {i}: execution times")
    return found


def strip(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    return nb


def kernel_dir():
    """A kernelspec that runs this very interpreter (whatever other python3
    kernels the user has installed), in a directory put on JUPYTER_PATH."""
    d = Path(tempfile.mkdtemp(prefix="stakhanov-kernel-"))
    spec = d / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (stakhanov notebooks)",
        "language": "python",
    }))
    return d


def save_figures(nb, stem, out):
    n = 0
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                n += 1
                (out / f"{stem}-cell{i:02d}-{n}.png").write_bytes(base64.b64decode(png))
    return n


def run(path, args):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from traitlets.config import Config

    nb = nbformat.read(path, as_version=4)
    # Kernel and client talk over Unix sockets: no TCP port, nothing to eavesdrop on.
    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(args.ipc / path.stem)
    client = NotebookClient(nb, config=config, timeout=args.timeout, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.monotonic()
    error = None
    try:
        client.execute()
    except CellExecutionError as e:
        error = ANSI.sub("", str(e))
    except Exception as e:  # a dead kernel, a timeout
        error = f"{type(e).__name__}: {e}"
    took = time.monotonic() - start

    if args.out:
        nbformat.write(nb, args.out / path.name)
    if args.html:
        from nbconvert import HTMLExporter
        body, _ = HTMLExporter().from_notebook_node(nb)
        (args.html / path.with_suffix(".html").name).write_text(body, encoding="utf-8")
    figures = save_figures(nb, path.stem, args.figures) if args.figures else 0
    return error, took, figures


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/[0-9]*.ipynb)")
    p.add_argument("--db", help="the DuckDB file (default: $STAKHANOV_DUCKDB)")
    p.add_argument("--out", type=Path, help="write the executed notebooks here")
    p.add_argument("--html", type=Path, help="write an HTML rendering of each executed notebook here")
    p.add_argument("--figures", type=Path, help="write each figure here as a PNG")
    p.add_argument("--timeout", type=int, default=300, help="seconds a cell may take (default 300)")
    p.add_argument("--check-clean", action="store_true", help="fail if a notebook carries outputs")
    p.add_argument("--strip", action="store_true", help="remove outputs and execution counts in place")
    args = p.parse_args()
    paths = notebooks(args)

    if args.check_clean or args.strip:
        bad = 0
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            if args.strip:
                nbformat.write(strip(nb), path)
            elif found := dirty(nb):
                bad += 1
                print(f"{path.name}: not clean ({', '.join(found[:3])}); "
                      f"strip it: python {Path(__file__).name} --strip {path.name}")
        sys.exit(1 if bad else 0)

    db = args.db or os.environ.get("STAKHANOV_DUCKDB")
    if not db:
        sys.exit("no database: give --db FILE or set STAKHANOV_DUCKDB")
    if not Path(db).is_file():
        sys.exit(f"{db}: no such file")
    os.environ["STAKHANOV_DUCKDB"] = str(Path(db).resolve())
    for d in (args.out, args.html, args.figures):
        if d:
            d.mkdir(parents=True, exist_ok=True)
    kdir = kernel_dir()
    args.ipc = kdir / "ipc"
    args.ipc.mkdir()
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(kdir), os.environ.get("JUPYTER_PATH")]))
    # Figures render off-screen in the kernel; no display is needed.
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")

    failed = []
    try:
        for path in paths:
            error, took, figures = run(path, args)
            extra = f", {figures} figures" if args.figures else ""
            if error:
                failed.append(path.name)
                print(f"FAIL {path.name} ({took:.1f} s{extra})\n{error}\n", flush=True)
            else:
                print(f"ok   {path.name} ({took:.1f} s{extra})", flush=True)
    finally:
        shutil.rmtree(kdir, ignore_errors=True)
    print(f"notebooks: {len(paths) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
