"""Measured failure rates: how often a claim fails on one listed structure (``Theorem.rates_on``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from verify.config import in_float64
from verify.engine.evaluate import batch_evaluator
from verify.spec import Theorem
from verify.values import Structure


@in_float64
def failure_rate(
    theorem: Theorem, structure: Any, *, instances: int, batch: int, seed: int
) -> dict[str, Any]:
    """How often the claim fails on one structure: of ``instances`` drawn (in batches of ``batch``,
    reusing the search's compiled program), the number meeting every assumption and, of those,
    the number whose residual exceeds the tolerance or is not finite. The interval is Wilson's 95%."""
    s = Structure(structure)
    evaluator = batch_evaluator(theorem.property, theorem.sample, theorem.assumptions, theorem.tolerance)
    met = failing = drawn = 0
    for k in range(-(-instances // batch)):
        out = evaluator(s, (seed + 7919 * k) % 2**32, batch)
        ok = out["holds"].all(axis=1) if theorem.assumptions else np.ones(len(out["ratio"]), bool)
        drawn += len(ok)
        met += int(ok.sum())
        failing += int((ok & ~(out["ratio"] <= 1.0)).sum())
    rate = failing / met if met else None  # nothing met the assumptions: no rate (JSON null, not NaN)
    return {"structure": s.as_json(), "instances": drawn, "meeting_assumptions": met, "failing": failing,
            "rate": rate, "interval95": list(_wilson(failing, met))}


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, float(centre - half)), min(1.0, float(centre + half)))
