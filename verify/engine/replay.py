"""Replaying a stored counterexample: the record, on the theorem as its code stands now."""

from __future__ import annotations

from verify.config import in_float64
from verify.engine.evaluate import judge
from verify.errors import VerifyError
from verify.records.counterexample import Counterexample, Replay
from verify.spec import Theorem
from verify.values import Structure


@in_float64
def replay(cx: Counterexample, theorem: Theorem) -> Replay:
    """Re-evaluate ``cx`` (float64 and 50 digits) against ``theorem``, the theorem it names."""
    path = cx.path or cx.theorem_id
    if theorem.id != cx.theorem_id:
        raise VerifyError(f"{path} is a counterexample to {cx.theorem_id}, not to {theorem.id}")
    kind, _, name = cx.variant.partition(":")
    if kind == "mutant":
        prop = theorem.mutant(name).property
    elif kind in ("claim", "ablate"):
        prop = theorem.property
    else:
        raise VerifyError(f"{path}: unknown variant {cx.variant!r}")
    names = [a.name for a in theorem.assumptions]
    missing = [n for n in cx.enforced if n not in names]
    if missing:
        raise VerifyError(f"{path}: theorem {theorem.id} no longer has assumptions {missing}")
    enforce = [names.index(n) for n in cx.enforced]
    s = Structure(cx.structure)
    verdict = judge(prop, theorem.assumptions, theorem.tolerance, s, cx.instance, enforce)
    f64 = verdict.f64
    return Replay(
        counterexample=cx, residual=float(f64["absres"]), ratio=float(f64["ratio"]), finite=bool(f64["finite"]),
        highprec_residual=verdict.highprec_residual, highprec_ratio=verdict.highprec_ratio,
        assumptions_hold=verdict.holds, reproduced=verdict.holds and (not verdict.finite or verdict.exceeds),
    )
