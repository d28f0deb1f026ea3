"""Decide a claim exactly, for every real value, at one explicit size, with the SMT solver z3.

A claim is an explicit SymPy relation (or a Boolean combination of relations) over real
symbols and indexed atoms with integer indices (``z[0]``), built from ``+``, ``-``, ``*``,
rational constants, non-negative integer powers, ``Max``, ``Min``, ``Abs``, ``sign``,
``Heaviside`` and ``Piecewise``. :func:`decide` translates the *negated* claim together with the
premises and asks z3 (non-linear real arithmetic allowed) within its limits:

* unsat: the claim is ``valid`` for every real value of its atoms that meets the premises;
* sat: a ``counterexample``, as exact rationals for every atom, re-checked here by exact SymPy
  substitution (claim False, every premise True) before it is reported; a model that does not
  re-check is reported ``unknown`` (fail closed);
* otherwise ``unknown`` or ``timeout``, as the solver says.

Anything the translation does not know (a Float constant, ``exp``, a symbolic index, a negative
power, ...) is ``unsupported``, naming it: the translation never guesses.

Conventions translated: ``sign(0) = 0``; ``Heaviside(x, h0)`` is 0 for x < 0, 1 for x > 0 and
``h0`` at 0, where ``h0`` is the expression's second argument (SymPy stores its default 1/2
there, so plain ``Heaviside(x)`` is 1/2 at 0, as in SymPy; the engine's ``xp.heaviside`` is 0 at 0,
which is ``Heaviside(x, 0)``); a ``Piecewise`` takes its first
branch whose condition holds and must end in an unconditional (``True``) branch.

Symbol assumptions become premises: ``positive``, ``nonnegative``, ``negative``,
``nonpositive``, ``nonzero``, ``zero`` and ``integer`` (as SymPy derives them for the atom, so
``positive`` also gives ``nonzero``). Every atom is a real variable; an atom SymPy knows to be
non-real is ``unsupported``.

A ``valid`` answer whose premises are themselves unsatisfiable says so in ``reason``
("vacuous: ..."). The solver gets two encodings of the claim in turn (see ``_ENCODINGS``).

Two limits bound a call. ``rlimit``, when given, is a number of z3's resource units (its
``rlimit``: a count of the solver's own steps), split equally between the encodings: what it
decides within them is the same on every machine and under any load, so a result kept or
compared across runs does not depend on how busy the machine was. Each call has a z3 context of
its own, so it does not depend either on what was decided before in the process (in the shared
default context the units a claim took differed a little after other decisions).
``timeout_s`` is wall-clock and covers the whole call, each encoding getting an equal share of
the time still left; with an ``rlimit`` it is only a safety net. z3 does not always stop exactly
at its limit: a timed-out call may run somewhat past ``timeout_s``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

import sympy as sp

try:
    import z3
except ImportError:  # the optional extra is not installed: decide() answers "skipped"
    z3 = None

MISSING_Z3 = "z3-solver is not installed: pip install 'dlverify[exact]'"

#: digits of the rational point taken for an algebraic (irrational) model value before re-checking
_ALGEBRAIC_DIGITS = 30


@dataclass(frozen=True)
class Decision:
    """What the solver established for one claim at one size.

    ``status`` is ``"valid"``, ``"counterexample"``, ``"unknown"``, ``"timeout"``,
    ``"unsupported"`` or ``"skipped"``; ``model`` (atom name -> exact value) is set only for a
    counterexample, and has been re-checked by exact substitution. ``units``: z3's resource units
    the call spent (its ``rlimit`` count: the same on every machine for the same claim and solver).
    """

    status: str
    seconds: float
    solver: str
    model: dict[str, sp.Rational] | None
    reason: str = ""
    units: int = 0


class Unsupported(Exception):
    """The claim uses something the translation to z3 does not cover (the message names it)."""


def solver_version() -> str:
    return f"z3 {z3.get_version_string()}" if z3 is not None else ""


def _atom_name(atom: sp.Expr) -> str:
    return str(atom)


class _Translator:
    """SymPy -> z3, memoised per sub-expression; one z3 ``Real`` per atom.

    ``Max``, ``Min``, ``Abs``, ``sign`` and ``Heaviside`` become fresh variables with defining
    constraints in ``defs`` (``m >= a_i`` for all i and ``m = a_i`` for some i, for a Max). Each
    definition pins the fresh variable to one value for every value of the atoms, so adding all
    of them as top-level constraints changes no answer and no model's atoms; z3 solves this form
    much faster than nested ``If`` chains (P1 at D = 7: 0.12 s against 1.9 s here, and the
    overlapping signed layer at K = 3, P = 2 in ~4 s where the ``If`` form timed out at 20 s).
    With ``spread``, a relation with a Max or Min side is first rewritten over the arguments
    (:meth:`_spread`); :func:`decide` tries both forms (see ``_ENCODINGS``).
    """

    def __init__(self, spread: bool = True, ctx: Any = None) -> None:
        self.spread = spread
        #: the z3 context every term is made in (:func:`decide` gives each call its own)
        self.ctx = ctx if ctx is not None else z3.main_ctx()
        self.atoms: dict[sp.Expr, Any] = {}
        self.by_name: dict[str, sp.Expr] = {}
        self._memo: dict[sp.Basic, Any] = {}
        #: definitions of the fresh variables that stand for Max, Min, Abs, sign and Heaviside terms
        self.defs: list[Any] = []

    def fresh(self, what: str) -> Any:
        return z3.FreshReal(what, ctx=self.ctx)

    def cases(self, what: str, cases: list[tuple[Any, Any]]) -> Any:
        """A fresh variable equal to the value of the case whose (exhaustive, exclusive) condition holds."""
        m = self.fresh(what)
        self.defs.append(z3.Or(*[z3.And(cond, m == value) for cond, value in cases], self.ctx))
        return m

    # ------------------------------------------------------------------ atoms

    def atom(self, e: sp.Expr) -> Any:
        if e in self.atoms:
            return self.atoms[e]
        if isinstance(e, sp.Indexed):
            for i in e.indices:
                if not (isinstance(i, sp.Integer)):
                    raise Unsupported(f"indexed atom {e} has a non-integer index {i} (use explicit integer indices)")
        if e.is_real is False:
            raise Unsupported(f"atom {e} is declared non-real")
        name = _atom_name(e)
        if name in self.by_name:
            raise Unsupported(f"two different atoms are both named {name!r} (different assumptions?)")
        var = z3.Real(name, self.ctx)
        self.atoms[e] = var
        self.by_name[name] = e
        return var

    # ------------------------------------------------------------------ terms

    def term(self, e: sp.Basic) -> Any:
        if e in self._memo:
            return self._memo[e]
        out = self._term(e)
        self._memo[e] = out
        return out

    def _term(self, e: sp.Basic) -> Any:
        if isinstance(e, sp.Rational):  # Integer, Rational, and the singletons 0, 1, -1, 1/2
            return z3.RealVal(f"{e.p}/{e.q}", self.ctx)
        if isinstance(e, sp.Float):
            raise Unsupported(f"Float constant {e} (write it as a Rational)")
        if isinstance(e, (sp.Symbol, sp.Indexed)):
            return self.atom(e)
        if isinstance(e, sp.Add):
            return z3.Sum([self.term(a) for a in e.args])
        if isinstance(e, sp.Mul):
            return z3.Product([self.term(a) for a in e.args])
        if isinstance(e, sp.Pow):
            base, n = e.args
            if isinstance(n, sp.Integer) and n >= 0:
                b = self.term(base)
                return z3.Product([b] * int(n)) if n > 0 else z3.RealVal(1, self.ctx)
            raise Unsupported(f"power with exponent {n} in {e} (only non-negative integer powers)")
        if isinstance(e, (sp.Max, sp.Min)):
            args = [self.term(a) for a in e.args]
            m = self.fresh(type(e).__name__.lower())
            above = isinstance(e, sp.Max)
            self.defs.extend(m >= a if above else m <= a for a in args)
            self.defs.append(z3.Or(*[m == a for a in args], self.ctx))
            return m
        if isinstance(e, sp.Abs):
            a = self.term(e.args[0])
            return self.cases("abs", [(a >= 0, a), (a < 0, -a)])
        if isinstance(e, sp.sign):
            a = self.term(e.args[0])
            one, zero = z3.RealVal(1, self.ctx), z3.RealVal(0, self.ctx)
            return self.cases("sign", [(a > 0, one), (a < 0, -one), (a == 0, zero)])
        if isinstance(e, sp.Heaviside):
            a = self.term(e.args[0])
            h0 = e.args[1] if len(e.args) > 1 else sp.Rational(1, 2)
            if not isinstance(h0, sp.Rational):
                raise Unsupported(f"Heaviside with a non-rational value at 0: {e}")
            one, zero = z3.RealVal(1, self.ctx), z3.RealVal(0, self.ctx)
            return self.cases("heaviside", [(a > 0, one), (a < 0, zero), (a == 0, self.term(h0))])
        if isinstance(e, sp.Piecewise):
            pieces = list(e.args)
            if pieces[-1].cond is not sp.true:
                raise Unsupported(f"Piecewise without an unconditional last branch: {e}")
            out = self.term(pieces[-1].expr)
            for piece in reversed(pieces[:-1]):
                out = z3.If(self.boolean(piece.cond), self.term(piece.expr), out)
            return out
        if _is_bool(e):
            raise Unsupported(f"a Boolean {e} where a number is expected")
        raise Unsupported(f"operator {type(e).__name__} (in {_short(e)})")

    # ------------------------------------------------------------------ Booleans

    def boolean(self, e: sp.Basic) -> Any:
        if e in self._memo:
            return self._memo[e]
        out = self._boolean(e)
        self._memo[e] = out
        return out

    def _boolean(self, e: sp.Basic) -> Any:
        if e is sp.true:
            return z3.BoolVal(True, self.ctx)
        if e is sp.false:
            return z3.BoolVal(False, self.ctx)
        if isinstance(e, sp.core.relational.Relational):
            if _is_bool(e.lhs) or _is_bool(e.rhs):
                raise Unsupported(f"relation between Booleans: {_short(e)}")
            spread = self._spread(e) if self.spread else None
            if spread is not None:
                return spread
            lhs, rhs = self.term(e.lhs), self.term(e.rhs)
            ops = {sp.Eq: lambda a, b: a == b, sp.Ne: lambda a, b: a != b, sp.Lt: lambda a, b: a < b,
                   sp.Le: lambda a, b: a <= b, sp.Gt: lambda a, b: a > b, sp.Ge: lambda a, b: a >= b}
            for cls, op in ops.items():
                if isinstance(e, cls):
                    return op(lhs, rhs)
            raise Unsupported(f"relation {type(e).__name__}")
        if isinstance(e, sp.And):
            return z3.And(*[self.boolean(a) for a in e.args], self.ctx)
        if isinstance(e, sp.Or):
            return z3.Or(*[self.boolean(a) for a in e.args], self.ctx)
        if isinstance(e, sp.Not):
            return z3.Not(self.boolean(e.args[0]))
        if isinstance(e, sp.Implies):
            return z3.Implies(self.boolean(e.args[0]), self.boolean(e.args[1]))
        raise Unsupported(f"logical operator {type(e).__name__} (in {_short(e)})")

    def _spread(self, e: sp.core.relational.Relational) -> Any:
        """A relation with a Max or Min on one side, as the equivalent formula over its arguments:
        ``Max(A) <= r`` iff every ``a <= r``, ``Max(A) >= r`` iff some ``a >= r`` (strict alike, Min
        mirrored, ``=`` as both): exact equivalences, used when ``self.spread``. None if neither
        side is a Max or Min."""
        lhs, rhs, rel = e.lhs, e.rhs, type(e)
        if not isinstance(lhs, (sp.Max, sp.Min)):
            if not isinstance(rhs, (sp.Max, sp.Min)):
                return None
            lhs, rhs = rhs, lhs
            rel = {sp.Lt: sp.Gt, sp.Gt: sp.Lt, sp.Le: sp.Ge, sp.Ge: sp.Le}.get(rel, rel)
        if rel in (sp.Eq, sp.Ne):
            both = z3.And(self._spread(sp.Le(lhs, rhs, evaluate=False)), self._spread(sp.Ge(lhs, rhs, evaluate=False)))
            return both if rel is sp.Eq else z3.Not(both)
        r = self.term(rhs)
        args = [self.term(a) for a in lhs.args]
        cmp = {sp.Lt: lambda a: a < r, sp.Le: lambda a: a <= r, sp.Gt: lambda a: a > r, sp.Ge: lambda a: a >= r}[rel]
        below = rel in (sp.Lt, sp.Le)  # Max(A) below r: all of A below; Max(A) above r: some of A above
        every = below if isinstance(lhs, sp.Max) else not below
        return z3.And(*[cmp(a) for a in args], self.ctx) if every else z3.Or(*[cmp(a) for a in args], self.ctx)

    # ------------------------------------------------------------------ assumptions

    def assumption_premises(self) -> list[tuple[sp.Expr, str, Any]]:
        """(atom, assumption, z3 constraint) for each SymPy assumption of each atom."""
        out = []
        for atom, var in self.atoms.items():
            for name, make in _ASSUMPTIONS:
                if getattr(atom, f"is_{name}") is True:
                    out.append((atom, name, make(var)))
        return out


def _is_bool(e: Any) -> bool:
    """A truth value (relation, And, ...): SymPy's Symbol is also a Boolean, but an Expr too."""
    return isinstance(e, sp.logic.boolalg.Boolean) and not isinstance(e, sp.Expr)


def _short(e: Any, n: int = 80) -> str:
    s = str(e)
    return s if len(s) <= n else s[: n - 3] + "..."


_ASSUMPTIONS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("positive", lambda v: v > 0),
    ("nonnegative", lambda v: v >= 0),
    ("negative", lambda v: v < 0),
    ("nonpositive", lambda v: v <= 0),
    ("nonzero", lambda v: v != 0),
    ("zero", lambda v: v == 0),
    ("integer", lambda v: z3.IsInt(v)),
)

_ASSUMPTION_CHECK: dict[str, Callable[[Fraction], bool]] = {
    "positive": lambda q: q > 0,
    "nonnegative": lambda q: q >= 0,
    "negative": lambda q: q < 0,
    "nonpositive": lambda q: q <= 0,
    "nonzero": lambda q: q != 0,
    "zero": lambda q: q == 0,
    "integer": lambda q: q.denominator == 1,
}


def to_z3(expr: sp.Basic, spread: bool = False) -> tuple[Any, list[Any]]:
    """``(term or formula, definitions)``: the z3 form of a SymPy expression, and the constraints
    that define its fresh variables (one per Max, Min, Abs, sign, Heaviside). Assert the
    definitions beside any use of the formula, negated or not. Atoms become z3 ``Real`` s named
    ``str(atom)``. Raises :class:`Unsupported` naming what cannot be translated, and
    ``ImportError`` without z3. ``spread``: relations with a Max or Min side are rewritten over
    its arguments (the second encoding :func:`decide` tries).
    """
    if z3 is None:
        raise ImportError(MISSING_Z3)
    t = _Translator(spread=spread)
    out = t.boolean(expr) if _is_bool(expr) else t.term(expr)
    return out, list(t.defs)


def _fraction(value: Any) -> Fraction:
    return Fraction(value.numerator_as_long(), value.denominator_as_long())


def _model(solver: Any, tr: _Translator) -> tuple[dict[sp.Expr, Fraction], bool]:
    """Exact rationals for every atom (0 where z3 leaves one free) and whether any value was an
    irrational algebraic number (then a nearby rational point is taken instead)."""
    m = solver.model()
    values: dict[sp.Expr, Fraction] = {}
    approximated = False
    for atom, var in tr.atoms.items():
        v = m.eval(var, model_completion=True)
        if z3.is_rational_value(v):
            values[atom] = _fraction(v)
        elif z3.is_algebraic_value(v):
            values[atom] = _fraction(v.approx(_ALGEBRAIC_DIGITS))
            approximated = True
        else:
            raise Unsupported(f"z3 gave a non-numeric value {v} for {atom}")
    return values, approximated


def _recheck(claim: sp.Basic, premises: Sequence[sp.Basic], assumed: list[tuple[sp.Expr, str, Any]],
             values: Mapping[sp.Expr, Fraction]) -> str:
    """'' when the point falsifies the claim and meets every premise, exactly; else what failed."""
    subs = {a: sp.Rational(q.numerator, q.denominator) for a, q in values.items()}
    for atom, name, _ in assumed:
        if not _ASSUMPTION_CHECK[name](values[atom]):
            return f"the model breaks the assumption {atom}: {name}"
    for p in premises:
        got = sp.sympify(p).xreplace(subs)
        if got is not sp.true:
            return f"premise {_short(p)} evaluates to {_short(got)} at the model, not True"
    got = sp.sympify(claim).xreplace(subs)
    if got is not sp.false:
        return f"the claim evaluates to {_short(got)} at the model, not False"
    return ""


def decide(claim: sp.Basic, premises: Sequence[sp.Basic] = (), *, timeout_s: float = 10.0,
           rlimit: int | None = None) -> Decision:
    """Decide ``premises => claim`` for every real value of the atoms within ``timeout_s`` seconds
    and, when given, ``rlimit`` z3 resource units (see the module docstring)."""
    start = time.perf_counter()
    if z3 is None:
        return Decision("skipped", 0.0, "", None, MISSING_Z3)
    version = solver_version()
    # a context of its own: what z3 does (and the units it spends) does not depend on what else
    # it was asked before in the process, as it did, a little, in the shared default context
    ctx = z3.Context()

    def done(status: str, model: dict[str, sp.Rational] | None = None, reason: str = "") -> Decision:
        return Decision(status, time.perf_counter() - start, version, model, reason, _units(ctx))

    claim = sp.sympify(claim)
    premises = [sp.sympify(p) for p in premises]
    whys = []
    for attempt, spread in enumerate(_ENCODINGS):
        tr = _Translator(spread=spread, ctx=ctx)
        try:
            goal = tr.boolean(claim)
            given = [tr.boolean(p) for p in premises]
            assumed = tr.assumption_premises()
        except Unsupported as exc:
            return done("unsupported", reason=str(exc))
        left = timeout_s - (time.perf_counter() - start)
        share = left if attempt == len(_ENCODINGS) - 1 else left / (len(_ENCODINGS) - attempt)
        solver = _solver(ctx, share, rlimit and max(1, rlimit // len(_ENCODINGS)))
        solver.add(*tr.defs, *given, *[c for _, _, c in assumed])
        solver.add(z3.Not(goal))
        answer = solver.check()
        if answer == z3.unsat:
            reason = ""
            if given or assumed:
                alone = _solver(ctx, timeout_s - (time.perf_counter() - start), rlimit)
                alone.add(*tr.defs, *given, *[c for _, _, c in assumed])
                if alone.check() == z3.unsat:
                    reason = "vacuous: the premises alone are unsatisfiable"
            return done("valid", reason=reason)
        if answer == z3.sat:
            try:
                values, approximated = _model(solver, tr)
            except Unsupported as exc:
                return done("unknown", reason=str(exc))
            failed = _recheck(claim, premises, assumed, values)
            if failed:
                why = ("z3's model is irrational (algebraic) and its rational approximation does not re-check: "
                       if approximated else "z3's model does not re-check exactly: ")
                return done("unknown", reason=why + failed)
            model = {_atom_name(a): sp.Rational(q.numerator, q.denominator) for a, q in values.items()}
            note = (f"model rounded to {_ALGEBRAIC_DIGITS} digits from an algebraic point, re-checked"
                    if approximated else "")
            return done("counterexample", model, note)
        whys.append(solver.reason_unknown())
    if all(_RESOURCE in w for w in whys):
        return done("timeout", reason=f"no answer within {rlimit:,} z3 resource units ({', '.join(whys)})")
    if all(w in ("timeout", "canceled") or _RESOURCE in w for w in whys) or time.perf_counter() - start >= timeout_s:
        return done("timeout", reason=f"no answer within {timeout_s:g} s ({', '.join(whys)})")
    return done("unknown", reason=", ".join(whys))


#: what z3's ``reason_unknown`` says when a check ran out of its ``rlimit``
_RESOURCE = "resource limit"


def _units(ctx: Any) -> int:
    """z3's resource units spent so far in ``ctx`` (its ``rlimit`` count, read through an empty
    check, which spends a couple of units itself)."""
    probe = z3.Solver(ctx=ctx)
    probe.check()
    stats = probe.statistics()
    return int(stats.get_key_value("rlimit count")) if "rlimit count" in stats.keys() else 0


def _solver(ctx: Any, seconds: float, rlimit: int | None = None) -> Any:
    solver = z3.Solver(ctx=ctx)
    solver.set("timeout", max(1, int(seconds * 1000)))
    if rlimit:
        solver.set("rlimit", int(rlimit))  # counted from the start of each check
    return solver


#: the encodings tried in turn, each with an equal share of the time left: Max/Min as defined
#: variables, then relations with a Max/Min side spread over its arguments. Neither is faster
#: everywhere (measured here: the signed layer K=2, P=3 2.9 s against 8.5 s; the max-pool identity
#: K=2, P=5 1.2 s against 0.07 s), so each claim gets both.
_ENCODINGS = (False, True)


def decide_sizes(build: Callable[[Any], tuple[sp.Basic, Sequence[sp.Basic]]], sizes: Iterable[Hashable],
                 timeout_s: float = 10.0, rlimit: int | None = None) -> dict[Any, Decision]:
    """``{size: decide(*build(size))}`` for every size, each with its own time limit (none is skipped
    because an earlier one timed out). ``build(size)`` returns ``(claim, premises)``."""
    out: dict[Any, Decision] = {}
    for size in sizes:
        claim, premises = build(size)
        out[size] = decide(claim, premises, timeout_s=timeout_s, rlimit=rlimit)
    return out
