"""The numeric face: residuals, tolerances, and batched float64 evaluation under jit(vmap).

A property maps one instance to a :class:`Residual` (or a dict of named residuals). The
engine draws a batch of instances from one JAX key with the theorem's sampler, evaluates the
property and every assumption on all of them in one compiled call, and hands back plain NumPy
arrays: per instance, the worst ``|r| / (atol + rtol * scale)`` ratio, whether everything was
finite, and which assumptions held.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import jax
import mpmath
import numpy as np

from verify.backends import Float64Only, backend, to_highprec, xp
from verify.config import float64, in_float64
from verify.engine import programs
from verify.errors import TheoremError
from verify.sampling import Rng
from verify.spec import Assumption, Tolerance
from verify.values import Residual, Structure, as_residuals

#: a bound below this is treated as this, so that an exact (zero-tolerance) claim divides safely
_TINY = 1e-300


def summarise(res: dict[str, Residual], tol: Tolerance) -> dict[str, Any]:
    """Per-component worst tolerance ratio and largest |residual|, on the active backend.

    ``scores`` rank instances by how close they come to failing: the ratio for an identity, and
    for an inequality the *signed* slack over the tolerance (negative where it holds with room,
    above 1 exactly where it fails), which the ratio, 0 wherever the inequality holds, hides."""
    ratios, absres, finite, scores = [], [], [], []
    for r in res.values():
        value = xp.asarray(r.value)
        bound = xp.maximum(tol.bound(xp.abs(xp.asarray(r.scale))), _TINY)
        a = xp.abs(value)
        ratio = xp.max(a / bound)
        ratios.append(ratio)
        absres.append(xp.max(a))
        finite.append(xp.all(xp.isfinite(value)) & xp.all(xp.isfinite(xp.asarray(r.scale))))
        if r.relation in ("<=", ">=") and r.lhs is not None and r.rhs is not None:
            slack = xp.asarray(r.lhs) - xp.asarray(r.rhs) if r.relation == "<=" else xp.asarray(r.rhs) - xp.asarray(r.lhs)
            scores.append(xp.max(slack / bound))  # equals the ratio wherever the inequality fails
        else:
            scores.append(ratio)
    return {"ratios": ratios, "absres": absres, "finite": finite, "scores": scores}


def _evaluate_one(prop: Any, assumptions: Sequence[Assumption], tol: Tolerance, s: Structure, x: Any):
    summary = summarise(as_residuals(prop(s, x)), tol)
    finite = xp.all(xp.stack(summary["finite"]))
    ratios = xp.stack(summary["ratios"])
    holds = (
        xp.stack([xp.asarray(a.holds(s, x), dtype=bool) for a in assumptions])
        if assumptions
        else xp.zeros((0,), dtype=bool)
    )
    return {
        "ratio": xp.where(finite, xp.max(ratios), xp.inf),
        "components": xp.where(finite, ratios, xp.inf),
        "absres": xp.max(xp.stack(summary["absres"])),
        "finite": finite,
        "holds": holds,
    }


def _uniforms(shape: tuple[int, int], key_seed: Any) -> Any:
    """``shape[0]`` instances' worth of ``shape[1]`` uniforms in (0, 1] each."""
    return 1.0 - jax.random.uniform(jax.random.key(key_seed), shape)


#: an optimised program (:data:`verify.engine.programs.QUICK_OPTIONS`) whose batch XLA estimates
#: at more than this many bytes accessed (what all its operations read and write, far more than
#: the data live at once) runs over the batch a chunk of instances at a time, each within it
#: (:func:`chunk_size`): XLA's CPU code writes each intermediate of the whole batch before the next
#: operation reads it, and a smaller chunk's stay in the caches, while too small a chunk loses the
#: large matrix products. Chosen by measurement (2 cores, 1 MB of L2 each, batch 512), the claim's
#: structures of the five largest teacher-model searches weighted by their instances: 41.9 s whole,
#: 35.9 s with this bound, 40.8 s with 4 MB chunks (tian2018.thm4.matrix-form 40% slower there)
CHUNK_BYTES = 1 << 28


def chunk_size(bytes_per_instance: float, n: int) -> int:
    """How many of a batch's ``n`` instances an optimised program evaluates at a time: all of them
    while the batch comes to at most :data:`CHUNK_BYTES` of XLA's estimate of bytes accessed, else
    the largest power of two that divides ``n`` and keeps a chunk within it (at least 1). Depends
    on the estimate only, never on the clock, so the same batch runs the same program everywhere."""
    if not bytes_per_instance > 0 or bytes_per_instance * n <= CHUNK_BYTES:
        return n
    c = 1 << (max(1, int(CHUNK_BYTES // bytes_per_instance)).bit_length() - 1)
    while n % c:
        c //= 2
    return c


def map_instances(f: Callable[[Any], Any], xs: Any, chunk: int | None = None) -> Any:
    """``jax.vmap(f)(xs)`` over the leading axis, ``chunk`` instances at a time (``jax.lax.map`` of
    the vmapped ``f`` over the batch cut into ``n / chunk`` pieces); every instance is computed by
    the same operations either way, only XLA's fusion of them differs."""
    n = jax.tree_util.tree_leaves(xs)[0].shape[0]
    if chunk is None or chunk >= n:
        return jax.vmap(f)(xs)
    pieces = jax.tree_util.tree_map(lambda a: a.reshape((n // chunk, chunk) + a.shape[1:]), xs)
    out = jax.lax.map(jax.vmap(f), pieces)
    return jax.tree_util.tree_map(lambda a: a.reshape((n,) + a.shape[2:]), out)


def _uniform_pool(n: int, width: int) -> Callable[[Any], Any]:
    """The pool of a batch: compiled once per (batch size, width), shared by every theorem, and so
    optimised (with the pool compiled quickly P1's batched rate was 295,000 instances/s, optimised
    693,000 to 729,000: benchmarks/bench_p1_batched_vs_given.py, batch 4096)."""
    return functools.partial(programs.run, "engine:uniforms", _uniforms, (n, width), optimise=True)


@functools.lru_cache(maxsize=1024)
def pool_width(sample: Any, s: Structure) -> int:
    """How many uniforms one instance of ``s`` needs, rounded up to a power of two (>= 16).

    A sampler that draws nothing from its ``rng`` is an error: every instance of a batch would be
    the same (a sampler that uses NumPy's or Python's random generator runs once, when it is
    traced, and its draws become constants)."""
    def used() -> int:
        rng = Rng(None)
        with float64(), backend("jax"):
            jax.eval_shape(lambda: sample(rng, s))
        return rng.used

    n = programs.remembered(programs.name_of("uniforms used", sample), s, used)
    if n == 0:
        raise TheoremError(
            f"the sampler draws no randomness from its rng at {s}: every instance would be the same "
            "(NumPy's or Python's random generators run once, at trace time); draw every random value from rng")
    return max(16, 1 << max(n - 1, 0).bit_length())


def draw_batch(sample: Any, s: Structure, key_seed: int, n: int) -> tuple[Any, int]:
    """The uniform pool for a batch (a device array) and its width."""
    width = pool_width(sample, s)
    with backend("jax"):
        return _uniform_pool(n, width)(np.uint32(key_seed)), width


def _sample_all(sample: Any, s: Structure, pools: Any, chunk: int | None = None) -> Any:
    xs = map_instances(lambda pool: sample(Rng(pool), s), pools, chunk)
    if not isinstance(xs, dict):
        raise TypeError(f"sample must return a dict of arrays, got {type(xs).__name__}")
    return xs


@functools.lru_cache(maxsize=256)
def _sampler(sample: Any) -> tuple[str | None, Callable[[Structure, Any], Any]]:
    """The name and the function of the program that turns a batch's uniform pool into its
    instances: one program per sampler and structure, shared by every program that reads them.

    The instances are drawn in a program of their own, not inside the property's, because XLA
    fuses the sampler's elementwise arithmetic (the cosines of Box-Muller, say) into every
    consumer of its output and so computes it again in each: on P1 at D = 8 one program took 6.9 ms
    a batch of 4,096 and the two 2.7 ms (``benchmarks/bench_arithmetic.py`` measures the engine's
    path). The instances stay on the device between the two programs; the outputs are the same."""

    def run(s: Structure, pools: Any, chunk: int | None = None) -> Any:
        return _sample_all(sample, s, pools, chunk)

    return programs.name_of("sampler", sample), run


def _draw(sample: Any, s: Structure, pools: Any, optimise: bool = False) -> Any:
    """The instances of a batch (device arrays), from its uniform pool (by the optimised program or
    the quick one: see :data:`verify.engine.programs.QUICK_OPTIONS`)."""
    name, run = _sampler(sample)
    return _run_in_chunks(name, run, s, pools, optimise)


@functools.lru_cache(maxsize=512)
def _chunked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(s, x, chunk=...)`` as a program function of ``static = (s, chunk)``."""

    def run(static: tuple[Structure, int], x: Any) -> Any:
        return fn(static[0], x, chunk=static[1])

    return run


def _run_in_chunks(name: str | None, fn: Callable[..., Any], s: Structure, x: Any, optimise: bool) -> Any:
    """``fn(s, x)`` by :func:`verify.engine.programs.run`, ``fn`` taking a ``chunk`` keyword
    (:func:`map_instances`): the optimised program evaluates the batch in chunks of
    :func:`chunk_size`, from the quick program's estimate, where it passes :data:`CHUNK_BYTES`."""
    n = jax.tree_util.tree_leaves(x)[0].shape[0]
    if optimise:
        found = programs.analysis(name, fn, s, x)
        chunk = n if found is None else chunk_size(found["bytes"] / max(n, 1), n)
        if chunk < n:
            return programs.run(None if name is None else f"{name} in chunks", _chunked(fn), (s, chunk), x,
                                optimise=True)
    return programs.run(name, fn, s, x, optimise=optimise)


@functools.lru_cache(maxsize=256)
def batch_evaluator(prop: Any, sample: Any, assumptions: tuple[Assumption, ...], tol: Tolerance):
    """A compiled ``(s, key_seed, n) -> dict of arrays`` for one property; cached per property. Its
    programs are the optimised ones: it measures rates (:mod:`verify.engine.rates`, the benchmarks)."""

    def run(s: Structure, xs: Any):
        return jax.vmap(lambda x: _evaluate_one(prop, assumptions, tol, s, x))(xs)

    name = programs.name_of("batch on instances", prop, assumptions, repr(tol))

    @in_float64
    def start(s: Structure, key_seed: int, n: int) -> dict[str, Any]:
        """The outputs of :func:`call` as device arrays, returned once the programs are dispatched."""
        pools, _ = draw_batch(sample, s, key_seed, n)
        with backend("jax"):
            return programs.run(name, run, s, _draw(sample, s, pools, optimise=True), optimise=True)

    def call(s: Structure, key_seed: int, n: int) -> dict[str, np.ndarray]:
        return jax.device_get(start(s, key_seed, n))

    call.start = start
    return call


def _summary_one(prop: Any, tol: Tolerance, s: Structure, x: Any) -> dict[str, Any]:
    summary = summarise(as_residuals(prop(s, x)), tol)
    finite = xp.all(xp.stack(summary["finite"]))
    ratio = xp.max(xp.stack(summary["ratios"]))
    return {"ratio": xp.where(finite, ratio, xp.inf), "absres": xp.max(xp.stack(summary["absres"])), "finite": finite,
            "score": xp.where(finite, xp.max(xp.stack(summary["scores"])), xp.inf)}


def _masks(predicates: Sequence[Any], s: Structure, x: Any) -> Any:
    if not predicates:
        return xp.zeros((0,), dtype=bool)
    values = []
    for a in predicates:
        v = xp.asarray(a.holds(s, x), dtype=bool)
        if v.shape != ():
            raise TheoremError(f"{a.name}: holds(s, x) must give one boolean per instance, got shape {tuple(v.shape)} "
                               "(combine entries with xp.all or xp.any)")
        values.append(v)
    return xp.stack(values)


@functools.lru_cache(maxsize=64)
def fused_evaluator(props: tuple[Any, ...], sample: Any, assumptions: tuple[Assumption, ...],
                    regimes: tuple[Any, ...], tol: Tolerance):
    """One compiled program per structure for every variant of a theorem (the claim and each mutant)
    on the same batch: ``(s, pools) -> {"ratio", "absres", "finite", "score": (variants, n), "holds": (n,
    assumptions), "trivial": (n, regimes)}``, on the instances the sampler's program draws from
    ``pools`` (:func:`_sampler`). The assumptions and the regimes run once, and XLA shares what the
    variants compute alike (a brute-force oracle, say)."""

    def one(s: Structure, x: Any) -> dict[str, Any]:
        outs = [_summary_one(p, tol, s, x) for p in props]
        return {
            "ratio": xp.stack([o["ratio"] for o in outs]),
            "absres": xp.stack([o["absres"] for o in outs]),
            "finite": xp.stack([o["finite"] for o in outs]),
            "score": xp.stack([o["score"] for o in outs]),
            "holds": _masks(assumptions, s, x),
            "trivial": _masks(regimes, s, x),
        }

    def on(s: Structure, xs: Any, chunk: int | None = None):
        out = map_instances(lambda x: one(s, x), xs, chunk)
        return out | {k: out[k].T for k in ("ratio", "absres", "finite", "score")}

    name = programs.name_of("fused on instances", props, assumptions, regimes, repr(tol))
    costs: dict[tuple, float | None] = {}

    @in_float64
    def on_instances(s: Structure, xs: Any, optimise: bool = False) -> dict[str, np.ndarray]:
        """The outputs for given instances (a dict of arrays with a leading instance axis)."""
        with backend("jax"):
            return jax.device_get(programs.run(name, on, s, xs, optimise=optimise))

    @in_float64
    def start(s: Structure, pools: Any, optimise: bool = False) -> dict[str, Any]:
        """The outputs of :func:`call` as device arrays, returned as soon as the programs are
        dispatched: JAX computes them while Python goes on (``jax.device_get`` waits for them)."""
        with backend("jax"):
            return _run_in_chunks(name, on, s, _draw(sample, s, pools, optimise), optimise)

    def call(s: Structure, pools: Any, optimise: bool = False) -> dict[str, np.ndarray]:
        """The outputs for the instances a batch's uniform pool draws, by the quick programs or the
        optimised ones (the sampler's and the property's)."""
        return jax.device_get(start(s, pools, optimise))

    @in_float64
    def cost(s: Structure, pools: Any) -> float | None:
        """XLA's estimate of the work of one batch, drawing and evaluating it
        (:func:`verify.engine.programs.cost`); the same for every batch of a structure and size."""
        key = (s, np.shape(pools))
        if key not in costs:
            with backend("jax"):
                sname, srun = _sampler(sample)
                parts = (programs.cost(sname, srun, s, pools), programs.cost(name, on, s, _draw(sample, s, pools)))
            costs[key] = None if None in parts else float(sum(parts))
        return costs[key]

    call.on_instances = on_instances
    call.start = start
    call.cost = cost
    return call


@in_float64
def instance_shapes(sample: Any, s: Structure) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The shape and dtype of every array the sampler draws for one instance at ``s`` (traced, never run)."""
    width = pool_width(sample, s)
    with backend("jax"):
        spec = jax.eval_shape(lambda p: _sample_all(sample, s, p), jax.ShapeDtypeStruct((1, width), np.float64))
    return {k: (tuple(v.shape[1:]), np.dtype(v.dtype)) for k, v in spec.items()}


@in_float64
def pools_of(sample: Any, s: Structure, key_seed: int, n: int) -> Any:
    """The uniform pool of a batch (as a device array): the batch's instances are ``sample`` of it."""
    return draw_batch(sample, s, key_seed, n)[0]


@functools.lru_cache(maxsize=64)
def batch_sampler(sample: Any):
    """A compiled ``(s, key_seed, n) -> batch of instances`` (NumPy arrays)."""

    @in_float64
    def call(s: Structure, key_seed: int, n: int) -> Any:
        pools, _ = draw_batch(sample, s, key_seed, n)
        with backend("jax"):
            return jax.device_get(_draw(sample, s, pools))

    return call


@functools.lru_cache(maxsize=256)
def single_evaluator(prop: Any, assumptions: tuple[Assumption, ...], tol: Tolerance):
    """A compiled float64 evaluation of one instance (used while shrinking and replaying)."""
    name = programs.name_of("single", prop, assumptions, repr(tol))

    def run(s: Structure, x: Any) -> Any:
        return _evaluate_one(prop, assumptions, tol, s, x)

    @in_float64
    def call(s: Structure, x: Any) -> dict[str, np.ndarray]:
        with backend("jax"):
            out = programs.run(name, run, s, x)
        return {k: np.asarray(v) for k, v in out.items()}

    return call


def evaluate_highprec(prop: Any, assumptions: Sequence[Assumption], tol: Tolerance, s: Structure, x: Any):
    """Evaluate one instance at 50 digits, component by component. Returns ``components``
    ({name: ratio as an mpmath number, or None for an ``xp.float64_only`` component}),
    ``absres`` (largest |r| over the components evaluated), ``finite`` and ``holds``."""
    xh = to_highprec(x)
    with backend("highprec"):
        res = as_residuals(prop(s, xh))
        evaluated = {k: r for k, r in res.items() if not isinstance(r, Float64Only)}
        summary = summarise(evaluated, tol) if evaluated else {"ratios": [], "absres": [], "finite": []}
        holds = [bool(np.asarray(a.holds(s, xh))) for a in assumptions]
    ratios = dict(zip(evaluated, summary["ratios"]))
    finite = dict(zip(evaluated, (bool(f) for f in summary["finite"])))
    return {
        "components": {k: (ratios[k] if finite[k] else mpmath.inf) if k in ratios else None for k in res},
        "absres": max(summary["absres"], default=mpmath.mpf(0)),
        "finite": all(finite.values()),
        "holds": holds,
    }


@dataclass(frozen=True)
class Judgement:
    """One instance judged in float64 and, component by component, at 50 digits.

    ``established`` says what the evidence shows about a violation: ``"real"`` (a component
    exceeds its tolerance at 50 digits), ``"float64 only"`` (it exceeds only in float64: the
    component is ``xp.float64_only``, or the 50-digit evaluation could not run; ``note`` says
    which), or ``"rounding"`` (every component that failed in float64 passes at 50 digits).
    ``holds``/``finite``/``exceeds`` come from the most precise evaluation available.
    """

    f64: dict[str, np.ndarray]
    highprec_residual: str
    highprec_ratio: str
    holds: bool
    finite: bool
    exceeds: bool
    established: str
    float64_only: tuple[str, ...] = ()
    note: str = ""


@in_float64
def judge(prop: Any, assumptions: Sequence[Assumption], tol: Tolerance, s: Structure, x: Any,
          enforce: Sequence[int]) -> Judgement:
    """Judge one instance: float64 first, then each component at 50 digits where it has a
    50-digit form. Doubt is never reported as a real violation (see :class:`Judgement`)."""
    f64 = single_evaluator(prop, tuple(assumptions), tol)(s, x)
    f64_components = np.asarray(f64["components"]).ravel()
    f64_holds = bool(np.asarray(f64["holds"])[list(enforce)].all()) if enforce else True
    try:
        hp = evaluate_highprec(prop, assumptions, tol, s, x)
    except Exception as exc:  # noqa: BLE001 - the 50-digit form broke (0/0, log 0, ...): rest on float64
        why = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return Judgement(f64, f"n/a ({why})", "n/a", f64_holds, bool(f64["finite"]), bool(f64["ratio"] > 1),
                         "float64 only", note=f"the 50-digit evaluation failed ({why})")
    names = list(hp["components"])
    f64_failing = [n for n, r in zip(names, f64_components) if not r <= 1.0]
    skipped = tuple(n for n in names if hp["components"][n] is None)
    evaluated = {n: r for n, r in hp["components"].items() if r is not None}
    hp_failing = [n for n, r in evaluated.items() if not r <= 1]
    holds = all(hp["holds"][i] for i in enforce)
    worst = max(evaluated.values(), default=None)
    hp_ratio = str(worst) if worst is not None else "n/a (every component is float64-only)"
    if hp_failing:
        return Judgement(f64, str(hp["absres"]), hp_ratio, holds, hp["finite"], True, "real", skipped)
    unconfirmed = [n for n in f64_failing if n in skipped]
    if unconfirmed:
        return Judgement(f64, str(hp["absres"]), hp_ratio, holds, bool(f64["finite"]), True, "float64 only",
                         skipped, note=f"the failing components {', '.join(unconfirmed)} are float64-only")
    return Judgement(f64, str(hp["absres"]), hp_ratio, holds, hp["finite"], False, "rounding", skipped)


def release_compiled() -> None:
    """Drop every compiled program held in memory (the on-disk XLA cache stays).

    Each compiled XLA CPU program keeps its own memory mappings; a run over the whole catalogue
    compiles thousands, and past the kernel's map limit (vm.max_map_count, often 65530) LLVM
    fails with "Cannot allocate memory". The runner calls this after each theorem.
    """
    for cached in (batch_evaluator, fused_evaluator, batch_sampler, single_evaluator):
        cached.cache_clear()
    programs.release(keep=programs.MAX_PROGRAMS // 4)
    jax.clear_caches()
