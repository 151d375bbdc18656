"""Benchmark suite: statistics at pipeline speed, in bounded memory (issue 5).

Usage:

    python benchmarks/run.py          # full sizes (10M / 50M rows; ~10 min, 2 cores)
    python benchmarks/run.py --quick    # smoke run (~1 min): at these sizes
                                        # fixed per-call costs set the ratios
    python benchmarks/run.py --only generated numpy --markdown

Prints ONE table. Columns: the initializer; rows; input kind; our `from_dataset`
time; the bare-pipeline time (the same tf.data pipeline iterated doing nothing:
the floor for any streaming pass); ours / bare; the anchor that computes the same
numbers another way (the NumPy calls for NumPy input, `Normalization.adapt` on
the same pipeline for tf.data input) and ours / anchor; the peak RSS growth
during our call; the issue's target and whether it was met; and an exactness
check of our result against NumPy, computed outside the timed region.

Each case runs in a fresh subprocess so its memory growth is its own. Nothing
here is a test: timings print, they are never asserted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _run_case(name: str, quick: bool) -> list:
    """Child mode: run one case, print its rows as one JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.dirname(HERE))
    import warnings

    warnings.filterwarnings("ignore")
    from cases import CASES

    rows = CASES[name](quick)
    print("@@ROWS@@" + json.dumps(rows))
    return rows


def _fmt_s(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _fmt_x(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _fmt_mib(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.0f}"


HEADER = ["statistic", "rows", "input", "ours s", "bare s", "ours/bare", "anchor",
          "anchor s", "ours/anchor", "peak MiB", "target", "met", "check"]


def _cells(row: dict) -> list:
    met = {None: "", True: "yes", False: "NO"}[row["met"]]
    return [row["case"], f"{row['rows']:,}", row["input"], _fmt_s(row["ours_s"]),
            _fmt_s(row["bare_s"]), _fmt_x(row["ratio_bare"]), row["anchor"] or "-",
            _fmt_s(row["anchor_s"]), _fmt_x(row["ratio_anchor"]),
            _fmt_mib(row["peak_mib"]), row["target"], met, row["check"]]


def format_table(rows: list, markdown: bool) -> str:
    table = [HEADER] + [_cells(r) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(table[0]) + " |",
                 "|" + "---|" * len(table[0])]
        lines += ["| " + " | ".join(r) + " |" for r in table[1:]]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> str:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {mem:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", nargs="*", help="run only these cases")
    parser.add_argument("--markdown", action="store_true",
                        help="print a Markdown table")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.case:
        _run_case(args.case, args.quick)
        return

    sys.path.insert(0, HERE)
    from cases import CASES

    names = args.only or list(CASES)
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
    rows, start = [], time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, os.path.abspath(__file__), "--case", name]
        cmd += ["--quick"] if args.quick else []
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@ROWS@@")]
        if proc.returncode or not lines:
            print(proc.stdout[-3000:], proc.stderr[-5000:], file=sys.stderr)
            raise SystemExit(f"case {name!r} failed (exit {proc.returncode})")
        rows += json.loads(lines[-1][len("@@ROWS@@"):])
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    total = time.perf_counter() - start
    print(f"keras_biasinit benchmarks ({'quick' if args.quick else 'full'} sizes), "
          f"{datetime.date.today().isoformat()}, {machine()}")
    print(format_table(rows, args.markdown))
    print(f"total wall time {total:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": datetime.date.today().isoformat(),
                       "machine": machine(), "quick": args.quick, "rows": rows,
                       "total_s": total}, f, indent=1)


if __name__ == "__main__":
    main()
