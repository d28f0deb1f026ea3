"""The symbolic face: a derivation is an ordered list of SymPy steps, each checked here.

Step kinds
----------
``Equal(lhs, rhs)``
    Confirmed when ``simplify(lhs - rhs) == 0``.
``Cases(lhs, rhs, over=(x, y, ...))``
    A case split that is exhaustive by construction: every weak ordering of the real numbers
    ``{0, x, y, ...}`` (ties as their own cases). Each ordering is realised by substituting the
    symbols as sums of positive increments, and the relation (``==`` or ``>=``) must simplify to
    true in every case. A sign split (x < 0, x = 0, x > 0) is the one-symbol case.
``Separable(summand, optimise=(a, t), index=j)``
    The max-sum rule: a max over a product domain of a sum of terms, term ``j`` depending on
    the optimised variables of block ``j`` only, equals the sum of blockwise maxima. The engine
    checks the premise (every occurrence of an optimised ``IndexedBase`` in the summand has
    ``j`` as its first index); the rule itself is a named lemma, listed in the certificate.
``Agrees(expr, symbols, fn)``
    A cross-check, not a proof: the SymPy expression (scalar or matrix; e.g. a derivative SymPy
    computed) is evaluated exactly at random rational points and compared with an independent
    float64 function ``fn`` (NumPy or JAX, e.g. ``jax.grad``). Disagreement refutes the step,
    which is how a computer-algebra result that is silently wrong gets flagged. Agreement is
    ``cross-checked``; it never makes a derivation ``proved`` on its own.
``Monotone(f, x, direction)``
    The monotone-max rule: a non-decreasing ``f`` commutes with a max over any finite set
    (a non-increasing one turns it into a min). The premise ``f(x + d) - f(x) >= 0`` for
    ``d >= 0`` is checked by a case split.

A step SymPy cannot confirm is ``unconfirmed``, never ``proved``. A step that is false is
``refuted`` when a rational point (respecting the symbols' assumptions) makes it fail exactly.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import sympy as sp

from verify.config import in_float64

#: scope of a derivation that argues for every size
ALL_SIZES = "all sizes"

RULES = {
    "max-sum separability": "max over a product domain of a sum of blockwise terms = sum of blockwise maxima",
    "monotone max": "a non-decreasing map commutes with max over a finite set; a non-increasing one maps max to min",
}


def up_to(n: int) -> str:
    """Scope of a derivation checked with explicit symbols for every size up to ``n``."""
    return f"sizes up to {int(n)}"


@dataclass(frozen=True)
class Equal:
    lhs: Any
    rhs: Any
    why: str


@dataclass(frozen=True)
class Cases:
    lhs: Any
    rhs: Any
    over: Sequence[Any]
    why: str
    relation: str = "=="


@dataclass(frozen=True)
class Separable:
    summand: Any
    optimise: Sequence[Any]
    index: Any
    why: str


@dataclass(frozen=True)
class Monotone:
    f: Any
    x: Any
    why: str
    direction: str = "increasing"


@dataclass(frozen=True)
class Agrees:
    expr: Any
    symbols: Sequence[Any]
    fn: Callable[..., Any]
    why: str
    points: int = 12
    rtol: float = 1e-9


Step = Equal | Cases | Separable | Monotone | Agrees


@dataclass(frozen=True)
class Derivation:
    """Ordered steps and the scope they argue: :data:`ALL_SIZES` or :func:`up_to` ``(N)``."""

    steps: Sequence[Step]
    scope: str = ALL_SIZES

    def __post_init__(self) -> None:
        from verify.errors import TheoremError

        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise TheoremError("a derivation needs at least one step")
        for s in self.steps:
            if not isinstance(s, (Equal, Cases, Separable, Monotone, Agrees)):
                raise TheoremError(f"derivation step {s!r} is not Equal, Cases, Separable, Monotone or Agrees")
        if self.scope != ALL_SIZES and not self.scope.startswith("sizes up to "):
            raise TheoremError(f"derivation scope {self.scope!r}: use verify.ALL_SIZES or verify.up_to(N)")


@dataclass
class StepResult:
    kind: str
    why: str
    status: str  # confirmed | cross-checked | unconfirmed | refuted
    detail: str = ""
    cases: int = 0
    rule: str | None = None
    witness: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", 0) or k == "status"}


@dataclass
class SymbolicResult:
    verdict: str  # proved | proved-to-N | unconfirmed | refuted | none
    scope: str
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rules(self) -> list[str]:
        return sorted({s.rule for s in self.steps if s.rule})

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "scope": self.scope,
            "rules_used": {r: RULES[r] for r in self.rules},
            "steps": [s.as_dict() for s in self.steps],
            "seconds": round(self.seconds, 3),
        }


# --------------------------------------------------------------------------- checking


def _is_zero(expr: Any) -> bool:
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    simplified = sp.simplify(expr)
    if simplified == 0:
        return True
    return bool(sp.simplify(sp.expand(simplified.rewrite(sp.Piecewise))) == 0)


def _is_nonneg(expr: Any) -> bool:
    expr = sp.simplify(sp.sympify(expr))
    return bool(expr.is_nonnegative) or expr == 0


def _relation_holds(lhs: Any, rhs: Any, relation: str) -> bool:
    diff = sp.sympify(lhs) - sp.sympify(rhs)
    return _is_zero(diff) if relation == "==" else _is_nonneg(diff)


def _atoms(expr: Any) -> list[Any]:
    expr = sp.sympify(expr)
    atoms = set(expr.free_symbols) | set(expr.atoms(sp.Indexed))
    # an Indexed's own index symbols are not values to probe
    return sorted(atoms, key=str)


def _random_value(atom: Any, rng: random.Random) -> Any:
    def frac() -> sp.Rational:
        return sp.Rational(rng.randint(1, 40), rng.randint(1, 7))

    if getattr(atom, "is_integer", False):
        return sp.Integer(rng.randint(0, 5))
    if atom.is_positive:
        return frac()
    if atom.is_nonnegative:
        return frac() if rng.random() < 0.8 else sp.Integer(0)
    if atom.is_negative:
        return -frac()
    if atom.is_nonpositive:
        return -frac() if rng.random() < 0.8 else sp.Integer(0)
    return frac() * rng.choice([-1, 1])


def _probe(lhs: Any, rhs: Any, relation: str, tries: int = 60, seed: int = 0,
           case: dict[Any, Any] | None = None) -> dict[str, str] | None:
    """Look for a rational point where the relation fails exactly; return it, or None.

    With ``case`` (a substitution from :func:`weak_orderings`) the point is reported in the
    original symbols rather than the case's increments."""
    rng = random.Random(seed)
    lhs, rhs = sp.sympify(lhs), sp.sympify(rhs)
    atoms = _atoms(lhs - rhs)
    atoms += sorted({a for v in (case or {}).values() for a in sp.sympify(v).free_symbols} - set(atoms), key=str)
    for _ in range(tries):
        point = {a: _random_value(a, rng) for a in atoms}
        try:
            diff = sp.simplify((lhs - rhs).subs(point))
            value = diff if diff.is_Rational else diff.evalf(50)
        except Exception:  # noqa: BLE001 - an unevaluable point is no witness
            continue
        if not value.is_Number:
            continue  # e.g. an unevaluated integral: no verdict either way
        if value.is_Rational:
            fails = value != 0 if relation == "==" else bool(value < 0)
        else:  # algebraic/transcendental: only a value far above 50-digit rounding counts
            fails = abs(value) > 1e-30 if relation == "==" else bool(value < -1e-30)
        if fails:
            shown = {k: v for k, v in point.items() if not str(k).startswith("_d")}
            shown |= {k: sp.sympify(v).subs(point) for k, v in (case or {}).items()}
            return {str(k): str(v) for k, v in shown.items()} | {"lhs - rhs": str(diff)}
    return None


def _ordered_partitions(items: list[Any]) -> list[list[list[Any]]]:
    if not items:
        return [[]]
    out = []
    for r in range(1, len(items) + 1):
        for first in itertools.combinations(items, r):
            rest = [i for i in items if i not in first]
            out.extend([list(first), *tail] for tail in _ordered_partitions(rest))
    return out


def _feasible(sym: Any, sign: int) -> bool:
    """Can ``sym`` (with its SymPy assumptions) have this sign (-1, 0, +1)?"""
    forbidden = {
        -1: sym.is_nonnegative or sym.is_positive,
        0: sym.is_positive or sym.is_negative or sym.is_nonzero,
        1: sym.is_nonpositive or sym.is_negative,
    }
    return not forbidden[sign]


def weak_orderings(symbols: Sequence[Any]) -> list[dict[Any, Any]]:
    """Substitutions realising every weak ordering of ``{0} ∪ symbols``, ties included.

    Each ordering is an ordered partition into tied blocks; blocks are spaced by strictly
    positive increments, so every case decides each comparison between the symbols and 0.
    Together the cases cover the reals exactly once. Orderings that contradict a symbol's own
    assumption (a non-negative symbol below 0, say) are skipped.
    """
    zero = sp.Integer(0)
    cases = []
    for blocks in _ordered_partitions([zero, *symbols]):
        k = next(i for i, b in enumerate(blocks) if zero in b)
        incs = [sp.Symbol(f"_d{i}", positive=True) for i in range(len(blocks))]
        sub, ok = {}, True
        for m, block in enumerate(blocks):
            value = sum(incs[k + 1 : m + 1], zero) if m > k else -sum(incs[m + 1 : k + 1], zero)
            sign = (m > k) - (m < k)
            for s in block:
                if s is zero:
                    continue
                ok = ok and _feasible(s, sign)
                sub[s] = value
        if ok:
            cases.append(sub)
    return cases


def check_step(step: Step) -> StepResult:
    if isinstance(step, Equal):
        if _is_zero(sp.sympify(step.lhs) - sp.sympify(step.rhs)):
            return StepResult("equal", step.why, "confirmed")
        witness = _probe(step.lhs, step.rhs, "==")
        if witness:
            return StepResult("equal", step.why, "refuted", "false at a rational point", witness=witness)
        return StepResult("equal", step.why, "unconfirmed", "SymPy could not simplify lhs - rhs to 0")

    if isinstance(step, Cases):
        return _check_cases(step.lhs, step.rhs, step.over, step.relation, "cases", step.why)

    if isinstance(step, Monotone):
        d = sp.Symbol("_dmono", positive=True)
        f = sp.sympify(step.f)
        up, here = f.subs(step.x, step.x + d), f
        lhs, rhs = (up, here) if step.direction == "increasing" else (here, up)
        res = _check_cases(lhs, rhs, [step.x], ">=", "monotone", step.why)
        res.rule = "monotone max"
        return res

    if isinstance(step, Agrees):
        return _check_agrees(step)

    if isinstance(step, Separable):
        bases = {b.label if isinstance(b, sp.IndexedBase) else b for b in step.optimise}
        bad = [
            str(ix)
            for ix in sp.sympify(step.summand).atoms(sp.Indexed)
            if ix.base.label in bases and ix.indices[0] != step.index
        ]
        if bad:
            return StepResult(
                "separable", step.why, "unconfirmed",
                f"term {step.index} reaches outside its block: {', '.join(sorted(bad))}",
                rule="max-sum separability",
            )
        return StepResult(
            "separable", step.why, "confirmed",
            f"each term touches only block {step.index} of {', '.join(sorted(map(str, bases)))}",
            rule="max-sum separability",
        )
    raise TypeError(f"unknown step {step!r}")


def _check_cases(lhs: Any, rhs: Any, over: Sequence[Any], relation: str, kind: str, why: str) -> StepResult:
    cases = weak_orderings(over)
    for n, sub in enumerate(cases):
        l_case, r_case = sp.sympify(lhs).subs(sub), sp.sympify(rhs).subs(sub)
        if _relation_holds(l_case, r_case, relation):
            continue
        order = " <= ".join(str(s) for s in sorted(sub, key=lambda s: sp.sympify(sub[s]).count_ops()))
        witness = _probe(l_case, r_case, relation, seed=n, case=sub)
        if witness:
            return StepResult(kind, why, "refuted", f"fails in case {n + 1}/{len(cases)}", len(cases),
                              witness=witness)
        return StepResult(kind, why, "unconfirmed", f"case {n + 1}/{len(cases)} not confirmed ({order})",
                          len(cases))
    return StepResult(kind, why, "confirmed", f"{len(cases)} cases", len(cases))


@in_float64
def _check_agrees(step: Agrees) -> StepResult:
    import numpy as np

    rng = random.Random(0)
    for k in range(step.points):
        point, args = {}, []
        for sym in step.symbols:
            if isinstance(sym, sp.MatrixSymbol):
                value = sp.ImmutableMatrix(sym.rows, sym.cols, lambda i, j: _random_value(sp.Symbol("v", real=True), rng))
                point[sym] = value
                args.append(np.array(value.tolist(), dtype=float))
            else:
                point[sym] = _random_value(sym, rng)
                args.append(float(point[sym]))
        exact = sp.sympify(step.expr).subs(point).doit()
        exact = np.array(sp.Matrix(exact).evalf(30).tolist() if hasattr(exact, "shape") else exact.evalf(30), dtype=float)
        numeric = np.asarray(step.fn(*args), dtype=float)
        exact = np.broadcast_to(exact.reshape(numeric.shape) if exact.size == numeric.size else exact, numeric.shape)
        if not np.allclose(exact, numeric, rtol=step.rtol, atol=step.rtol):
            witness = {str(k): str(v.tolist() if hasattr(v, "tolist") else v) for k, v in point.items()}
            witness |= {"sympy": str(exact.tolist()), "numeric": str(numeric.tolist())}
            return StepResult("agrees", step.why, "refuted",
                              f"SymPy and the numeric function disagree at point {k + 1}", witness=witness)
    return StepResult("agrees", step.why, "cross-checked", f"agree at {step.points} rational points (not a proof)")


def _check_safely(step: Step) -> StepResult:
    """SymPy can raise on expressions it cannot handle (nested Sums, say): that step is then
    unconfirmed, with the reason, and the rest of the derivation is still checked."""
    try:
        return check_step(step)
    except Exception as exc:  # noqa: BLE001
        kind = type(step).__name__.lower()
        why = getattr(step, "why", "")
        return StepResult(kind, why, "unconfirmed", f"SymPy raised {type(exc).__name__}: {exc}"[:300])


@in_float64
def check_derivation(derivation: Derivation | None) -> SymbolicResult:
    if derivation is None:
        return SymbolicResult("none", "")
    t0 = time.perf_counter()
    results = [_check_safely(s) for s in derivation.steps]
    statuses = {r.status for r in results}
    if "refuted" in statuses:
        verdict = "refuted"
    elif "unconfirmed" in statuses or "confirmed" not in statuses:  # cross-checks alone prove nothing
        verdict = "unconfirmed"
    elif derivation.scope == ALL_SIZES:
        verdict = "proved"
    else:
        verdict = "proved-to-" + derivation.scope.removeprefix("sizes up to ")
    return SymbolicResult(verdict, derivation.scope, results, time.perf_counter() - t0)
