"""One row of the benchmark table, and the exactness check its last column shows."""

from __future__ import annotations

import numpy as np


def _row(case, rows, kind, ours, bare=None, anchor_name="", anchor=None, peak=None,
         target="", ratio_of="bare", check="", limit=None):
    """One table row. `ratio_of` names what `ours` is divided by for the target."""
    base = bare if ratio_of == "bare" else anchor
    ratio = ours / base if base else float("nan")
    return {
        "case": case,
        "rows": rows,
        "input": kind,
        "ours_s": ours,
        "bare_s": bare,
        "ratio_bare": (ours / bare) if bare else None,
        "anchor": anchor_name,
        "anchor_s": anchor,
        "ratio_anchor": (ours / anchor) if anchor else None,
        "peak_mib": peak,
        "target": target,
        "met": None if limit is None else bool(ratio <= limit),
        "check": check,
    }


def _close(a, b, rtol=1e-9, atol=0.0) -> str:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    err = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))
    ok = np.allclose(a, b, rtol=rtol, atol=atol)
    return ("ok" if ok else "MISMATCH") + f" (rel {err:.1e})"
