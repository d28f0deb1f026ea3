"""The search face: Hypothesis draws structures and seeds, JAX checks whole batches.

One Hypothesis example is one *batch*: the theorem's structure strategy draws the discrete part
(sizes, shapes, choices) and a 32-bit seed; the sampler turns the seed into ``batch`` instances,
which are checked in one compiled call. When a batch holds an instance that meets the enforced
assumptions and violates the tolerance, Hypothesis shrinks the structure and the seed to the
smallest batch that still fails. The failing instance is then shrunk value by value (Hypothesis
again, over a ladder of simpler values for each entry), and finally re-evaluated at 50 digits
to tell a real violation from float64 rounding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from hypothesis import given
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from verify.config import in_float64
from verify.engine.evaluate import batch_evaluator
from verify.engine.settings import quiet_settings
from verify.engine.shrink import minimise
from verify.errors import TheoremError
from verify.records.certificate import add_to_histogram
from verify.records.counterexample import Counterexample
from verify.records.io import stable_text
from verify.spec import Property, Theorem
from verify.values import Structure


@dataclass(frozen=True)
class Budget:
    """How hard to search: ``examples`` Hypothesis examples of ``batch`` instances each.

    Shrinking is budgeted in evaluations, never in seconds, so a search gives the same
    counterexample on a cold and a warm compilation cache: Hypothesis may evaluate at most
    ``shrink_batches`` new batches while it shrinks the structure and seed, and the value
    shrinker at most ``shrink_examples`` single instances. A counterexample records whether
    shrinking stopped at its budget (``shrink.stopped_early``).
    """

    examples: int = 10
    batch: int = 512
    shrink_examples: int = 200
    shrink_batches: int = 64

    def __post_init__(self) -> None:
        if self.examples < 1 or self.batch < 1:
            raise TheoremError("budget: examples and batch must be positive")
        if self.shrink_examples < 0 or self.shrink_batches < 0:
            raise TheoremError("budget: shrink budgets must be non-negative")

    @property
    def instances(self) -> int:
        return self.examples * self.batch

    def as_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, "batch": self.batch, "instances": self.instances,
                "shrink_batches": self.shrink_batches, "shrink_examples": self.shrink_examples}


@dataclass
class SearchResult:
    """What one search established. ``verdict``: confirmed | refuted | vacuous | error."""

    verdict: str
    variant: str
    enforced: list[str]
    drawn: int = 0
    satisfied: int = 0
    batches: int = 0
    max_residual: float = 0.0
    max_ratio: float = 0.0
    seed: int = 0
    seconds: float = 0.0
    budget: dict[str, Any] = field(default_factory=dict)
    per_assumption: dict[str, int] = field(default_factory=dict)
    histogram: dict[str, int] = field(default_factory=dict)
    dropped_violated: int | None = None
    counterexample: Counterexample | None = None
    note: str = ""
    #: per structure searched (in the order first drawn): instances drawn, meeting the enforced
    #: assumptions, and failing among those
    structures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def margin(self) -> float:
        """Distance to the tolerance, as a fraction of it: 1 - worst |r| / bound."""
        return 1.0 - self.max_ratio

    def as_dict(self) -> dict[str, Any]:
        d = {
            "verdict": self.verdict,
            "variant": self.variant,
            "enforced_assumptions": self.enforced,
            "instances_drawn": self.drawn,
            "instances_satisfying_assumptions": self.satisfied,
            "batches": self.batches,
            "largest_residual": self.max_residual,
            "largest_residual_over_tolerance": self.max_ratio,
            "margin_to_tolerance": self.margin,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "budget": self.budget,
            "instances_satisfying_each_assumption": self.per_assumption,
            "residual_over_tolerance_histogram": self.histogram,
            "structures": self.structures,
        }
        if self.dropped_violated is not None:
            d["instances_violating_dropped_assumption"] = self.dropped_violated
        if self.counterexample is not None:
            d["counterexample"] = self.counterexample.as_dict()
        if self.note:
            d["note"] = self.note
        return d


def _count_structure(rows: list[dict[str, Any]], s: Structure, drawn: int, meeting: int, failing: int) -> None:
    key = s.as_json()
    for row in rows:
        if row["structure"] == key:
            break
    else:
        row = {"structure": key, "drawn": 0, "meeting_assumptions": 0, "failing": 0}
        rows.append(row)
    row["drawn"] += drawn
    row["meeting_assumptions"] += meeting
    row["failing"] += failing


class _Violation(Exception):
    """Raised inside the Hypothesis test body when a batch holds a failing instance."""


@in_float64
def search(
    theorem: Theorem,
    *,
    prop: Property | None = None,
    variant: str = "claim",
    drop: str | None = None,
    budget: Budget = Budget(),
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> SearchResult:
    """Search for an instance that meets every assumption (but ``drop``) and fails ``prop``."""
    prop = prop or theorem.property
    names = [a.name for a in theorem.assumptions]
    if drop is not None:
        theorem.assumption(drop)  # raises a clear error for an unknown name
    enforce = [i for i, n in enumerate(names) if n != drop]
    drop_idx = names.index(drop) if drop is not None else None
    evaluator = batch_evaluator(prop, theorem.sample, theorem.assumptions, theorem.tolerance)

    result = SearchResult("confirmed", variant, [names[i] for i in enforce], seed=seed, budget=budget.as_dict())
    result.per_assumption = {n: 0 for n in names}
    if drop_idx is not None:
        result.dropped_violated = 0
    failing: list[tuple[Structure, int, int]] = []
    known_failing: set[tuple[Structure, int]] = set()
    t0 = time.perf_counter()
    shrink_started: list[float] = []
    shrink = {"batches": 0, "refused": 0}

    def check_batch(structure: dict[str, Any], key_seed: int) -> None:
        s = Structure(structure)
        if shrink_started and (s, key_seed) not in known_failing:
            if shrink["batches"] >= budget.shrink_batches:
                shrink["refused"] += 1
                return  # the shrink budget is spent: report what we have (deterministic)
            shrink["batches"] += 1
        out = evaluator(s, key_seed, budget.batch)
        holds = out["holds"]
        ok_mask = holds[:, enforce].all(axis=1) if enforce else np.ones(len(out["ratio"]), bool)
        bad = ok_mask & ~(out["ratio"] <= 1.0)
        if drop_idx is not None:  # a witness for the dropped assumption must violate it
            bad &= ~holds[:, drop_idx]
        if not shrink_started:
            result.batches += 1
            result.drawn += len(ok_mask)
            result.satisfied += int(ok_mask.sum())
            for i, n in enumerate(names):
                result.per_assumption[n] += int(holds[:, i].sum())
            if drop_idx is not None:
                result.dropped_violated += int((ok_mask & ~holds[:, drop_idx]).sum())
            _count_structure(result.structures, s, len(ok_mask), int(ok_mask.sum()), int(bad.sum()))
            good = ok_mask & np.isfinite(out["ratio"])
            add_to_histogram(result.histogram, out["ratio"][good])
            if good.any():
                result.max_ratio = max(result.max_ratio, float(out["ratio"][good].max()))
                result.max_residual = max(result.max_residual, float(out["absres"][good].max()))
            if progress:
                progress(len(ok_mask))
        if bad.any():
            if not shrink_started:
                shrink_started.append(time.perf_counter())
            known_failing.add((s, key_seed))
            worst = int(np.argmax(np.where(bad, np.nan_to_num(out["ratio"], posinf=1e308), -1.0)))
            failing.append((s, key_seed, worst))
            raise _Violation

    test = given(structure=theorem.structure, key_seed=st.integers(0, 2**32 - 1))(check_batch)
    test = hypothesis_seed(seed)(quiet_settings(budget.examples)(test))
    try:
        test()
    except _Violation:
        pass
    except Exception as exc:  # noqa: BLE001 - a user's property or sampler broke
        result.verdict, result.note = "error", stable_text(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        result.seconds = time.perf_counter() - t0
        return result

    if failing:
        s, key_seed, idx = failing[-1]  # Hypothesis replays the minimal failing example last
        first_s = failing[0][0]
        result.counterexample = minimise(theorem, prop, variant, enforce, s, key_seed, idx, budget, first_s, seed)
        cx = result.counterexample
        cx.shrink["structure_batches"] = shrink["batches"]
        cx.shrink["structure_budget"] = budget.shrink_batches
        cx.shrink["stopped_early"] = bool(shrink["refused"]) or bool(cx.shrink.get("values_stopped_early"))
        if not cx.finite and drop is not None and not cx.assumptions_held.get(drop, True):
            # without the dropped assumption the claim is not even defined (0/0, log 0, ...):
            # that shows the assumption necessary, and the witness says why
            result.verdict = "refuted"
            result.note = f"the claim is undefined (non-finite) without {drop}"
        elif not cx.finite:
            result.verdict = "error"
            result.note = "non-finite residual (NaN/inf) on an instance meeting the assumptions"
        elif cx.refutes:
            result.verdict = "refuted"
            if not cx.real:
                result.note = f"established in float64 only: {cx.established_note}"
        else:
            result.verdict = "error"
            result.note = (
                "float64 violation not reproduced at 50 digits: the tolerance is tighter than "
                "the rounding of this property"
            )
    elif result.satisfied == 0:
        result.verdict = "vacuous"
        result.note = "no drawn instance satisfied the enforced assumptions: nothing was tested"
    result.seconds = time.perf_counter() - t0
    return result


