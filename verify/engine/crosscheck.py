"""The symbolic claim and the numeric property are one statement: checked on drawn instances.

A derivation proves its claim; the numeric face tests the property. Nothing so far says they are
about the same thing. Here the claim's two sides are evaluated on instances the sampler draws
(the claim's size symbols set from the structure, its finite maxima and sums unfolded, its
symbols bound to the instance's arrays by name or by the derivation's ``bind``), and compared with
the two sides the property's component computes (``verify.residual(lhs, rhs)`` records them). A
mismatch beyond the theorem's tolerance, a relation that differs, or a bound value that breaks a
symbol's declared assumption (a ``nonnegative`` symbol given a negative entry) is a disagreement:
the theorem fails, whatever the derivation proved.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from verify.backends import backend
from verify.config import in_float64
from verify.engine import programs
from verify.engine.evaluate import batch_sampler
from verify.engine.search import BatchStore
from verify.spec import Theorem
from verify.symbolic import Derivation, Derivations, MaxOver, MinOver, Scope, size_symbols
from verify.values import Residual, Structure, as_residuals

#: instances compared per structure, and structures compared at most
PER_STRUCTURE = 4
MAX_STRUCTURES = 12
#: lhs and rhs are compared with the theorem's tolerance times this: the symbolic side is evaluated
#: in float64 too, in another order, so its rounding is of the size the tolerance already allows
SLACK = 4.0


@dataclass
class CrossCheck:
    """``agrees`` (every compared instance matched), ``disagrees`` (``detail`` shows the first
    instance that did not), or ``not compared`` (no instance of a size in the claim's scope met the
    assumptions, or the claim could not be evaluated: ``detail`` says why)."""

    status: str
    compared: int = 0
    structures: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = {"status": self.status, "instances_compared": self.compared, "structures": self.structures}
        if self.detail:
            d["detail"] = self.detail
        if self.skipped:
            d["skipped"] = self.skipped
        return d


def _members(derivation: Derivation | Derivations) -> list[Derivation]:
    return list(derivation.members) if isinstance(derivation, Derivations) else [derivation]


def _matches(size: Mapping[str, int] | None, s: Mapping[str, Any]) -> bool:
    return size is None or all(s.get(k) == v for k, v in size.items())


def _name(atom: Any) -> str:
    return str(atom.label) if isinstance(atom, sp.IndexedBase) else str(getattr(atom, "name", atom))


class _Unbound(Exception):
    pass


def _instance_value(name: str, bind: Mapping[str, Any], s: Structure, x: Mapping[str, np.ndarray]) -> Any:
    key = bind.get(name, name)
    if callable(key):  # a size computed from the structure (a stride, say)
        return key(s)
    if key in x:
        return np.asarray(x[key])
    if key in s:
        return s[key]
    raise _Unbound(f"the claim's symbol {name!r} is bound to nothing: no instance array or structure field "
                   f"{key!r} (give Derivation(bind={{{name!r}: KEY}}))")


#: the assumptions of a claim's symbol that a value bound to it must keep
_ASSUMPTION_CHECKS = (("positive", lambda v: v > 0), ("nonnegative", lambda v: v >= 0), ("negative", lambda v: v < 0),
                      ("nonpositive", lambda v: v <= 0), ("integer", lambda v: float(v) == round(float(v))))


class _Need(Exception):
    """Evaluation read an optimised entry that has no value yet: branch over its values."""

    def __init__(self, key: tuple[Any, tuple[int, ...]]) -> None:
        super().__init__(key)
        self.key = key


class Evaluator:
    """The claim's value on one instance, in float64, straight from the expression tree.

    A ``MaxOver`` is evaluated by enumeration: a scalar variable over its values, an optimised
    ``IndexedBase`` lazily (each entry the expression reads, over its values, as it is read), so
    only the entries that matter are enumerated. Sums run over their (now explicit) ranges.

    The tree is turned into nested Python closures once per expression (:func:`_compiled`), so
    the enumeration, which visits the same nodes thousands of times, does not dispatch on node
    types (nor print an entry's name) at each visit; a sum or a maximum is computed once per
    setting of the variables it reads (:func:`_memoised`)."""

    def __init__(self, bind: Mapping[str, Any], s: Structure, x: Mapping[str, np.ndarray]) -> None:
        self.bind, self.s, self.x = bind, s, x
        self.assumption_breaks: list[str] = []
        self.steps = 0
        self._arrays: dict[str, np.ndarray] = {}
        #: (node, the values of the variables it reads) -> its value (see :func:`_memoised`)
        self.memo: dict[tuple, Any] = {}

    def array(self, name: str) -> np.ndarray:
        arr = self._arrays.get(name)
        if arr is None:
            arr = self._arrays[name] = np.asarray(_instance_value(name, self.bind, self.s, self.x))
        return arr

    def __call__(self, e: Any, env: dict[Any, Any]) -> Any:
        return _cached(_compiled, _compile, e)(self, env)

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _Unbound(f"evaluating the claim takes more than {MAX_STEPS} steps")


Node = Callable[[Evaluator, dict], Any]


def _checks_of(atom: Any) -> list[tuple[str, Callable[[Any], bool]]]:
    """The sign and integrality assumptions of ``atom``'s symbol a bound value must keep."""
    base = atom.base if isinstance(atom, sp.Indexed) else atom
    return [(prop, ok) for prop, ok in _ASSUMPTION_CHECKS if getattr(base, f"is_{prop}", None)]


def _broken(atom: Any, checks: list, value: Any, where: Callable[[], str]) -> str | None:
    base = atom.base if isinstance(atom, sp.Indexed) else atom
    for prop, ok in checks:
        if not ok(value):
            return f"the claim takes {base} {prop}, but {where()} = {value!r} on an instance meeting the assumptions"
    return None


@functools.lru_cache(maxsize=1024)
def _compiled(e: Any) -> Node:
    return _compile(e)


def _cached(cached: Callable[..., Any], uncached: Callable[..., Any], *args: Any) -> Any:
    """``cached(*args)``, or ``uncached(*args)`` when an argument cannot be a cache key (a mutable
    SymPy matrix is unhashable)."""
    try:
        return cached(*args)
    except TypeError:
        return uncached(*args)


def _compile(e: Any) -> Node:  # noqa: C901 - one case per kind of node, in the order they are tried
    """``e`` as a closure ``(evaluator, env) -> value``; a node that cannot be evaluated raises
    :class:`_Unbound` when (and only when) it is reached."""
    if isinstance(e, (bool, int, float)):
        return _constant(e)
    if e.is_Number:
        return _constant(float(e))
    if e in (sp.true, sp.false):
        return _constant(bool(e))
    if isinstance(e, sp.Symbol):
        name, checks = e.name, _checks_of(e)

        def symbol(ev: Evaluator, env: dict) -> Any:
            ev.tick()
            if e in env:
                return env[e]
            value = float(np.asarray(_instance_value(name, ev.bind, ev.s, ev.x)))
            if checks:
                broken = _broken(e, checks, value, lambda: str(e))
                if broken:
                    ev.assumption_breaks.append(broken)
            return value
        return symbol
    if isinstance(e, sp.Indexed):
        base, name, checks = e.base, _name(e.base), _checks_of(e)
        opt_key = ("optimised", base)
        indices = [_compile(i) for i in e.indices]

        def indexed(ev: Evaluator, env: dict) -> Any:
            ev.tick()
            idx = tuple(int(round(i(ev, env))) for i in indices)
            assignment = env.get(opt_key)
            if assignment is not None:
                if idx not in assignment:
                    raise _Need((base, idx))
                return assignment[idx]
            arr = ev.array(name)
            try:
                value = float(arr[idx])
            except (IndexError, TypeError):
                raise _Unbound(f"{base}{list(idx)} is outside the instance's {name} of shape {arr.shape}") from None
            if checks:
                broken = _broken(e, checks, value, lambda: f"{base}{list(idx)}")
                if broken:
                    ev.assumption_breaks.append(broken)
            return value
        return indexed
    if isinstance(e, sp.MatrixBase):
        rows = [[_compile(v) for v in row] for row in e.tolist()]
        return _counted(lambda ev, env: np.array([[v(ev, env) for v in row] for row in rows], dtype=float))
    if isinstance(e, sp.MatrixSymbol):
        shape = tuple(int(d) for d in e.shape)
        return _counted(lambda ev, env: ev.array(e.name).astype(float).reshape(shape))
    if isinstance(e, MatrixElement):
        shape = tuple(int(d) for d in e.parent.shape)
        i, j = _compile(e.i), _compile(e.j)
        return _counted(lambda ev, env: float(ev.array(e.parent.name).astype(float).reshape(shape)[int(i(ev, env)),
                                                                                                    int(j(ev, env))]))
    if isinstance(e, (sp.Sum, sp.Max, sp.Min, MaxOver, MinOver)):
        return _memoised(e, _compile_node(e))
    return _compile_node(e)


def _compile_node(e: Any) -> Node:  # noqa: C901 - one case per kind of node, in the order they are tried
    if isinstance(e, sp.Add):
        terms = [_compile(a) for a in e.args]
        return _counted(lambda ev, env: sum(t(ev, env) for t in terms))
    if isinstance(e, sp.Mul):
        factors = [_compile(a) for a in e.args]

        def mul(ev: Evaluator, env: dict) -> Any:
            ev.tick()
            out = 1.0
            for f in factors:
                out = out * f(ev, env)
            return out
        return mul
    if isinstance(e, sp.Pow):
        b, x = _compile(e.base), _compile(e.exp)
        return _counted(lambda ev, env: b(ev, env) ** x(ev, env))
    if isinstance(e, (sp.Max, sp.Min)):
        args, pick = [_compile(a) for a in e.args], (max if isinstance(e, sp.Max) else min)
        return _counted(lambda ev, env: pick([a(ev, env) for a in args]))
    if isinstance(e, sp.Abs):
        a = _compile(e.args[0])
        return _counted(lambda ev, env: abs(a(ev, env)))
    if isinstance(e, sp.sign):
        a = _compile(e.args[0])

        def sign(ev: Evaluator, env: dict) -> Any:
            ev.tick()
            v = a(ev, env)
            return float((v > 0) - (v < 0))
        return sign
    if isinstance(e, sp.Heaviside):
        a = _compile(e.args[0])
        h = _compile(e.args[1]) if len(e.args) > 1 else _constant(0.5)

        def heaviside(ev: Evaluator, env: dict) -> Any:
            ev.tick()
            v = a(ev, env)
            return 1.0 if v > 0 else (h(ev, env) if v == 0 else 0.0)
        return heaviside
    if isinstance(e, sp.Piecewise):
        branches = [(_compile(value), _compile(cond)) for value, cond in e.args]

        def piecewise(ev: Evaluator, env: dict) -> Any:
            ev.tick()
            for value, cond in branches:
                if cond(ev, env):
                    return value(ev, env)
            raise _Unbound(f"no branch of {e} applies")
        return piecewise
    if isinstance(e, sp.core.relational.Relational):
        lhs, rhs, op = _compile(e.lhs), _compile(e.rhs), _RELATIONS[e.rel_op]
        return _counted(lambda ev, env: op(lhs(ev, env), rhs(ev, env)))
    if isinstance(e, sp.And):
        args = [_compile(a) for a in e.args]
        return _counted(lambda ev, env: all(a(ev, env) for a in args))
    if isinstance(e, sp.Or):
        args = [_compile(a) for a in e.args]
        return _counted(lambda ev, env: any(a(ev, env) for a in args))
    if isinstance(e, sp.Not):
        a = _compile(e.args[0])
        return _counted(lambda ev, env: not a(ev, env))
    if isinstance(e, sp.Sum):
        (k, lo, hi), *rest = e.limits
        inner = _compile(sp.Sum(e.function, *rest) if rest else e.function)
        span = _span(lo, hi)
        return _counted(lambda ev, env: sum(inner(ev, env | {k: v}) for v in span(ev, env)))
    if isinstance(e, (MaxOver, MinOver)):
        return _extremum(e)
    for fn, np_fn in ((sp.exp, np.exp), (sp.log, np.log), (sp.tanh, np.tanh), (sp.sin, np.sin), (sp.cos, np.cos)):
        if isinstance(e, fn):
            a = _compile(e.args[0])
            return _counted(lambda ev, env, a=a, np_fn=np_fn: float(np_fn(a(ev, env))))
    if isinstance(e, sp.MatrixExpr):
        return _compile(e.as_explicit())
    why = f"cannot evaluate {type(e).__name__} in {e}"

    def unsupported(ev: Evaluator, env: dict) -> Any:
        raise _Unbound(why)
    return unsupported


def _memoised(e: Any, fn: Node) -> Node:
    """``fn``, whose value is kept per evaluation for the values of the variables it reads: a sum
    or a maximum is a pure function of the instance and of the summation and enumeration variables
    free in it, so it is computed once per setting of those, not once per visit (a unit of a layer
    is read by every unit of the layer above, and a part of a maximum that does not read the
    entry being enumerated is the same for each of its values). Not kept while an entry it reads
    is being enumerated lazily (its value then depends on the assignment so far). The first
    visit records any broken assumption, in the order of an evaluation without this."""
    # every symbol in it, bound ones too (a key with more variables only shares less; SymPy's
    # free_symbols of nested sums costs more than the evaluation saves)
    variables = tuple(sorted(e.atoms(sp.Symbol), key=sp.default_sort_key))
    optimised = tuple({("optimised", i.base) for i in e.atoms(sp.Indexed)})

    def memoised(ev: Evaluator, env: dict) -> Any:
        if optimised and any(k in env for k in optimised):
            return fn(ev, env)
        key = (fn, *(env.get(v) for v in variables))
        if key in ev.memo:
            ev.tick()
            return ev.memo[key]
        value = ev.memo[key] = fn(ev, env)
        return value
    return memoised


def _constant(c: Any) -> Node:
    def constant(ev: Evaluator, env: dict) -> Any:
        ev.tick()
        return c
    return constant


def _counted(fn: Node) -> Node:
    def node(ev: Evaluator, env: dict) -> Any:
        ev.tick()
        return fn(ev, env)
    return node


_RELATIONS = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
              "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _extremum(e: Any) -> Node:
    pick = max if isinstance(e, MaxOver) else min
    domains = []
    for d in e.domains:
        var = d[0]
        if len(d) == 2:
            domains.append((var, [_compile(v) for v in sorted(d[1], key=sp.default_sort_key)], None))
        else:
            domains.append((var, None, _span(d[1], d[2])))
    function = _compile(e.function)
    terms = _terms(e.function)

    def extremum(ev: Evaluator, env: dict) -> Any:
        ev.tick()
        scalars, bases = [], []
        for var, finite, span in domains:
            values = [v(ev, env) for v in finite] if finite is not None else list(span(ev, env))
            (bases if isinstance(var, sp.IndexedBase) else scalars).append((var, values))

        def over_bases(env_: dict[Any, Any], node: Node = function, read: set | None = None) -> float:
            try:
                return node(ev, env_)
            except _Need as need:
                base, idx = need.key
                values = next((v for b, v in bases if b == base), None)
                if values is None:  # an entry an enclosing max optimises: that max branches over it
                    raise
                if read is not None:
                    read.add(need.key)
                out = []
                for v in values:
                    assignment = dict(env_[("optimised", base)])
                    assignment[idx] = v
                    out.append(over_bases(env_ | {("optimised", base): assignment}, node, read))
                return pick(out)

        if terms is not None and bases and not scalars:
            separate = _separately(ev, env | {("optimised", b): {} for b, _ in bases}, terms, over_bases)
            if separate is not None:
                return separate
        best = []
        names = [v for v, _ in scalars]
        for combo in itertools.product(*[vals for _, vals in scalars]):
            env_ = env | dict(zip(names, combo)) | {("optimised", b): {} for b, _ in bases}
            best.append(over_bases(env_))
        return pick(best)
    return extremum


def _terms(f: Any) -> Callable[[Evaluator, dict], list[tuple[Node, dict]]] | None:
    """The terms of ``f`` with the environment each is evaluated in, when ``f`` is a sum: an
    ``Add``'s arguments and a ``Sum``'s body at each value of its first index, themselves split
    when they are sums; None when ``f`` is not a sum."""
    if isinstance(f, sp.Add):
        parts = [_terms(a) or _leaf(_compile(a)) for a in f.args]
        return lambda ev, env: [t for p in parts for t in p(ev, env)]
    if isinstance(f, sp.Sum):
        (k, lo, hi), *rest = f.limits
        inner = sp.Sum(f.function, *rest) if rest else f.function
        body = _terms(inner) or _leaf(_compile(inner))
        span = _span(lo, hi)
        return lambda ev, env: [t for v in span(ev, env) for t in body(ev, env | {k: v})]
    return None


def _span(lo: Any, hi: Any) -> Callable[[Evaluator, dict], range]:
    """The integers lo..hi of a limit (both ends included), its bounds evaluated in the environment."""
    lo_, hi_ = _compile(lo), _compile(hi)
    return lambda ev, env: range(int(lo_(ev, env)), int(hi_(ev, env)) + 1)


def _leaf(node: Node) -> Callable[[Evaluator, dict], list[tuple[Node, dict]]]:
    return lambda ev, env: [(node, env)]


def _separately(ev: Evaluator, env: dict, terms: Callable[[Evaluator, dict], list[tuple[Node, dict]]],
                over_bases: Callable[..., float]) -> float | None:
    """The extremum of a sum over optimised entries as the sum of its terms' extrema, when no two
    terms read a common entry (the entries range over a product of their value sets, so the
    extremum then separates, as z^T diag(a) u = sum_i a_i z_i u_i does over the switches a_i): a
    term enumerates only its own entries, not every combination of all of them. Which entries a
    term reads is found as it is enumerated; None (enumerate jointly) when two terms share one."""
    try:
        parts = terms(ev, env)
    except _Need:  # a range that reads an optimised entry
        return None
    total, seen, recorded = 0.0, set(), len(ev.assumption_breaks)
    for node, env_ in parts:
        read: set = set()
        value = over_bases(env_, node, read)
        if read & seen:
            del ev.assumption_breaks[recorded:]  # the joint enumeration records them again, in its order
            return None
        seen |= read
        total = total + value
    return total


#: evaluating one side on one instance may take at most this many steps (2^8 switch settings x 8
#: terms is ~10^5)
MAX_STEPS = 300_000


@functools.lru_cache(maxsize=512)
def _prepared(side: Any, sizes: tuple[tuple[str, int], ...]) -> Any:
    """One side at explicit sizes, with derivatives and the like worked out symbolically: once per
    size, not once per instance (SymPy's substitution dominates the cross-check otherwise), and
    kept on disk under the SHA-256 of the side's full SymPy form (``srepr``), the sizes and the
    engine's sources (:func:`verify.engine.programs.kept`)."""
    name = programs.content_name("crosscheck side", sp.srepr(side), repr(sizes))
    return programs.kept(name, lambda: _prepare(side, sizes))


#: what :func:`_prepare` works out symbolically (``doit``)
_WORKED_OUT = (sp.Derivative, sp.Integral, sp.Trace)


def _prepare(side: Any, sizes: tuple[tuple[str, int], ...]) -> Any:
    by_name = dict(sizes)
    sub = {a: sp.Integer(by_name[a.name]) for a in side.atoms(sp.Symbol) if a.name in by_name}
    e = side.xreplace(sub)
    return e.replace(lambda n: isinstance(n, _WORKED_OUT), lambda n: n.doit())


def _evaluate(side: Any, sizes: Mapping[Any, int], member: Derivation, s: Structure,
              x: Mapping[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    key = tuple(sorted((str(k), int(v)) for k, v in sizes.items()))
    env: dict[Any, Any] = {}
    by_name = _cached(_plain_symbols, _plain_symbols.__wrapped__, side)
    if by_name is not None:  # the sizes are read as the values of their symbols, not put in
        named = dict(key)
        env = {a: named[n] for n, atoms in by_name.items() if n in named for a in atoms}
        e = side
    else:
        e = _cached(_prepared, _prepare, side, key)  # an unhashable matrix is prepared each time
    ev = Evaluator(member.bind, s, x)
    value = ev(e, env)
    return _flat(value), ev.assumption_breaks


@functools.lru_cache(maxsize=512)
def _plain_symbols(side: Any) -> dict[str, list[Any]] | None:
    """A side's symbols by name, when nothing in it needs its sizes written in (no derivative or
    the like to work out, no matrix whose shape they give): its sizes are then bound as the values
    of those symbols, and the side is compiled once for every size. None otherwise."""
    if isinstance(side, (sp.MatrixBase, sp.MatrixExpr)) or side.has(*_WORKED_OUT) or side.atoms(sp.MatrixExpr):
        return None
    out: dict[str, list[Any]] = {}
    for a in side.atoms(sp.Symbol):
        out.setdefault(a.name, []).append(a)
    return out


def _flat(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=float).reshape(-1)


def _property_sides(prop: Any, s: Structure, x: Mapping[str, np.ndarray], component: str | None) -> dict[str, Any]:
    """The property's residuals on one instance: with NumPy (no per-operation dispatch), or with
    JAX where NumPy cannot evaluate it (``jax.numpy``-only code) or the component compared is a
    claim about JAX itself (``xp.float64_only``)."""
    arrays = {k: np.asarray(v) for k, v in x.items()}
    try:
        with backend("numpy"), np.errstate(all="ignore"):
            out = as_residuals(prop(s, arrays))
        wanted = [out[component]] if component in out else list(out.values()) if component is None else []
        if wanted and all(isinstance(r, Residual) for r in wanted):
            return out
    except Exception:  # noqa: BLE001 - code NumPy cannot run: JAX evaluates it, as the search does
        pass
    with backend("jax"):
        return as_residuals(prop(s, arrays))


#: :func:`size_symbols` once per claim (it walks the whole claim)
_size_symbols = functools.lru_cache(maxsize=256)(size_symbols)


def _compare_one(member: Derivation, theorem: Theorem, prop: Any, s: Structure, x: Mapping[str, np.ndarray],
                 slack: float) -> str | None:
    """None when the claim's sides match the property's on this instance, else the disagreement."""
    claim = member.claim
    sizes = {sym: int(_instance_value(sym.name, member.bind, s, x)) for sym in _cached(_size_symbols, size_symbols, claim, member.entries)}
    points = [dict(sizes)]
    if member.entries is not None:  # the claim holds for every entry k: evaluate it at each, in order
        k, lo, hi = member.entries
        lo_, hi_ = (sp.sympify(b).xreplace({a: sp.Integer(v) for a, v in sizes.items()}) for b in (lo, hi))
        points = [sizes | {k: v} for v in range(int(lo_), int(hi_) + 1)]
    out = _property_sides(prop, s, x, member.component)
    comp = member.component or (next(iter(out)) if len(out) == 1 else None)
    if comp is None or comp not in out:
        raise _Unbound(f"the derivation does not say which component it states (component=...; the property has "
                       f"{', '.join(out)})" if comp is None else f"the property has no component {comp!r}")
    r: Residual = out[comp]
    if r.lhs is None or r.rhs is None:
        raise _Unbound(f"component {comp!r} is a Residual without sides: build it with residual(lhs, rhs, scale), "
                       "at_most or at_least so the claim can be compared with it")
    if r.relation != claim.rel:
        return f"the claim is {claim.rel} but component {comp!r} tests {r.relation}"
    scale = np.abs(_flat(np.broadcast_to(np.asarray(r.scale, dtype=float), np.shape(r.value))))
    bound = slack * np.maximum(theorem.tolerance.bound(scale), 0.0)
    for side_name, side, numeric in (("left", claim.lhs, r.lhs), ("right", claim.rhs, r.rhs)):
        parts = []
        for point in points:
            value, breaks = _evaluate(side, point, member, s, x)
            if breaks:
                return breaks[0]
            parts.append(value)
        sym_value = np.concatenate(parts) if parts else np.zeros(0)
        num_value = _flat(np.asarray(numeric))
        if sym_value.size != num_value.size:
            return (f"the claim's {side_name} side has {sym_value.size} entries at {dict(s)}, "
                    f"component {comp!r} has {num_value.size}")
        b = bound if bound.size == num_value.size else np.full(num_value.shape, float(np.max(bound, initial=0.0)))
        bad = ~(np.abs(sym_value - num_value) <= b)
        if bad.any():
            k = int(np.argmax(bad))
            shown = "; ".join(f"{name}={np.asarray(v).tolist()}" for name, v in list(x.items())[:8])
            return (f"symbolic claim and numeric property disagree on an instance at {dict(s)}: the claim's {side_name} "
                    f"side is {sym_value[k]:.12g} where component {comp!r} computes {num_value[k]:.12g} (entry {k}; "
                    f"instance {shown})")
    return None


@in_float64
def crosscheck(theorem: Theorem, derivation: Derivation | Derivations, scope: Scope, *, prop: Any = None,
               structures: Iterable[Mapping[str, Any]] = (), seed: int = 0, store: BatchStore | None = None) -> CrossCheck:
    """Compare the claim with ``prop`` (default the theorem's property) on instances meeting the
    assumptions, over ``structures`` (those the search drew) and, for explicit sizes that none of
    them has, a structure of that size found from the theorem's strategy. Which instances meet the
    assumptions is read from ``store``'s program (the run's, already compiled for the structures
    searched) on batches of its size; without one, from a program of its own on batches of 64."""
    prop = prop or theorem.property
    members = [m for m in _members(derivation) if scope.all_sizes or (m.size is not None and scope.covers(m.size))]
    if not members:
        return CrossCheck("not compared", detail="nothing in the scope to compare")
    candidates: list[Structure] = []
    for s in structures:
        s = Structure(s)
        if s not in candidates:
            candidates.append(s)
    for m in members:
        if m.size is not None and not any(_matches(m.size, s) for s in candidates):
            found = _structure_of_size(theorem, m.size)
            if found is not None:
                candidates.append(found)
    # each member's first structure goes first, so the cap on structures never leaves a member out
    first: list[Structure] = []
    for m in members:
        match = next((s for s in candidates if _matches(m.size, s)), None)
        if match is not None and match not in first:
            first.append(match)
    candidates = first + [s for s in candidates if s not in first]
    result = CrossCheck("agrees")
    uncovered = []
    store = store if store is not None else BatchStore(theorem, {"claim": prop}, 64)
    sampler = batch_sampler(theorem.sample)
    per_member_done = {id(m): False for m in members}
    for s in candidates[: MAX_STRUCTURES + len(members)]:
        applicable = [m for m in members if _matches(m.size, s)]
        if not applicable:
            continue
        key = (seed + 7919 * len(result.structures)) % 2**32
        holds = store.evaluate(s, store.pools(s, key))["holds"]
        ok = holds.all(axis=1) if theorem.assumptions else np.ones(len(holds), bool)
        idx = np.flatnonzero(ok)[:PER_STRUCTURE]
        if idx.size == 0:
            continue
        batch = sampler(s, key, store.batch)
        compared_here = 0
        for m in applicable:
            for i in idx:
                x = {k: np.asarray(v)[i] for k, v in batch.items()}
                try:
                    bad = _compare_one(m, theorem, prop, s, x, SLACK)
                except _Unbound as exc:
                    result.skipped.append(f"{dict(s)}: {exc}")
                    break
                if bad:
                    return CrossCheck("disagrees", result.compared, result.structures + [s.as_json()], bad)
                result.compared += 1
                compared_here += 1
                per_member_done[id(m)] = True
        if compared_here:
            result.structures.append(s.as_json())
    for m in members:
        if not per_member_done[id(m)]:
            uncovered.append(str(m.size) if m.size is not None else "all sizes")
    if result.compared == 0:
        why = result.skipped[0] if result.skipped else "no drawn instance of a size in the claim's scope met the assumptions"
        return CrossCheck("not compared", 0, [], why, result.skipped)
    if uncovered:
        result.skipped.append(f"never compared at {', '.join(uncovered)}")
    return result


def _structure_of_size(theorem: Theorem, size: Mapping[str, int]) -> Structure | None:
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample, Unsatisfiable

    try:
        found = find(theorem.structure, lambda st: _matches(size, st),
                     settings=settings(max_examples=500, database=None, phases=[Phase.generate],
                                       suppress_health_check=list(HealthCheck)))
    except (NoSuchExample, Unsatisfiable):
        return None
    return Structure(found)


def uncovered_sizes(derivation: Derivation | Derivations, check: CrossCheck) -> list[dict[str, int]]:
    """Explicit sizes of ``derivation`` that ``check`` never compared."""
    seen = [Structure(s) for s in check.structures]
    return [m.size for m in _members(derivation) if m.size is not None and not any(_matches(m.size, s) for s in seen)]


def narrowed(scope: Scope, derivation: Derivation | Derivations, check: CrossCheck) -> Scope:
    """The scope, less the explicit sizes never compared with the property."""
    if scope.all_sizes:
        return scope
    missing = uncovered_sizes(derivation, check)
    kept = [dict(s) for s in (scope.sizes or ()) if dict(s) not in missing]
    return Scope.explicit(kept)

