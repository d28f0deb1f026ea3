"""The symbolic face: a derivation states the theorem's claim and reaches it by checked links.

A :class:`Derivation` has

* a **claim**, ``Claim(lhs, "==", rhs)`` (or ``"<="``, ``">="``): the theorem's statement in
  SymPy, over symbolic sizes (a ``Sum`` with a symbolic bound, ``IndexedBase`` entries, a
  ``MatrixSymbol`` of symbolic shape) or at an explicit size (``size={"D": 3}``, or a family
  made by :meth:`Derivation.for_sizes`);
* a **chain** ``lhs = e1 = e2 <= ... = rhs``: each :class:`Link` names the expression it reaches and
  the justification the engine checks: :class:`Algebra` (SymPy simplification, entrywise for
  matrices), :class:`Cases` (a case split that is exhaustive by construction), the named rules
  :class:`MaxSum` and :class:`Monotone` (their premises checked on the expression),
  :class:`Unfold` (the definition of a finite max or sum) and :class:`Lemma` (a fact proved in the
  same derivation). :class:`Agrees` is a numeric cross-check: it never proves;
* optional named **facts**: lemmas with claims and chains of their own, used by :class:`Lemma`;
* a **binding** of its symbols to an instance: by name (an ``IndexedBase`` or ``MatrixSymbol``
  called ``z`` is the instance's array ``z``, an integer ``Symbol`` ``D`` the structure's field
  ``D``), with ``bind`` for the exceptions, and the property ``component`` the claim states.

The engine checks every link, that each link starts where the previous one ended (the first at
the claim's left side), that the chain ends at the claim's right side and that the links'
relations compose to the claim's. It computes the scope: all sizes only for a chain over symbolic
sizes (or a claim that depends on no size at all); otherwise exactly the explicit sizes written.
A derivation that does not reach its claim is ``unconfirmed`` and says where it stops. A claim is
``refuted`` symbolically only by an exact rational point at which the claim itself fails.

The runner then evaluates the claim's two sides on drawn instances and compares them with what the
property computes (:mod:`verify.engine.crosscheck`), so ``proved`` is about the statement the
numeric face tests.
"""

from __future__ import annotations

import contextvars
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import sympy as sp

from verify.config import in_float64
from verify.errors import TheoremError

RELATIONS = ("==", "<=", ">=")

#: the named rules a derivation may use, and what each asserts
RULES = {
    "max-sum separability": "a max over independent blocks of a sum whose j-th term reads only block j is the sum "
                            "of the blockwise maxima",
    "monotone max": "a non-decreasing map commutes with a max over a finite set; a non-increasing one turns it "
                    "into a min",
}

# =============================================================================== vocabulary


def _domain(spec: Any) -> sp.Tuple:
    """``(var, [v1, v2, ...])`` (finite values) or ``(var, lo, hi)`` (the integers lo..hi)."""
    if not isinstance(spec, (tuple, list, sp.Tuple)) or len(spec) not in (2, 3):
        raise TheoremError(f"a max domain is (variable, values) or (variable, lo, hi), got {spec!r}")
    var = spec[0]
    if not isinstance(var, (sp.Symbol, sp.IndexedBase)):
        raise TheoremError(f"a max variable is a Symbol or an IndexedBase, got {var!r}")
    if len(spec) == 2:
        values = spec[1]
        values = values if isinstance(values, sp.FiniteSet) else sp.FiniteSet(*[sp.sympify(v) for v in values])
        if not values.is_finite_set or len(values) == 0:
            raise TheoremError(f"the values of {var} must be a non-empty finite set")
        return sp.Tuple(var, values)
    return sp.Tuple(var, sp.sympify(spec[1]), sp.sympify(spec[2]))


class _Extremum(sp.Expr):
    """``MaxOver(expr, *domains)``: the max over every assignment of the optimised variables.

    A domain is ``(t, [values])`` or ``(t, lo, hi)``. A ``Symbol`` ``t`` is one variable; an
    ``IndexedBase`` ``a`` stands for independent entries ``a[i, ...]``, each ranging over the
    values, so ``MaxOver(Sum(a[i] * c[i], (i, 0, D - 1)), (a, [0, 1]))`` is the max over
    ``{0,1}^D``. The optimised variables are bound: they are not free symbols of the expression.
    """

    is_commutative = True
    _name = "max"

    def __new__(cls, expr: Any, *domains: Any) -> "_Extremum":
        if not domains:
            raise TheoremError(f"{cls.__name__} needs at least one domain")
        return sp.Expr.__new__(cls, sp.sympify(expr), *[_domain(d) for d in domains])

    @property
    def function(self) -> sp.Expr:
        return self.args[0]

    @property
    def domains(self) -> tuple[sp.Tuple, ...]:
        return tuple(self.args[1:])

    @property
    def variables(self) -> tuple[Any, ...]:
        return tuple(d[0] for d in self.domains)

    @property
    def free_symbols(self) -> set[sp.Basic]:
        bound = set(self.variables)
        labels = {v.label for v in bound if isinstance(v, sp.IndexedBase)}
        out: set[sp.Basic] = set()
        for s in self.function.free_symbols:
            if s in bound or s in labels:
                continue
            if isinstance(s, sp.Indexed) and s.base in bound:
                continue
            out.add(s)
        for d in self.domains:
            for part in d[1:]:
                out |= set(part.free_symbols)
        return out

    def _latex(self, printer: Any) -> str:
        def dom(d: sp.Tuple) -> str:
            v = printer._print(d[0])
            if len(d) == 2:
                return f"{v} \\in {printer._print(d[1])}"
            return f"{printer._print(d[1])} \\le {v} \\le {printer._print(d[2])}"

        return r"\%s_{%s} \left(%s\right)" % (self._name, ", ".join(dom(d) for d in self.domains),
                                             printer._print(self.function))

    def _sympystr(self, printer: Any) -> str:
        return f"{type(self).__name__}({printer._print(self.function)}, " + \
            ", ".join(printer._print(tuple(d)) for d in self.domains) + ")"


class MaxOver(_Extremum):
    __doc__ = _Extremum.__doc__


class MinOver(_Extremum):
    """Like :class:`MaxOver`, the min."""

    _name = "min"


_EXTREMA = {MaxOver: sp.Max, MinOver: sp.Min}


@dataclass(frozen=True)
class Claim:
    """The statement a derivation proves: ``lhs rel rhs`` with ``rel`` in ``==``, ``<=``, ``>=``.

    (Not ``sympy.Eq``: SymPy evaluates ``Eq(y, y)`` to ``True`` and the sides are lost.)"""

    lhs: Any
    rel: str
    rhs: Any

    def __post_init__(self) -> None:
        if self.rel not in RELATIONS:
            raise TheoremError(f"a claim's relation is one of {', '.join(RELATIONS)}, got {self.rel!r}")
        object.__setattr__(self, "lhs", _sym(self.lhs))
        object.__setattr__(self, "rhs", _sym(self.rhs))

    def __str__(self) -> str:
        return f"{self.lhs} {self.rel} {self.rhs}"


def _sym(e: Any) -> Any:
    try:
        if isinstance(e, (list, tuple)):
            return sp.ImmutableMatrix(e)
        if isinstance(e, sp.MatrixBase):
            return sp.ImmutableMatrix(e)
        return sp.sympify(e, strict=True)
    except (sp.SympifyError, TypeError, ValueError) as exc:
        raise TheoremError(f"not a SymPy expression: {e!r} ({type(exc).__name__})") from None


def _as_claim(c: Any) -> Claim:
    if isinstance(c, Claim):
        return c
    if isinstance(c, sp.core.relational.Relational):
        rel = {sp.Eq: "==", sp.Le: "<=", sp.Ge: ">="}.get(type(c))
        if rel is None:
            raise TheoremError(f"a claim's relation is ==, <= or >=, got {type(c).__name__}")
        return Claim(c.lhs, rel, c.rhs)
    if isinstance(c, (bool, sp.logic.boolalg.BooleanAtom)):
        raise TheoremError("the claim evaluated to True/False before any check (SymPy simplified the relation): "
                           "write Claim(lhs, '==', rhs)")
    if isinstance(c, tuple) and len(c) == 3:
        return Claim(c[0], c[1], c[2])
    raise TheoremError(f"a claim is Claim(lhs, rel, rhs), got {c!r}")


# =============================================================================== justifications


@dataclass(frozen=True)
class Algebra:
    """``prev rel next`` by SymPy simplification: ``prev - next`` simplifies to 0 (entrywise for
    matrices), or for an inequality to an expression SymPy proves non-negative or non-positive."""

    why: str


@dataclass(frozen=True)
class Cases:
    """``prev rel next`` by a case split over every weak ordering of ``{0} and over`` (ties
    included), each realised by positive increments: exhaustive by construction."""

    over: Sequence[Any]
    why: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "over", tuple(self.over))
        for s in self.over:
            if not isinstance(s, (sp.Symbol, sp.Indexed)):
                raise TheoremError(f"Cases splits over Symbols or Indexed entries, got {s!r}")


@dataclass(frozen=True)
class MaxSum:
    """The max-sum rule: ``MaxOver(Sum_j f_j, vars) = Sum_j MaxOver(f_j, vars)`` (and for an
    explicit sum of terms) when term ``j`` reads only block ``j`` of every optimised variable:
    every occurrence of an optimised ``IndexedBase`` is an entry whose first index is ``j``
    (explicit sums: the terms read pairwise distinct entries), and no optimised name occurs in
    any other form. The engine checks that premise on the expression; the rule is listed."""

    why: str


@dataclass(frozen=True)
class Monotone:
    """The monotone-max rule: for ``f`` non-decreasing in its argument, ``MaxOver(f(e), vars) =
    f(MaxOver(e, vars))`` and ``Max(f(a), f(b), ...) = f(Max(a, b, ...))``; for ``f``
    non-increasing the max becomes a min. ``f`` is a function of one SymPy argument; the premise
    ``f(x + d) - f(x) >= 0`` for ``d > 0`` (``<= 0`` decreasing) is checked by a case split, and
    ``f`` may not read the optimised variables. ``direction="by sign"``: ``f(w) = c w`` is linear
    (checked), and ``MaxOver(c e) = Piecewise((c MaxOver(e), c >= 0), (c MinOver(e), True))``."""

    f: Callable[[Any], Any]
    why: str
    direction: str = "increasing"

    def __post_init__(self) -> None:
        if self.direction not in ("increasing", "decreasing", "by sign"):
            raise TheoremError(f"Monotone direction is 'increasing', 'decreasing' or 'by sign', got {self.direction!r}")


@dataclass(frozen=True)
class Unfold:
    """The definitions, at explicit sizes: a ``Sum`` with explicit integer bounds is its terms, a
    ``MaxOver``/``MinOver`` whose optimised entries are explicit is the max/min over every
    assignment, and an optimised ``IndexedBase`` read at a single entry is one scalar variable."""

    why: str


@dataclass(frozen=True)
class Lemma:
    """Replace an instance of the fact ``name``'s left side by its right side (``==`` facts), or
    use an inequality fact as the link itself. ``at`` instantiates the fact's free symbols."""

    name: str
    why: str
    at: Mapping[Any, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Agrees:
    """A numeric cross-check of the link, not a proof: ``prev`` and ``next`` (scalar or matrix)
    are evaluated exactly at random rational points of ``symbols`` and compared with ``fn`` (an
    independent float64 function, e.g. ``jax.grad``). Disagreement refutes the link."""

    fn: Callable[..., Any]
    symbols: Sequence[Any]
    why: str
    points: int = 12
    rtol: float = 1e-9


Justification = Algebra | Cases | MaxSum | Monotone | Unfold | Lemma | Agrees
_JUSTIFICATIONS = (Algebra, Cases, MaxSum, Monotone, Unfold, Lemma, Agrees)


@dataclass(frozen=True)
class Link:
    """One link of a chain: ``previous rel expr``, justified ``by``."""

    rel: str
    expr: Any
    by: Justification

    def __post_init__(self) -> None:
        if self.rel not in RELATIONS:
            raise TheoremError(f"a link's relation is one of {', '.join(RELATIONS)}, got {self.rel!r}")
        if not isinstance(self.by, _JUSTIFICATIONS):
            raise TheoremError(f"a link is justified by Algebra, Cases, MaxSum, Monotone, Unfold, Lemma or Agrees, "
                               f"got {self.by!r}")
        object.__setattr__(self, "expr", _sym(self.expr))


def eq(expr: Any, by: Justification) -> Link:
    """A link ``previous == expr``."""
    return Link("==", expr, by)


def le(expr: Any, by: Justification) -> Link:
    """A link ``previous <= expr``."""
    return Link("<=", expr, by)


def ge(expr: Any, by: Justification) -> Link:
    """A link ``previous >= expr``."""
    return Link(">=", expr, by)


@dataclass(frozen=True)
class Fact:
    """A lemma proved inside a derivation: a claim, reached by its own chain, used by name."""

    name: str
    claim: Any
    chain: Sequence[Link]
    why: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "claim", _as_claim(self.claim))
        object.__setattr__(self, "chain", tuple(_as_link(l) for l in self.chain))


def backwards(links: Sequence[Link], start: Any) -> list[Link]:
    """The equalities ``start = e1 = ... = en`` of ``links`` read from ``en`` back to ``start``."""
    exprs = [start] + [l.expr for l in links]
    if any(l.rel != "==" for l in links):
        raise TheoremError("only equalities can be read backwards")
    return [Link("==", exprs[k], l.by) for k, l in reversed(list(enumerate(links)))]


def _as_link(l: Any) -> Link:
    if isinstance(l, Link):
        return l
    if isinstance(l, tuple) and len(l) == 2:
        return Link("==", l[0], l[1])
    raise TheoremError(f"a chain link is eq(expr, by), le(expr, by), ge(expr, by) or (expr, by), got {l!r}")


#: the explicit size a Derivation.for_sizes builder is building (the default ``size`` inside it)
_BUILDING_SIZE: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar("dlverify_size", default=None)


@dataclass(frozen=True)
class Derivation:
    """A claim and a chain of checked links from its left side to its right side (module docs)."""

    claim: Any
    chain: Sequence[Any] = ()
    facts: Sequence[Fact] = ()
    bind: Mapping[Any, Any] = field(default_factory=dict)
    component: str | None = None
    size: Mapping[str, int] | None = None
    entries: tuple[Any, Any, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "claim", _as_claim(self.claim))
        if self.entries is not None:
            k, lo, hi = self.entries
            if not (isinstance(k, sp.Symbol) and k.is_integer):
                raise TheoremError(f"entries=(k, lo, hi) needs an integer Symbol k, got {k!r}")
            object.__setattr__(self, "entries", (k, sp.sympify(lo), sp.sympify(hi)))
        object.__setattr__(self, "chain", tuple(_as_link(l) for l in self.chain))
        object.__setattr__(self, "facts", tuple(self.facts))
        if any(not isinstance(f, Fact) for f in self.facts):
            raise TheoremError("derivation facts must be verify.Fact")
        names = [f.name for f in self.facts]
        if len(set(names)) != len(names):
            raise TheoremError(f"duplicate fact names {names}")
        bind = {(str(k.label) if isinstance(k, sp.IndexedBase) else k.name if isinstance(k, (sp.Symbol, sp.MatrixSymbol))
                 else str(k)): v for k, v in dict(self.bind).items()}
        for k, v in bind.items():
            if not (isinstance(v, str) or callable(v)):
                raise TheoremError(f"bind[{k!r}] must be the name of an instance array or structure field, or a "
                                   "function of the structure (for a size)")
        object.__setattr__(self, "bind", bind)
        size = self.size if self.size is not None else _BUILDING_SIZE.get()
        if size is not None:
            object.__setattr__(self, "size", {str(k): int(v) for k, v in dict(size).items()})
        elif _explicit_shapes(self.claim):
            raise TheoremError(
                "this claim is written at an explicit size (explicit entries or matrices): say which with "
                "size={...}, or build a family with Derivation.for_sizes")

    @staticmethod
    def for_sizes(build: Callable[..., "Derivation"], **values: Iterable[int]) -> "Derivations":
        """One derivation per explicit size: ``build(D=1)``, ``build(D=2)``, ... for
        ``Derivation.for_sizes(build, D=[1, 2, 3])`` (several size names: every combination).
        Each is built when first used (:class:`Derivations`)."""
        names = list(values)
        sizes = [dict(zip(names, combo)) for combo in itertools.product(*[list(v) for v in values.values()])]
        if not sizes:
            raise TheoremError("for_sizes needs at least one size")
        return Derivations(build=lambda size: build(**size), each=sizes, sized=True)


class Derivations:
    """A family of explicit-size derivations of one claim: ``Derivations(members)``, or
    ``Derivations(build=f, each=items)``, whose members ``f(item)`` are built when first used
    (:meth:`Derivation.for_sizes` makes one). Building a derivation at a size can take SymPy
    seconds, and a warm run reads its check back from disk without it: importing a theorem module
    builds only the first member (which names the component)."""

    def __init__(self, members: Iterable[Derivation] | None = None, *,
                 build: Callable[[Any], Derivation] | None = None, each: Iterable[Any] = (), sized: bool = False):
        if (members is None) == (build is None):
            raise TheoremError("Derivations takes its members, or build= and each=")
        self._build, self._sized = build, sized
        self._each = tuple(each) if build is not None else ()
        self._built: dict[int, Derivation] = {}
        if members is not None:
            self._built = dict(enumerate(members))
            self._each = tuple(range(len(self._built)))
            for d in self._built.values():
                if not isinstance(d, Derivation):
                    raise TheoremError(f"Derivations: members must be Derivations, got {type(d).__name__}")
        if not self._each:
            raise TheoremError("a family of derivations needs at least one member")

    def _member(self, k: int) -> Derivation:
        if k not in self._built:
            item = self._each[k]
            token = _BUILDING_SIZE.set(item) if self._sized else None
            try:
                d = self._build(item)
            finally:
                if token is not None:
                    _BUILDING_SIZE.reset(token)
            if not isinstance(d, Derivation):
                what = f"for_sizes: build({item})" if self._sized else f"Derivations: build(each[{k}])"
                raise TheoremError(f"{what} must return a Derivation, got {type(d).__name__}")
            if self._sized and d.size is None:
                d = Derivation(d.claim, d.chain, d.facts, d.bind, d.component, item, d.entries)
            self._built[k] = d
        return self._built[k]

    @property
    def members(self) -> tuple[Derivation, ...]:
        return tuple(self._member(k) for k in range(len(self._each)))

    @property
    def component(self) -> str | None:
        return self._member(0).component

    @property
    def bind(self) -> Mapping[str, str]:
        return self._member(0).bind

    def __repr__(self) -> str:
        return f"Derivations({len(self._each)} members, {len(self._built)} built)"


def _free_indexed(e: Any, bound: frozenset = frozenset()) -> Iterable[sp.Indexed]:
    """The Indexed entries of ``e`` that no enclosing MaxOver/MinOver optimises."""
    if isinstance(e, sp.Indexed):
        if e.base not in bound:
            yield e
        return
    if isinstance(e, _Extremum):
        bound = bound | {v for v in e.variables if isinstance(v, sp.IndexedBase)}
    for arg in getattr(e, "args", ()):
        yield from _free_indexed(arg, bound)


def _explicit_shapes(claim: Claim) -> bool:
    for side in (claim.lhs, claim.rhs):
        if isinstance(side, sp.MatrixBase):
            return True
        if any(any(getattr(i, "is_Integer", False) for i in ix.indices) for ix in _free_indexed(side)):
            return True
        for m in side.atoms(sp.MatrixSymbol):
            if all(getattr(d, "is_Integer", False) for d in m.shape):
                return True
    return False


# =============================================================================== results


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


@dataclass(frozen=True)
class Scope:
    """What a derivation covers: every size (``sizes is None``) or exactly the listed sizes."""

    sizes: tuple[tuple[tuple[str, int], ...], ...] | None = None
    symbols: tuple[str, ...] = ()

    @classmethod
    def every(cls, symbols: Iterable[str] = ()) -> "Scope":
        return cls(None, tuple(sorted(symbols)))

    @classmethod
    def explicit(cls, sizes: Iterable[Mapping[str, int]], symbols: Iterable[str] = ()) -> "Scope":
        """Exactly these sizes; ``symbols`` are sizes that stay symbolic in every one of them."""
        return cls(tuple(sorted({tuple(sorted(s.items())) for s in sizes})), tuple(sorted(symbols)))

    @property
    def all_sizes(self) -> bool:
        return self.sizes is None

    def covers(self, structure: Mapping[str, Any]) -> bool:
        return self.sizes is None or any(all(structure.get(k) == v for k, v in s) for s in self.sizes)

    def __str__(self) -> str:
        if self.sizes is None:
            return "all sizes" if not self.symbols else f"all sizes ({', '.join(self.symbols)})"
        if not self.sizes:
            return "no size"
        names = sorted({k for s in self.sizes for k, _ in s})
        if len(names) == 1:
            vals = ", ".join(str(dict(s)[names[0]]) for s in self.sizes)
            text = f"{names[0]} in {{{vals}}}"
        else:
            text = "sizes " + "; ".join(", ".join(f"{k}={v}" for k, v in s) for s in self.sizes)
        return text + (f", all {', '.join(self.symbols)}" if self.symbols else "")

    def as_dict(self) -> dict[str, Any]:
        return {"all_sizes": self.all_sizes, "symbols": list(self.symbols),
                "sizes": None if self.sizes is None else [dict(s) for s in self.sizes], "text": str(self)}


@dataclass
class ChainResult:
    """One chain (of the claim, or of a fact): the links' results and whether it reached its claim."""

    claim: str
    links: list[StepResult]
    reached: bool
    relation: str | None
    gap: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"claim": self.claim, "reached": self.reached, "relation": self.relation, "gap": self.gap,
                "links": [s.as_dict() for s in self.links]}


@dataclass
class SymbolicResult:
    """The symbolic verdict: ``proved`` (a checked chain reaches the claim; ``scope`` as computed),
    ``cross-checked`` (reached, some link only numerically), ``unconfirmed`` (``gap`` says where it
    stops), ``refuted`` (an exact rational point where the claim fails; ``witness``), ``none``."""

    verdict: str
    scope: Scope = field(default_factory=lambda: Scope.explicit([]))
    chains: list[ChainResult] = field(default_factory=list)
    gap: str = ""
    witness: dict[str, str] | None = None
    seconds: float = 0.0
    component: str | None = None
    claim: str = ""
    per_size: list[tuple[dict[str, int], str]] = field(default_factory=list)

    @property
    def rules(self) -> list[str]:
        return sorted({s.rule for c in self.chains for s in c.links if s.rule})

    @property
    def steps(self) -> list[StepResult]:
        return [s for c in self.chains for s in c.links]

    def as_dict(self) -> dict[str, Any]:
        d = {
            "verdict": self.verdict,
            "claim": self.claim,
            "component": self.component,
            "scope": self.scope.as_dict(),
            "rules_used": {r: RULES[r] for r in self.rules},
            "chains": [c.as_dict() for c in self.chains],
            "seconds": round(self.seconds, 3),
        }
        if self.gap:
            d["gap"] = self.gap
        if self.witness:
            d["witness"] = self.witness
        if self.per_size:
            d["per_size"] = [{"size": s, "verdict": v} for s, v in self.per_size]
        return d


# =============================================================================== checking helpers


def _is_matrix(e: Any) -> bool:
    return isinstance(e, (sp.MatrixBase, sp.MatrixExpr))


def _entries_zero(diff: Any) -> tuple[bool, Any]:
    """(every entry of ``diff`` is 0, the first entry SymPy could not reduce to 0)."""
    if isinstance(diff, sp.MatrixExpr) and not isinstance(diff, sp.MatrixBase):  # symbolic shape
        d = diff.doit()
        return (True, None) if (d == 0 or getattr(d, "is_ZeroMatrix", False)) else (False, d)
    entries = list(diff) if isinstance(diff, sp.MatrixBase) else [diff]
    for d in entries:
        if not _is_zero(d):
            return False, d
    return True, None


#: SymPy may work without end on these (an integral to evaluate, a limit): they are compared by
#: structure and expansion only, never simplified or evaluated at points
_OPAQUE = (sp.Integral, sp.Limit)


def _is_zero(expr: Any) -> bool:
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    if expr.has(*_OPAQUE):
        return sp.expand(expr) == 0
    for attempt in (sp.expand, sp.cancel, sp.simplify):
        try:
            e = attempt(expr)
        except Exception:  # noqa: BLE001 - SymPy cannot handle it: try the next
            continue
        if e == 0:
            return True
    try:
        return bool(sp.simplify(sp.expand(sp.simplify(expr).rewrite(sp.Piecewise))) == 0)
    except Exception:  # noqa: BLE001
        return False


def _nonneg(expr: Any) -> bool:
    if sp.sympify(expr).has(*_OPAQUE):
        return False
    expr = sp.simplify(sp.sympify(expr))
    return expr == 0 or bool(expr.is_nonnegative)


def _matrix_diff(a: Any, b: Any) -> Any:
    if isinstance(a, sp.MatrixExpr) or isinstance(b, sp.MatrixExpr):
        if a.shape != b.shape:
            raise _ShapeMismatch(a.shape, b.shape)
        d = (a - b).doit()
        if d == 0 or getattr(d, "is_ZeroMatrix", False):
            return sp.ZeroMatrix(*a.shape) if not all(getattr(k, "is_Integer", False) for k in a.shape) \
                else sp.zeros(*a.shape)
        try:
            return d.as_explicit()
        except Exception:  # noqa: BLE001 - symbolic shape: stay a matrix expression
            return d
    if a.shape != b.shape:
        raise _ShapeMismatch(a.shape, b.shape)
    return sp.Matrix(a) - sp.Matrix(b)


class _ShapeMismatch(Exception):
    def __init__(self, a: Any, b: Any) -> None:
        super().__init__(f"shapes differ: {a} vs {b}")


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


def _point_atoms(expr: Any) -> list[Any]:
    expr = sp.sympify(expr)
    atoms = set(expr.free_symbols) | set(expr.atoms(sp.Indexed))
    atoms = {a for a in atoms if not (isinstance(a, sp.Symbol) and any(
        isinstance(ix, sp.Indexed) and a == ix.base.label for ix in atoms))}
    return sorted(atoms, key=str)


def _aliased(e: Any, atoms: list[Any]) -> bool:
    """Whether two indexed atoms of ``e`` may name one entry, so that independent random values
    would make a false witness: an index that is a bound variable (a summation dummy, which a
    renaming of dummies turns into another atom), or a symbolic index next to another index of the
    same base (``z[k]`` and ``z[0]`` are one entry when k = 0)."""
    free = e.free_symbols
    indexed = [a for a in atoms if isinstance(a, sp.Indexed)]
    for a in indexed:
        symbols = set().union(*[sp.sympify(i).free_symbols for i in a.indices]) if a.indices else set()
        if symbols - free:
            return True
        if symbols and any(b.base == a.base and b != a for b in indexed):
            return True
    return False


def _probe(diff: Any, relation: str, tries: int = 60, seed: int = 0,
           case: dict[Any, Any] | None = None) -> dict[str, str] | None:
    """A rational point where ``diff relation 0`` fails exactly (``diff = lhs - rhs`` of a claim
    ``lhs relation rhs``), or None. Points respect the symbols' assumptions."""
    rng = random.Random(seed)
    entries = list(diff) if isinstance(diff, sp.MatrixBase) else [sp.sympify(diff)]
    for e in entries:
        if e.has(*_OPAQUE):
            continue
        atoms = _point_atoms(e)
        if _aliased(e, atoms):
            continue  # entries that may be one entry cannot be given independent values: no witness
        atoms += sorted({a for v in (case or {}).values() for a in sp.sympify(v).free_symbols} - set(atoms), key=str)
        for _ in range(tries):
            point = {a: _random_value(a, rng) for a in atoms}
            try:  # every atom at once: a partial substitution makes SymPy compare symbolic Max arguments
                value = e.xreplace(point).doit()
                if not value.is_Number:
                    value = sp.simplify(value)
                value = value if value.is_Rational else value.evalf(50)
            except Exception:  # noqa: BLE001 - an unevaluable point is no witness
                continue
            if not value.is_Number:
                continue
            if value.is_Rational:
                fails = value != 0 if relation == "==" else (value < 0 if relation == ">=" else value > 0)
            else:  # algebraic/transcendental: only far above 50-digit rounding counts
                fails = (abs(value) > 1e-30 if relation == "==" else
                         (value < -1e-30 if relation == ">=" else value > 1e-30))
            if bool(fails):
                shown = {k: v for k, v in point.items() if not str(k).startswith("_d")}
                shown |= {k: sp.sympify(v).subs(point) for k, v in (case or {}).items()}
                return {str(k): str(v) for k, v in shown.items()} | {"lhs - rhs": str(value)}
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
    forbidden = {
        -1: sym.is_nonnegative or sym.is_positive,
        0: sym.is_positive or sym.is_negative or sym.is_nonzero,
        1: sym.is_nonpositive or sym.is_negative,
    }
    return not forbidden[sign]


def weak_orderings(symbols: Sequence[Any]) -> list[dict[Any, Any]]:
    """Substitutions realising every weak ordering of ``{0} and symbols``, ties included.

    Each ordering is an ordered partition into tied blocks, spaced by strictly positive
    increments, so every case decides each comparison between the symbols and 0; together the
    cases cover the reals exactly once. Orderings that contradict a symbol's own assumption (a
    non-negative symbol below 0, say) are skipped."""
    zero = sp.Integer(0)
    cases = []
    for blocks in _ordered_partitions([zero, *symbols]):
        k = next(i for i, b in enumerate(blocks) if zero in b)
        incs = [sp.Symbol(f"_d{i}", positive=True) for i in range(len(blocks))]
        sub, ok = {}, True
        for m, block in enumerate(blocks):
            value = sum(incs[k + 1: m + 1], zero) if m > k else -sum(incs[m + 1: k + 1], zero)
            sign = (m > k) - (m < k)
            for s in block:
                if s is zero:
                    continue
                ok = ok and _feasible(s, sign)
                sub[s] = value
        if ok:
            cases.append(sub)
    return cases


def _holds(lhs: Any, rhs: Any, rel: str) -> bool:
    if _is_matrix(lhs) or _is_matrix(rhs):
        if rel != "==":
            return False
        ok, _ = _entries_zero(_matrix_diff(lhs, rhs))
        return ok
    diff = sp.sympify(lhs) - sp.sympify(rhs)
    if rel == "==":
        return _is_zero(diff)
    return _nonneg(diff) if rel == ">=" else _nonneg(-diff)


# =============================================================================== canonical forms


def canonical(expr: Any) -> Any:
    """``expr`` with the bound variables of every MaxOver/MinOver renamed in order of appearance,
    so two expressions that differ only in the names of bound variables compare equal."""
    counter = itertools.count()

    def walk(e: Any) -> Any:
        if isinstance(e, _Extremum):
            inner = walk(e.function)
            doms = []
            for d in e.domains:
                var = d[0]
                if isinstance(var, sp.Symbol):
                    new = sp.Symbol(f"_bound{next(counter)}", **_assumptions(var))
                    inner = inner.xreplace({var: new})
                    doms.append((new, *d[1:]))
                else:
                    doms.append(tuple(d))
            return type(e)(inner, *doms)
        if not e.args:
            return e
        return e.func(*[walk(a) for a in e.args]) if not isinstance(e, sp.MatrixBase) else e.applyfunc(walk)

    return walk(sp.sympify(expr))


def _assumptions(s: sp.Symbol) -> dict[str, bool]:
    return {k: v for k, v in s.assumptions0.items() if k in ("real", "integer", "positive", "nonnegative",
                                                                "negative", "nonpositive")}


def _same(a: Any, b: Any) -> bool:
    """``a`` and ``b`` are the same expression: structurally (bound names aside), or their
    difference simplifies to 0."""
    if _is_matrix(a) != _is_matrix(b):
        return False
    ca, cb = canonical(a), canonical(b)
    if ca == cb:
        return True
    if _is_matrix(a):
        try:
            return _entries_zero(_matrix_diff(ca, cb))[0]
        except _ShapeMismatch:
            return False
    if ca.has(_Extremum) or cb.has(_Extremum):
        return False  # SymPy does not simplify through MaxOver: only structure counts
    return _is_zero(ca - cb)


# =============================================================================== rules


def _optimised_bases(e: _Extremum) -> set[sp.IndexedBase]:
    return {v for v in e.variables if isinstance(v, sp.IndexedBase)}


def _mentions(expr: Any, names: set[Any]) -> list[str]:
    """Every way ``expr`` mentions one of ``names`` (IndexedBases or Symbols) other than as
    allowed entries already replaced by the caller."""
    out = []
    for s in sp.sympify(expr).atoms(sp.Symbol, sp.IndexedBase, sp.Indexed):
        if isinstance(s, sp.Indexed):
            if s.base in names:
                out.append(str(s))
        elif s in names or any(isinstance(n, sp.IndexedBase) and n.label == s for n in names):
            out.append(str(s))
    return sorted(set(out))


def _block_of(term: Any, bases: set[Any], scalars: set[Any], j: Any) -> tuple[Any, list[str]]:
    """Check that ``term`` reads only block ``j`` of ``bases``: every Indexed occurrence has first
    index exactly ``j``; returns (term with them replaced by placeholders, violations)."""
    bad: list[str] = []
    repl = {}
    for ix in sp.sympify(term).atoms(sp.Indexed):
        if ix.base in bases:
            if len(ix.indices) == 0 or ix.indices[0] != j:
                bad.append(str(ix))
            else:
                repl[ix] = sp.Dummy("entry")
    rest = sp.sympify(term).xreplace(repl)
    # any other mention of an optimised name: a plain Symbol sharing the label, the base itself, or in a bound
    bad += _mentions(rest, bases | scalars)
    return rest, sorted(set(bad))


def _explicit_entries(term: Any, bases: set[Any]) -> set[Any]:
    return {ix for ix in sp.sympify(term).atoms(sp.Indexed) if ix.base in bases}


def _distinct(entries: Iterable[Any]) -> bool:
    """Entries that are certainly different: every pair differs by a nonzero constant in some index."""
    entries = list(entries)
    for a, b in itertools.combinations(entries, 2):
        if a.base != b.base:
            continue
        if len(a.indices) != len(b.indices):
            return False
        if not any((sp.simplify(x - y)).is_number and sp.simplify(x - y) != 0 for x, y in zip(a.indices, b.indices)):
            return False
    return True


def _rewrite_maxsum(e: Any, problems: list[str]) -> Any:
    if isinstance(e, _Extremum):
        inner = e.function
        bases = _optimised_bases(e)
        scalars = {v for v in e.variables if isinstance(v, sp.Symbol)}
        if scalars:
            problems.append(f"{e}: max-sum separates IndexedBase blocks; the scalar variables "
                            f"{', '.join(map(str, scalars))} are shared by every term")
            return e
        if isinstance(inner, sp.Sum) and len(inner.limits) == 1:
            j, lo, hi = inner.limits[0]
            _, bad = _block_of(inner.function, bases, scalars, j)
            if any(d[1:] and any(part.has(j) for part in d[1:]) for d in e.domains):
                bad.append("a domain depends on the summation index")
            if bad:
                problems.append(f"term {j} of {inner} reaches outside its block: {', '.join(bad)}")
                return e
            return sp.Sum(type(e)(inner.function, *[tuple(d) for d in e.domains]), (j, lo, hi))
        if isinstance(inner, sp.Add):
            terms = list(inner.args)
            reads = [_explicit_entries(t, bases) for t in terms]
            for t, r in zip(terms, reads):
                if not all(all(getattr(i, "is_Integer", False) for i in ix.indices) for ix in r):
                    problems.append(f"term {t}: entries with symbolic indices; write the sum as a Sum over j")
                    return e
                extra = _mentions(t.xreplace({ix: sp.Dummy() for ix in r}), bases)
                if extra:
                    problems.append(f"term {t} mentions {', '.join(extra)} outside its entries")
                    return e
            for (ta, ra), (tb, rb) in itertools.combinations(zip(terms, reads), 2):
                if ra & rb:
                    problems.append(f"terms {ta} and {tb} both read {', '.join(sorted(map(str, ra & rb)))}")
                    return e
            return sp.Add(*[type(e)(t, *[tuple(d) for d in e.domains]) if r else t for t, r in zip(terms, reads)])
        problems.append(f"{e}: the maximised expression is not a sum")
        return e
    if not getattr(e, "args", ()):
        return e
    if isinstance(e, sp.MatrixBase):
        return e.applyfunc(lambda a: _rewrite_maxsum(a, problems))
    return e.func(*[_rewrite_maxsum(a, problems) for a in e.args])


def _domain_values(d: sp.Tuple) -> list[Any] | None:
    if len(d) == 2:
        return sorted(d[1], key=sp.default_sort_key)
    lo, hi = d[1], d[2]
    if lo.is_Integer and hi.is_Integer:
        return [sp.Integer(v) for v in range(int(lo), int(hi) + 1)]
    return None


def _unfold(e: Any, problems: list[str]) -> Any:
    if isinstance(e, sp.Sum):
        inner = _unfold(e.function, problems)
        (j, lo, hi), *rest = e.limits
        if rest or not (sp.sympify(lo).is_Integer and sp.sympify(hi).is_Integer):
            return sp.Sum(inner, *e.limits)
        return sp.Add(*[inner.xreplace({j: sp.Integer(v)}) for v in range(int(lo), int(hi) + 1)])
    if isinstance(e, _Extremum):
        inner = _unfold(e.function, problems)
        assignments: list[dict[Any, Any]] = [{}]
        domains = list(e.domains)
        # an optimised IndexedBase read at one entry only is one scalar variable
        for k, d in enumerate(domains):
            var = d[0]
            if isinstance(var, sp.IndexedBase):
                slots = _explicit_entries(inner, {var})
                leftover = _mentions(inner.xreplace({s: sp.Dummy() for s in slots}), {var})
                if len(slots) == 1 and not leftover:
                    (slot,) = slots
                    scalar = sp.Symbol(f"_{var.label}_entry", integer=all(getattr(v, "is_integer", False)
                                                                          for v in (d[1] if len(d) == 2 else d[1:])))
                    inner = inner.xreplace({slot: scalar})
                    domains[k] = sp.Tuple(scalar, *d[1:])
        symbolic = [d for d in domains if _domain_values(d) is None]
        if symbolic:
            if any(isinstance(d[0], sp.IndexedBase) for d in symbolic):
                problems.append(f"cannot unfold {e}: an IndexedBase over a symbolic range")
                return type(e)(inner, *[tuple(x) for x in domains])
            explicit = [d for d in domains if _domain_values(d) is not None]
            if explicit:  # max over (explicit, symbolic) = max over symbolic of the max over the explicit ones
                inner = _unfold(type(e)(inner, *[tuple(x) for x in explicit]), problems)
            return type(e)(inner, *[tuple(x) for x in symbolic])
        for d in domains:
            values = _domain_values(d)
            var = d[0]
            if isinstance(var, sp.Symbol):
                slots = [var]
            else:
                slots = sorted(_explicit_entries(inner, {var}), key=sp.default_sort_key)
                if not _distinct(slots):
                    problems.append(f"entries {', '.join(map(str, slots))} of {var} may coincide: cannot enumerate")
                    return type(e)(inner, *[tuple(x) for x in e.domains])
                leftover = _mentions(inner.xreplace({s: sp.Dummy() for s in slots}), {var})
                if leftover:
                    problems.append(f"{var} occurs as {', '.join(leftover)}: cannot enumerate")
                    return type(e)(inner, *[tuple(x) for x in e.domains])
            assignments = [a | dict(zip(slots, combo)) for a in assignments
                           for combo in itertools.product(values, repeat=len(slots))]
        if len(assignments) > 4096:
            problems.append(f"{e}: {len(assignments)} assignments are too many to unfold")
            return type(e)(inner, *[tuple(x) for x in e.domains])
        terms = [inner.xreplace(a) for a in assignments]
        return _EXTREMA[type(e)](*terms, evaluate=False) if len(terms) > 1 else terms[0]
    if not getattr(e, "args", ()):
        return e
    if isinstance(e, sp.MatrixBase):
        return e.applyfunc(lambda a: _unfold(a, problems))
    return e.func(*[_unfold(a, problems) for a in e.args])


def unfold(expr: Any) -> Any:
    """``expr`` with every finite Sum, MaxOver and MinOver written out (ValueError if one cannot be)."""
    problems: list[str] = []
    out = _unfold(sp.sympify(expr) if not isinstance(expr, sp.MatrixBase) else expr, problems)
    if problems:
        raise ValueError("; ".join(problems))
    return out


def _monotone_premise(step: Monotone) -> StepResult:
    x = sp.Dummy("x", real=True)
    d = sp.Symbol("_dmono", positive=True)
    f = sp.sympify(step.f(x))
    if step.direction == "by sign":
        c = sp.sympify(step.f(sp.Integer(1)))
        if _is_zero(f - c * x) and not c.has(x):
            return StepResult("monotone", step.why, "confirmed", f"f(w) = ({c}) w is linear")
        return StepResult("monotone", step.why, "unconfirmed", "f is not of the form c * w")
    up = f.subs(x, x + d)
    lhs, rhs = (up, f) if step.direction == "increasing" else (f, up)
    return _check_cases(lhs, rhs, [x], ">=", "monotone", step.why)


def _rewrite_monotone(e: Any, step: Monotone, problems: list[str], hit: list[int]) -> Any:
    w = sp.Wild("w")
    pattern = sp.sympify(step.f(w))
    to = MaxOver if step.direction == "increasing" else MinOver
    if isinstance(e, MaxOver):
        m = e.function.match(pattern)
        bound = set(e.variables)
        if m and w in m and not ((pattern.free_symbols - {w}) & _bound_names(bound)):
            hit.append(1)
            doms = [tuple(d) for d in e.domains]
            if step.direction == "by sign":
                c = sp.sympify(step.f(sp.Integer(1)))
                return sp.Piecewise((c * MaxOver(m[w], *doms), c >= 0), (c * MinOver(m[w], *doms), True))
            return step.f(to(m[w], *doms))
    if isinstance(e, sp.Max):
        ms = [a.match(pattern) for a in e.args]
        if all(m and w in m for m in ms):
            hit.append(1)
            inner = [m[w] for m in ms]
            return step.f(sp.Max(*inner) if step.direction == "increasing" else sp.Min(*inner))
    if not getattr(e, "args", ()):
        return e
    if isinstance(e, sp.MatrixBase):
        return e.applyfunc(lambda a: _rewrite_monotone(a, step, problems, hit))
    return e.func(*[_rewrite_monotone(a, step, problems, hit) for a in e.args])


def _bound_names(bound: set[Any]) -> set[Any]:
    return bound | {b.label for b in bound if isinstance(b, sp.IndexedBase)}


def _unsound_instantiation(at: Mapping[Any, Any]) -> str:
    """A fact proved for a symbol with assumptions (nonnegative, ...) holds only for values that
    have them: say which replacement SymPy cannot show has them."""
    for sym, value in dict(at).items():
        sym, value = sp.sympify(sym), sp.sympify(value)
        for prop in ("positive", "nonnegative", "negative", "nonpositive", "real", "integer"):
            if getattr(sym, f"is_{prop}", None) and not getattr(value, f"is_{prop}", None):
                return f"{sym} is {prop} in the fact, but SymPy cannot show that {value} is"
    return ""


def _instantiate(fact: Claim, at: Mapping[Any, Any]) -> tuple[Any, Any]:
    at = {sp.sympify(k): sp.sympify(v) for k, v in dict(at).items()}
    return fact.lhs.xreplace(at), fact.rhs.xreplace(at)


# =============================================================================== checking


def _check_cases(lhs: Any, rhs: Any, over: Sequence[Any], relation: str, kind: str, why: str) -> StepResult:
    cases = weak_orderings(over)
    for n, sub in enumerate(cases):
        l_case, r_case = sp.sympify(lhs).xreplace(sub), sp.sympify(rhs).xreplace(sub)
        if _holds(l_case, r_case, relation):
            continue
        order = " <= ".join(str(s) for s in sorted(sub, key=lambda s: sp.sympify(sub[s]).count_ops()))
        witness = _probe(sp.sympify(l_case) - sp.sympify(r_case), relation, seed=n, case=sub)
        if witness:
            return StepResult(kind, why, "refuted", f"fails in case {n + 1}/{len(cases)}", len(cases), witness=witness)
        return StepResult(kind, why, "unconfirmed", f"case {n + 1}/{len(cases)} not confirmed ({order})", len(cases))
    return StepResult(kind, why, "confirmed", f"{len(cases)} cases", len(cases))


def _check_link(prev: Any, link: Link, facts: Mapping[str, tuple[Claim, bool]]) -> StepResult:
    by, nxt, rel = link.by, link.expr, link.rel
    kind = type(by).__name__.lower()
    # the link's claim is prev rel nxt; as "diff rel' 0" for probing: prev - nxt rel 0
    try:
        if isinstance(by, Algebra):
            if _is_matrix(prev) or _is_matrix(nxt):
                if rel != "==":
                    return StepResult(kind, by.why, "unconfirmed", "inequalities between matrices are not supported")
                try:
                    diff = _matrix_diff(prev, nxt)
                except _ShapeMismatch as exc:
                    return StepResult(kind, by.why, "refuted", str(exc))
                ok, bad = _entries_zero(diff)
                if ok:
                    return StepResult(kind, by.why, "confirmed", "every entry simplifies to 0")
                witness = _probe(sp.Matrix([bad]), "==")
                if witness:
                    return StepResult(kind, by.why, "refuted", "an entry is false at a rational point", witness=witness)
                return StepResult(kind, by.why, "unconfirmed", f"SymPy could not reduce the entry {bad} to 0")
            if prev.has(_Extremum) or nxt.has(_Extremum):
                if rel == "==" and _same(prev, nxt):
                    return StepResult(kind, by.why, "confirmed", "the same expression")
                return StepResult(kind, by.why, "unconfirmed",
                                  "Algebra does not reason about MaxOver/MinOver: use MaxSum, Monotone or Unfold")
            if _holds(prev, nxt, rel):
                return StepResult(kind, by.why, "confirmed")
            witness = _probe(sp.sympify(prev) - sp.sympify(nxt), rel)
            if witness:
                return StepResult(kind, by.why, "refuted", "false at a rational point", witness=witness)
            return StepResult(kind, by.why, "unconfirmed", "SymPy could not confirm it")

        if isinstance(by, Cases):
            if _is_matrix(prev) or _is_matrix(nxt):
                return StepResult(kind, by.why, "unconfirmed", "Cases splits scalar relations; split the entries")
            return _check_cases(prev, nxt, by.over, rel, kind, by.why)

        if isinstance(by, MaxSum):
            problems: list[str] = []
            rule = "max-sum separability"
            candidate = _rewrite_maxsum(prev, problems)
            if not problems and rel == "==" and _same(candidate, nxt):
                return StepResult(kind, by.why, "confirmed", "each term reads only its own block", rule=rule)
            back: list[str] = []
            if rel == "==" and _same(_rewrite_maxsum(nxt, back), prev) and not back:  # the rule read right to left
                return StepResult(kind, by.why, "confirmed", "each term reads only its own block (right to left)",
                                  rule=rule)
            if problems:
                return StepResult(kind, by.why, "unconfirmed", "premise fails: " + "; ".join(problems), rule=rule)
            return StepResult(kind, by.why, "unconfirmed", f"the rule gives {candidate}, not {nxt}", rule=rule)

        if isinstance(by, Monotone):
            rule = "monotone max"
            premise = _monotone_premise(by)
            if premise.status != "confirmed":
                return StepResult(kind, by.why, "unconfirmed", f"premise: f is not shown {by.direction} "
                                  f"({premise.detail})", rule=rule, witness=premise.witness)
            hit: list[int] = []
            candidate = _rewrite_monotone(prev, by, [], hit)
            if hit and rel == "==" and _same(candidate, nxt):
                return StepResult(kind, by.why, "confirmed", f"f is {by.direction} ({premise.detail})", rule=rule)
            back_hit: list[int] = []
            if rel == "==" and _same(_rewrite_monotone(nxt, by, [], back_hit), prev) and back_hit:
                return StepResult(kind, by.why, "confirmed", f"f is {by.direction} ({premise.detail}; right to left)",
                                  rule=rule)
            if not hit:
                return StepResult(kind, by.why, "unconfirmed", "no max of f(...) to move f out of", rule=rule)
            return StepResult(kind, by.why, "unconfirmed", f"the rule gives {candidate}, not {nxt}", rule=rule)

        if isinstance(by, Unfold):
            if rel != "==":
                return StepResult(kind, by.why, "unconfirmed", "unfolding a definition is an equality")
            problems = []
            candidate = _unfold(prev, problems)
            back: list[str] = []
            unfolded_next = _unfold(nxt, back)
            for here, there, trouble in ((candidate, nxt, problems), (unfolded_next, prev, back),
                                         (candidate, unfolded_next, problems + back)):
                if trouble:
                    continue
                if _same(here, there):
                    return StepResult(kind, by.why, "confirmed", "by the definitions")
                if not (_is_matrix(here) or here.has(_Extremum) or there.has(_Extremum)) and _holds(here, there, "=="):
                    return StepResult(kind, by.why, "confirmed", "by the definitions, then simplification")
            if problems:
                return StepResult(kind, by.why, "unconfirmed", "; ".join(problems))
            return StepResult(kind, by.why, "unconfirmed", f"unfolding gives {candidate}, not {nxt}")

        if isinstance(by, Lemma):
            if by.name not in facts:
                return StepResult(kind, by.why, "unconfirmed", f"no fact {by.name!r} in this derivation")
            fact, proved = facts[by.name]
            if not proved:
                return StepResult(kind, by.why, "unconfirmed", f"the fact {by.name!r} is not proved")
            unsound = _unsound_instantiation(by.at)
            if unsound:
                return StepResult(kind, by.why, "unconfirmed", unsound)
            fl, fr = _instantiate(fact, by.at)
            if fact.rel == "==":
                candidate = prev.xreplace({fl: fr})
                if rel == "==" and _same(candidate, nxt):
                    return StepResult(kind, by.why, "confirmed", f"substituting {by.name}")
                return StepResult(kind, by.why, "unconfirmed", f"substituting {by.name} gives {candidate}, not {nxt}")
            if _same(prev, fl) and _same(nxt, fr) and fact.rel == rel:
                return StepResult(kind, by.why, "confirmed", f"the fact {by.name}")
            return StepResult(kind, by.why, "unconfirmed", f"the link is not an instance of {by.name}")

        if isinstance(by, Agrees):
            return _check_agrees(prev, nxt, by)
    except Exception as exc:  # noqa: BLE001 - SymPy can raise on what it cannot handle: unconfirmed, never proved
        return StepResult(kind, getattr(by, "why", ""), "unconfirmed", f"SymPy raised {type(exc).__name__}: {exc}"[:300])
    raise TypeError(f"unknown justification {by!r}")


@in_float64
def _check_agrees(prev: Any, nxt: Any, step: Agrees) -> StepResult:
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
        numeric = np.asarray(step.fn(*args), dtype=float)
        for side in (prev, nxt):
            exact = sp.sympify(side).subs(point).doit()
            exact = np.array(sp.Matrix(exact).evalf(30).tolist() if hasattr(exact, "shape") else exact.evalf(30),
                             dtype=float)
            exact = exact.reshape(numeric.shape) if exact.size == numeric.size else np.broadcast_to(exact, numeric.shape)
            if not np.allclose(exact, numeric, rtol=step.rtol, atol=step.rtol):
                witness = {str(s): str(v.tolist() if hasattr(v, "tolist") else v) for s, v in point.items()}
                witness |= {"sympy": str(exact.tolist()), "numeric": str(numeric.tolist())}
                return StepResult("agrees", step.why, "refuted",
                                  f"SymPy and the numeric function disagree at point {k + 1}", witness=witness)
    return StepResult("agrees", step.why, "cross-checked", f"agree at {step.points} rational points (not a proof)")


def _compose(a: str | None, b: str) -> str | None:
    if a is None or a == "==":
        return b
    if b == "==" or b == a:
        return a
    return None  # <= then >=: no conclusion


def _implies(chain_rel: str | None, claim_rel: str) -> bool:
    return chain_rel is not None and (chain_rel == claim_rel or (chain_rel == "==" and claim_rel in ("<=", ">=")))


def _check_chain(claim: Claim, chain: Sequence[Link], facts: Mapping[str, tuple[Claim, bool]]) -> ChainResult:
    results, rel, prev = [], None, claim.lhs
    for link in chain:
        results.append(_check_link(prev, link, facts))
        rel = _compose(rel, link.rel)
        prev = link.expr
    text = str(claim)
    if not chain:
        return ChainResult(text, results, False, None, "the derivation has no chain")
    gap = ""
    statuses = [r.status for r in results]
    if "refuted" in statuses:
        i = statuses.index("refuted")
        gap = f"link {i + 1} is false: {results[i].detail}"
    elif "unconfirmed" in statuses:
        i = statuses.index("unconfirmed")
        gap = f"link {i + 1} ({results[i].why}) is not confirmed: {results[i].detail}"
    elif not _same(prev, claim.rhs):
        gap = f"the chain ends at {prev}; the claim's right side is {claim.rhs}"
    elif not _implies(rel, claim.rel):
        gap = f"the links compose to {rel or 'no relation (<= and >= mixed)'}, the claim is {claim.rel}"
    return ChainResult(text, results, not gap, rel, gap)


def size_symbols(claim: Claim, entries: tuple[Any, Any, Any] | None = None) -> set[sp.Symbol]:
    """The claim's free integer symbols: its symbolic sizes (the ``entries`` index is bound; the
    symbols of its bounds are sizes)."""
    out = set()
    if entries is not None:
        for bound in entries[1:]:
            out |= {s for s in sp.sympify(bound).free_symbols if isinstance(s, sp.Symbol) and s.is_integer}
    for side in (claim.lhs, claim.rhs):
        for s in sp.sympify(side).free_symbols if not isinstance(side, sp.MatrixBase) else side.free_symbols:
            if isinstance(s, sp.Symbol) and s.is_integer:
                out.add(s)
        if isinstance(side, sp.MatrixExpr):
            for m in side.atoms(sp.MatrixSymbol):
                out |= {d for d in m.shape if isinstance(d, sp.Symbol)}
    if entries is not None:
        out.discard(entries[0])
    return out


def refute(claim: Claim, sizes: Iterable[Mapping[sp.Symbol, int]] = ({},),
           entries: tuple[Any, Any, Any] | None = None, tries: int = 60) -> dict[str, str] | None:
    """An exact rational point where the claim fails (at one of the explicit ``sizes`` for a claim
    over symbolic sizes; at every entry ``k`` of ``entries``), or None."""
    for size in sizes:
        sub = {k: sp.Integer(v) for k, v in dict(size).items()}
        ks: list[dict[Any, Any]] = [{}]
        if entries is not None:
            lo, hi = sp.sympify(entries[1]).xreplace(sub), sp.sympify(entries[2]).xreplace(sub)
            if not (lo.is_Integer and hi.is_Integer):
                continue
            ks = [{entries[0]: sp.Integer(v)} for v in range(int(lo), int(hi) + 1)]
        for k in ks:
            w = _refute_at(claim, sub | k, tries)
            if w:
                return {**{str(a): str(b) for a, b in (sub | k).items()}, **w}
    return None


def _refute_at(claim: Claim, size: Mapping[Any, Any], tries: int) -> dict[str, str] | None:
    for size in (size,):
        problems: list[str] = []
        try:
            lhs, rhs = claim.lhs.xreplace(dict(size)), claim.rhs.xreplace(dict(size))
            lhs, rhs = _unfold(lhs, problems), _unfold(rhs, problems)
        except TheoremError:  # the size symbol is also a bound variable: no explicit instance here
            continue
        if problems:
            continue
        try:
            diff = _matrix_diff(lhs, rhs) if (_is_matrix(lhs) or _is_matrix(rhs)) else sp.sympify(lhs) - sp.sympify(rhs)
        except _ShapeMismatch:
            continue
        return _probe(diff, claim.rel, tries=tries)
    return None


def _small_sizes(symbols: set[sp.Symbol]) -> list[dict[sp.Symbol, int]]:
    symbols = sorted(symbols, key=str)
    ranges = [range(1, 4) for _ in symbols]
    return [dict(zip(symbols, combo)) for combo in itertools.product(*ranges)] if symbols else [{}]


def _check_one(d: Derivation) -> SymbolicResult:
    facts: dict[str, tuple[Claim, bool]] = {}
    chains = []
    for f in d.facts:
        c = _check_chain(f.claim, f.chain, facts)
        c.claim = f"{f.name}: {c.claim}"
        chains.append(c)
        facts[f.name] = (f.claim, c.reached)
    main = _check_chain(d.claim, d.chain, facts)
    chains.insert(0, main)
    sizes = size_symbols(d.claim, d.entries)
    if d.size is not None:
        scope = Scope.explicit([d.size], [s.name for s in sizes if s.name not in d.size])
    else:
        scope = Scope.every(s.name for s in sizes)
    statuses = {s.status for c in chains for s in c.links}
    claim_text = str(d.claim)
    if main.reached and all(c.reached for c in chains):
        verdict = "cross-checked" if "cross-checked" in statuses else "proved"
        return SymbolicResult(verdict, scope, chains, component=d.component, claim=claim_text)
    witness = refute(d.claim, _small_sizes(sizes), d.entries)
    if witness:
        return SymbolicResult("refuted", Scope.explicit([]), chains, main.gap or "", witness, component=d.component,
                              claim=claim_text)
    gap = main.gap or next(c.gap for c in chains if not c.reached)
    return SymbolicResult("unconfirmed", Scope.explicit([]), chains, gap, component=d.component, claim=claim_text)


@in_float64
def check_derivation(derivation: Derivation | Derivations | None) -> SymbolicResult:
    """Check every link and fact; compute the verdict and the scope (see :class:`SymbolicResult`)."""
    if derivation is None:
        return SymbolicResult("none")
    t0 = time.perf_counter()
    if isinstance(derivation, Derivation):
        res = _check_one(derivation)
        res.seconds = time.perf_counter() - t0
        return res
    results = [(m.size or {}, _check_one(m)) for m in derivation.members]
    proved = [s for s, r in results if r.verdict == "proved"]
    refuted = [(s, r) for s, r in results if r.verdict == "refuted"]
    chains = [c for _, r in results for c in r.chains]
    per_size = [(s, r.verdict) for s, r in results]
    comp = derivation.component
    claim = str(derivation.members[0].claim)
    if refuted:
        s, r = refuted[0]
        out = SymbolicResult("refuted", Scope.explicit([]), chains, r.gap, r.witness, component=comp, claim=claim)
    elif proved:
        gaps = [f"at {s}: {r.gap}" for s, r in results if r.verdict not in ("proved", "cross-checked")]
        # sizes left symbolic in every proved member stay symbolic in the family's scope
        symbolic = set.intersection(*[set(r.scope.symbols) for _, r in results if r.verdict == "proved"])
        out = SymbolicResult("proved", Scope.explicit(proved, symbolic), chains, "; ".join(gaps), component=comp,
                             claim=claim)
    elif any(r.verdict == "cross-checked" for _, r in results):
        out = SymbolicResult("cross-checked", Scope.explicit([s for s, r in results if r.verdict == "cross-checked"]),
                             chains, component=comp, claim=claim)
    else:
        out = SymbolicResult("unconfirmed", Scope.explicit([]), chains, results[0][1].gap, component=comp, claim=claim)
    out.per_size = per_size
    out.seconds = time.perf_counter() - t0
    return out
