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

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, find, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample, Unsatisfiable

from verify.counterexample import Counterexample
from verify.errors import TheoremError
from verify.numeric import Structure, batch_evaluator, batch_sampler, judge, single_evaluator
from verify.spec import Property, Theorem


@dataclass(frozen=True)
class Budget:
    """How hard to search: ``examples`` Hypothesis examples of ``batch`` instances each."""

    examples: int = 10
    batch: int = 512
    shrink_examples: int = 200
    shrink_seconds: float = 20.0

    def __post_init__(self) -> None:
        if self.examples < 1 or self.batch < 1:
            raise TheoremError("budget: examples and batch must be positive")

    @property
    def instances(self) -> int:
        return self.examples * self.batch

    def as_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, "batch": self.batch, "instances": self.instances}


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
        }
        if self.dropped_violated is not None:
            d["instances_violating_dropped_assumption"] = self.dropped_violated
        if self.counterexample is not None:
            d["counterexample"] = self.counterexample.as_dict()
        if self.note:
            d["note"] = self.note
        return d


#: decades of |r| / tolerance bound in the residual histogram; "0" counts exact zeros
HISTOGRAM_DECADES = range(-18, 3)


def _add_to_histogram(hist: dict[str, int], ratios: np.ndarray) -> None:
    """Count ratios by decade: key "k" holds 10^k <= ratio < 10^(k+1) (clipped to the range)."""
    zero = ratios == 0
    if zero.any():
        hist["0"] = hist.get("0", 0) + int(zero.sum())
    lo, hi = HISTOGRAM_DECADES.start, HISTOGRAM_DECADES.stop - 1
    decades = np.clip(np.floor(np.log10(ratios[~zero])), lo, hi).astype(int)
    for k, n in zip(*np.unique(decades, return_counts=True)):
        hist[str(k)] = hist.get(str(k), 0) + int(n)


class _Violation(Exception):
    """Raised inside the Hypothesis test body when a batch holds a failing instance."""


def _quiet_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        derandomize=False,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        print_blob=False,
    )


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

    def check_batch(structure: dict[str, Any], key_seed: int) -> None:
        s = Structure(structure)
        if shrink_started and (s, key_seed) not in known_failing:
            if time.perf_counter() - shrink_started[0] > budget.shrink_seconds:
                return  # shrink time is up: report what we have (deterministic for known failures)
        out = evaluator(s, key_seed, budget.batch)
        holds = out["holds"]
        ok_mask = holds[:, enforce].all(axis=1) if enforce else np.ones(len(out["ratio"]), bool)
        bad = ok_mask & ~(out["ratio"] <= 1.0)
        if not shrink_started:
            result.batches += 1
            result.drawn += len(ok_mask)
            result.satisfied += int(ok_mask.sum())
            for i, n in enumerate(names):
                result.per_assumption[n] += int(holds[:, i].sum())
            if drop_idx is not None:
                result.dropped_violated += int((ok_mask & ~holds[:, drop_idx]).sum())
            good = ok_mask & np.isfinite(out["ratio"])
            _add_to_histogram(result.histogram, out["ratio"][good])
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
    test = hypothesis_seed(seed)(_quiet_settings(budget.examples)(test))
    try:
        test()
    except _Violation:
        pass
    except Exception as exc:  # noqa: BLE001 - a user's property or sampler broke
        result.verdict, result.note = "error", f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        result.seconds = time.perf_counter() - t0
        return result

    if failing:
        s, key_seed, idx = failing[-1]  # Hypothesis replays the minimal failing example last
        first_s = failing[0][0]
        result.counterexample = _minimise(theorem, prop, variant, enforce, s, key_seed, idx, budget, first_s, seed)
        cx = result.counterexample
        if not cx.finite and drop is not None and not cx.assumptions_held.get(drop, True):
            # without the dropped assumption the claim is not even defined (0/0, log 0, ...):
            # that shows the assumption necessary, and the witness says why
            result.verdict = "refuted"
            result.note = f"the claim is undefined (non-finite) without {drop}"
        elif not cx.finite:
            result.verdict = "error"
            result.note = "non-finite residual (NaN/inf) on an instance meeting the assumptions"
        elif cx.real:
            result.verdict = "refuted"
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


def _ladder(v: float) -> list[float]:
    """Simpler-first replacement values for one entry, ending with the entry itself."""
    if not math.isfinite(v):
        return [v]
    out: list[float] = []
    for c in (0.0, math.copysign(1.0, v), float(round(v)), round(v, 1), round(v, 3), v):
        if c not in out:
            out.append(c)
    out.remove(v)
    return out + [v]


def _minimise(theorem, prop, variant, enforce, s, key_seed, idx, budget, first_s, seed) -> Counterexample:
    batch = batch_sampler(theorem.sample)(s, key_seed, budget.batch)
    x0 = {k: np.asarray(v)[idx] for k, v in batch.items()}
    single = single_evaluator(prop, theorem.assumptions, theorem.tolerance)

    finite_failure = bool(single(s, x0)["finite"])

    def fails(x: dict[str, np.ndarray]) -> bool:
        """Still a failure of the same kind: shrinking a finite violation must not wander into a
        NaN (a probability simplified to 0, say), which would report a different problem."""
        out = single(s, x)
        if finite_failure and not out["finite"]:
            return False
        return bool(out["holds"][enforce].all() if enforce else True) and not (out["ratio"] <= 1.0)

    slots = [(k, i) for k, v in x0.items() if v.dtype.kind == "f" for i in range(v.size)]
    ladders = [_ladder(float(x0[k].reshape(-1)[i])) for k, i in slots]

    def build(choice: Sequence[int]) -> dict[str, np.ndarray]:
        x = {k: v.copy() for k, v in x0.items()}
        for (k, i), lad, c in zip(slots, ladders, choice):
            x[k].reshape(-1)[i] = lad[c]
        return x

    method = "none"
    x_min = x0
    if slots:
        strategy = st.tuples(*[st.integers(0, len(lad) - 1) for lad in ladders])
        try:
            choice = find(strategy, lambda c: fails(build(c)),
                          settings=_quiet_settings(budget.shrink_examples), random=random.Random(seed))
            x_min, method = build(choice), "hypothesis"
        except (NoSuchExample, Unsatisfiable):
            # Hypothesis found no failing mix of simpler values: simplify greedily from x0 instead
            choice = [len(lad) - 1 for lad in ladders]
            for j, lad in enumerate(ladders):
                for c in range(len(lad) - 1):
                    trial = choice[:j] + [c] + choice[j + 1 :]
                    if fails(build(trial)):
                        choice = trial
                        break
            x_min, method = build(choice), "greedy"
        if not fails(x_min):  # never report an instance that does not fail
            x_min, method = x0, "none"

    verdict = judge(prop, theorem.assumptions, theorem.tolerance, s, x_min, enforce)
    f64 = verdict["f64"]
    real = verdict["holds"] and verdict["finite"] and verdict["exceeds"]
    names = [a.name for a in theorem.assumptions]
    return Counterexample(
        theorem_id=theorem.id,
        variant=variant,
        enforced=[names[i] for i in enforce],
        structure=s.as_json(),
        instance=x_min,
        residual=float(f64["absres"]),
        ratio=float(f64["ratio"]),
        finite=bool(f64["finite"]),
        highprec_residual=verdict["highprec_residual"],
        highprec_ratio=verdict["highprec_ratio"],
        real=real,
        seed=seed,
        key_seed=int(key_seed),
        index=int(idx),
        shrink={
            "method": method,
            "structure_before": first_s.as_json(),
            "structure_after": s.as_json(),
            "nonzero_entries_before": int(sum(np.count_nonzero(v) for v in x0.values())),
            "nonzero_entries_after": int(sum(np.count_nonzero(v) for v in x_min.values())),
        },
        source_file=theorem.module if theorem.module.endswith(".py") else "",
        assumptions_held={n: bool(h) for n, h in zip(names, np.asarray(f64["holds"]).ravel())},
    )


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
