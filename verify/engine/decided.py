"""Deciding a theorem's symbolic claim exactly at the sizes of its small scope (z3, optional).

Between "proved for all sizes" and "tested on N instances" lies "decided for every real value at
the listed sizes". For each claim of a theorem's derivations, this writes the claim out at each
size of the structures the search covered (size symbols bound to structure fields as for the
cross-check; finite sums, maxima over switches and vector entries expanded), and asks the SMT
solver (:mod:`verify.exact.decide`) whether it holds for every real value of its atoms under the
symbols' own assumptions, smallest size first. The claim is the statement the property tests
only where the cross-check agrees; the runner decides only those claims.

Each size gets ``PER_SIZE_RLIMIT`` of z3's resource units (a count of its own steps, not
seconds) and a claim ``PER_CLAIM_RLIMIT`` in all, so which sizes are decided is the same on every
machine, under any load and with any number of worker processes; the first size the solver
cannot answer (out of its units, unknown) ends the claim, since larger sizes are harder.
Wall-clock limits (``PER_SIZE_S`` a size, ``PER_CLAIM_S`` a claim) are only a safety net, far
above what the units take; a claim they cut short says so in its note, as load-dependent. A claim outside the solver's fragment (a division,
an exponential, a Float constant, a matrix symbol) is ``unsupported`` and says which term.
Without z3 (``pip install 'dlverify[exact]'``) nothing is decided and the result says so. Which
sizes were decided is recorded, never assumed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import sympy as sp

from verify.symbolic import Derivation, Derivations, _unfold, size_symbols
from verify.values import Structure

#: z3 resource units for one size: the limit that decides what is decided. Measured on this
#: project's 2-core machine, z3 spends 0.7 to 5 million units a second on the catalogue's claims;
#: at 4 million a size and 12 million a claim, the exact face of koo, patel2016 and tian2018.thm5
#: took 85 s (on shared cores) and decided, on every claim, as many sizes as the 2 s / 6 s
#: wall-clock limits it replaced did in the same session or more (four claims more, where the
#: load had cut those limits short)
PER_SIZE_RLIMIT = 4_000_000
#: z3 resource units for all sizes of one claim
PER_CLAIM_RLIMIT = 12_000_000
#: wall-clock safety nets, for one size and for all sizes of one claim: far above what
#: PER_SIZE_RLIMIT takes, so that they bind only on a machine stalled by other work
PER_SIZE_S = 60.0
PER_CLAIM_S = 180.0


@dataclass
class Decided:
    """What the solver established for one claim: ``sizes`` decided valid, the first
    ``counterexample`` (size and exact model) if one was found, and why it stopped."""

    status: str  # decided | refuted | undecided | unsupported | skipped
    sizes: list[dict[str, int]] = field(default_factory=list)
    counterexample: dict[str, Any] | None = None
    solver: str = ""
    seconds: float = 0.0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "sizes": self.sizes, "counterexample": self.counterexample,
                "solver": self.solver, "seconds": round(self.seconds, 3), "note": self.note}


def _members(d: Derivation | Derivations) -> list[Derivation]:
    return list(d.members) if isinstance(d, Derivations) else [d]


def _sizes_of(member: Derivation, s: Mapping[str, Any]) -> dict[sp.Symbol, int] | None:
    """The claim's sizes at structure ``s``, or None when the member is not about ``s`` (another
    explicit size: its ``bind`` may not even apply, as a width of a layer ``s`` does not have)."""
    if member.size is not None and any(s.get(k) != v for k, v in member.size.items()):
        return None
    out = {}
    for sym in size_symbols(member.claim, member.entries):
        key = member.bind.get(sym.name, sym.name)
        value = key(s) if callable(key) else s.get(key)
        if not isinstance(value, (int, bool)) and not (hasattr(value, "__index__")):
            return None
        out[sym] = int(value)
    return out


def _relation(lhs: Any, rhs: Any, rel: str) -> Any:
    op = {"==": sp.Eq, "<=": sp.Le, ">=": sp.Ge}[rel]
    if isinstance(lhs, sp.MatrixBase) or isinstance(rhs, sp.MatrixBase):
        a, b = sp.Matrix(lhs), sp.Matrix(rhs)
        if a.shape != b.shape:
            raise ValueError(f"the sides have shapes {a.shape} and {b.shape}")
        return sp.And(*[op(x, y, evaluate=False) for x, y in zip(a, b)])
    return op(sp.sympify(lhs), sp.sympify(rhs), evaluate=False)


def explicit_claim(member: Derivation, sizes: Mapping[sp.Symbol, int]) -> Any:
    """The claim written out at explicit sizes: one relation (a conjunction over entries)."""
    sub = {k: sp.Integer(v) for k, v in sizes.items()}
    points = [sub]
    if member.entries is not None:
        k, lo, hi = member.entries
        lo_, hi_ = (sp.sympify(b).xreplace(sub) for b in (lo, hi))
        if not (lo_.is_Integer and hi_.is_Integer):
            raise ValueError("the entry range is not explicit at this size")
        points = [sub | {k: sp.Integer(v)} for v in range(int(lo_), int(hi_) + 1)]
    parts = []
    for point in points:
        problems: list[str] = []
        c = member.claim
        lhs = _unfold(c.lhs.xreplace(point) if hasattr(c.lhs, "xreplace") else c.lhs, problems)
        rhs = _unfold(c.rhs.xreplace(point) if hasattr(c.rhs, "xreplace") else c.rhs, problems)
        if problems:
            raise ValueError("; ".join(problems))
        parts.append(_relation(lhs, rhs, c.rel))
    return sp.And(*parts) if len(parts) > 1 else parts[0]


def replay_model(theorem: Any, derivation: Derivation | Derivations, structure: Mapping[str, Any],
                 model: Mapping[str, str]) -> dict[str, Any]:
    """The solver's model as an instance of the theorem (atoms bound to instance arrays by name or
    by the derivation's ``bind``; entries the claim does not read are 0), judged by the numeric
    face: the exact refutation replayed on the property itself."""
    import re
    from fractions import Fraction

    import jax
    import numpy as np

    from verify.backends import backend
    from verify.engine.evaluate import judge
    from verify.sampling import Rng

    s = Structure(structure)
    bind = _members(derivation)[0].bind
    with backend("jax"):
        shapes = jax.eval_shape(lambda: theorem.sample(Rng(None), s))
    x = {k: np.zeros(v.shape, dtype=np.float64 if np.dtype(v.dtype).kind == "f" else v.dtype) for k, v in shapes.items()}
    unplaced = []
    for atom, value in model.items():
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([0-9, ]+)\])?", atom)
        key = bind.get(m.group(1), m.group(1)) if m else None
        if not m or not isinstance(key, str) or key not in x:
            unplaced.append(atom)
            continue
        index = tuple(int(i) for i in m.group(2).split(",")) if m.group(2) else ()
        try:
            x[key][index] = float(Fraction(value))
        except (IndexError, ValueError):
            unplaced.append(atom)
    if unplaced:
        return {"replayed": False, "note": f"atoms not bound to the instance: {', '.join(sorted(unplaced)[:5])}"}
    verdict = judge(theorem.property, theorem.assumptions, theorem.tolerance, s, x,
                    list(range(len(theorem.assumptions))))
    return {"replayed": True, "assumptions_hold": bool(verdict.holds), "fails": bool(verdict.exceeds),
            "established": verdict.established if verdict.holds else "the assumptions do not hold there",
            "instance": {k: v.tolist() for k, v in x.items()}}


def decide_claim(derivation: Derivation | Derivations, structures: Iterable[Mapping[str, Any]]) -> Decided:
    """Decide the derivation's claim at the sizes of ``structures`` (smallest first, each once)."""
    from verify.exact import decide as exact

    if exact.z3 is None:
        return Decided("skipped", note=exact.MISSING_Z3)
    t0 = time.perf_counter()
    out = Decided("undecided", solver=exact.solver_version())
    seen: set[tuple[int, tuple[tuple[str, int], ...]]] = set()
    s_of: dict[tuple[tuple[str, int], ...], dict[str, Any]] = {}
    todo = []
    for s in map(Structure, structures):
        for i, member in enumerate(_members(derivation)):
            sizes = _sizes_of(member, s)
            if sizes is None:
                continue
            key = (i, tuple(sorted((k.name, v) for k, v in sizes.items())))
            if key not in seen:
                seen.add(key)
                s_of[key[1]] = s.as_json()
                todo.append((sum(sizes.values()), key, member, sizes))
    todo.sort(key=lambda t: (t[0], t[1]))
    units = 0
    for _, (_, named), member, sizes in todo:
        units_left = PER_CLAIM_RLIMIT - units
        if units_left <= 0:
            out.note = out.note or f"the z3 resource units for this claim ({PER_CLAIM_RLIMIT:,}) ran out"
            break
        left = PER_CLAIM_S - (time.perf_counter() - t0)
        if left <= 0.05:
            out.note = out.note or (f"the wall-clock safety limit for this claim ({PER_CLAIM_S:g} s) ran out: "
                                    "load-dependent")
            break
        try:
            claim = explicit_claim(member, sizes)
        except (ValueError, TypeError) as exc:
            out.status, out.note = ("unsupported" if not out.sizes else out.status), f"not written out: {exc}"
            break
        d = exact.decide(claim, (), timeout_s=min(PER_SIZE_S, left), rlimit=min(PER_SIZE_RLIMIT, units_left))
        units += d.units
        size = dict(named)
        if d.status == "valid" and not d.reason.startswith("vacuous"):
            out.sizes.append(size)
        elif d.status == "counterexample":
            out.status = "refuted"
            out.counterexample = {"size": size, "structure": dict(s_of[named]),
                                  "model": {k: str(v) for k, v in (d.model or {}).items()}}
            break
        else:
            if d.status == "unsupported" and not out.sizes:
                out.status = "unsupported"
            out.note = f"at {size}: {d.status}" + (f" ({d.reason})" if d.reason else "")
            break
    if out.status not in ("refuted", "unsupported") and out.sizes:
        out.status = "decided"
    out.seconds = time.perf_counter() - t0
    return out
