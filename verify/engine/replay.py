"""Replaying a stored counterexample: the record, on the theorem as its code stands now."""

from __future__ import annotations

import jax
import numpy as np

from verify.backends import backend
from verify.config import in_float64
from verify.engine.evaluate import judge
from verify.errors import VerifyError
from verify.records.counterexample import Counterexample, Replay
from verify.records.io import stable_text
from verify.sampling import Rng
from verify.spec import Theorem
from verify.values import Structure


@in_float64
def replay(cx: Counterexample, theorem: Theorem) -> Replay:
    """Re-evaluate ``cx`` (float64, 50 digits, then exact rationals or ball arithmetic) against
    ``theorem``, the theorem it names."""
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
    try:
        s = Structure(cx.structure)
        hash(s)
    except TypeError as exc:
        raise VerifyError(f"{path}: field structure: not a structure ({exc})") from None
    check_fits(path, theorem, s, cx.instance)
    try:
        verdict = judge(prop, theorem.assumptions, theorem.tolerance, s, cx.instance, enforce)
    except Exception as exc:  # noqa: BLE001 - the theorem's code raised on the recorded instance
        why = stable_text(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        raise VerifyError(f"{path}: {theorem.id} cannot be evaluated on the recorded instance ({why})") from None
    f64 = verdict.f64
    reproduced = verdict.holds and (not verdict.finite or verdict.exceeds)
    certification = {}
    if reproduced and verdict.finite:
        from verify.exact.ball import certify

        c = certify(prop, theorem.assumptions, theorem.tolerance, s, cx.instance, enforce)
        certification = {"status": c.status, "method": c.method, "ratio_lower": c.ratio_lower, "reason": c.reason}
    return Replay(
        certification=certification,
        counterexample=cx, residual=float(f64["absres"]), ratio=float(f64["ratio"]), finite=bool(f64["finite"]),
        highprec_residual=verdict.highprec_residual, highprec_ratio=verdict.highprec_ratio,
        assumptions_hold=verdict.holds, reproduced=reproduced,
        established=verdict.established if verdict.holds else "rounding",
    )


def check_fits(path: str, theorem: Theorem, s: Structure, instance: dict[str, np.ndarray]) -> None:
    """The recorded structure and instance must be what the theorem's sampler makes of that
    structure: the same keys, shapes and kinds of dtype. Checked abstractly (``jax.eval_shape``,
    nothing allocated), so a forged structure that would ask for gigabytes, lacks a key or has a
    value of the wrong type is refused before anything is evaluated."""
    try:
        with backend("jax"):
            shapes = jax.eval_shape(lambda: theorem.sample(Rng(None), s))
    except Exception as exc:  # noqa: BLE001 - the sampler cannot make an instance of this structure
        why = stable_text(f"{type(exc).__name__}: {exc}".splitlines()[0][:200])
        raise VerifyError(f"{path}: field structure: {theorem.id}'s sampler cannot use it ({why})") from None
    if not isinstance(shapes, dict) or set(shapes) != set(instance):
        want = sorted(shapes) if isinstance(shapes, dict) else type(shapes).__name__
        raise VerifyError(f"{path}: field instance: has {sorted(instance)}, the sampler makes {want}")
    for k, spec in shapes.items():
        got = instance[k]
        if tuple(got.shape) != tuple(spec.shape) or np.dtype(got.dtype).kind != np.dtype(spec.dtype).kind:
            raise VerifyError(f"{path}: field instance.{k}: {got.dtype}{list(got.shape)}, but the structure "
                              f"{s} makes {np.dtype(spec.dtype)}{list(spec.shape)}")
