"""Timing and peak-memory helpers for the benchmark cases.

Peak memory is the growth of this process's resident set size (RSS) while the
measured call runs, sampled every few milliseconds by a background thread
(psutil), over the RSS just before the call. Each case runs in a fresh
subprocess (see `run.py`), so one case's allocations do not hide another's.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any, Callable, Tuple

import psutil

_MIB = 2.0**20


class PeakRSS:
    """Context manager: `growth_mib` is the peak RSS growth inside the block."""

    def __init__(self, interval: float = 0.002) -> None:
        self._interval = interval
        self._process = psutil.Process()
        self.growth_mib = 0.0

    def __enter__(self) -> "PeakRSS":
        gc.collect()
        self._start = self._process.memory_info().rss
        self._peak = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            self._stop.wait(self._interval)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.growth_mib = (self._peak - self._start) / _MIB


def timed(fn: Callable[[], Any], *, memory: bool = False) -> Tuple[float, float, Any]:
    """Runs `fn()` once; returns (seconds, peak RSS growth in MiB or nan, result)."""
    gc.collect()
    if memory:
        with PeakRSS() as peak:
            start = time.perf_counter()
            result = fn()
            seconds = time.perf_counter() - start
        return seconds, peak.growth_mib, result
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, float("nan"), result


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    """The fastest of `repeats` runs of `fn()`, in seconds (for short anchors)."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def paired_runs(bare_fn: Callable[[], Any], ours_fn: Callable[[], Any],
                repeats: int) -> dict:
    """Alternates `bare_fn()` and `ours_fn()` `repeats` times (after one
    warm-up call of each), timing every call in wall seconds and in CPU
    seconds of the whole process (`time.process_time()`: all threads, so
    tf.data's own work counts; on shared cores it moves far less than wall
    time). Ratios are taken within a round, bare and ours run back to back.

    Returns a dict: `"wall"` and `"cpu"`, each `{"bare": [...], "ours":
    [...], "ratio": [...]}` (one entry a round); `"peak"`, our largest RSS
    growth in MiB; `"result"`, our last result.
    """
    bare_fn()
    ours_fn()
    runs = {k: {"bare": [], "ours": [], "ratio": []} for k in ("wall", "cpu")}
    peak, result = 0.0, None
    for _ in range(repeats):
        for side, fn in (("bare", bare_fn), ("ours", ours_fn)):
            gc.collect()
            with PeakRSS() as rss:
                wall, cpu = time.perf_counter(), time.process_time()
                out = fn()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            runs["wall"][side].append(wall)
            runs["cpu"][side].append(cpu)
            if side == "ours":
                peak, result = max(peak, rss.growth_mib), out
        for kind in ("wall", "cpu"):
            runs[kind]["ratio"].append(runs[kind]["ours"][-1]
                                       / runs[kind]["bare"][-1])
    return {**runs, "peak": peak, "result": result}
