"""The numeric face: residuals, tolerances, and batched float64 evaluation under jit(vmap).

A property maps one instance to a :class:`Residual` (or a dict of named residuals). The
engine draws a batch of instances from one JAX key with the theorem's sampler, evaluates the
property and every assumption on all of them in one compiled call, and hands back plain NumPy
arrays: per instance, the worst ``|r| / (atol + rtol * scale)`` ratio, whether everything was
finite, and which assumptions held.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple, Sequence

import jax
import numpy as np

from verify.ops import backend, to_highprec, xp
from verify.sampling import Rng
from verify.spec import Assumption, Tolerance

#: a bound below this is treated as this, so that an exact (zero-tolerance) claim divides safely
_TINY = 1e-300


class Residual(NamedTuple):
    """``value`` should be 0; ``scale`` is the size of the terms that cancel in it."""

    value: Any
    scale: Any


def residual(lhs: Any, rhs: Any, scale: Any = None) -> Residual:
    """``lhs - rhs`` with the size of the cancelling terms (default ``max(|lhs|, |rhs|)``)."""
    if scale is None:
        scale = xp.maximum(xp.abs(lhs), xp.abs(rhs))
    return Residual(lhs - rhs, scale)


class Structure(Mapping):
    """The discrete part of an instance drawn by Hypothesis: a hashable, read-only mapping
    with attribute access (``s.D`` or ``s["D"]``), usable as a static ``jit`` argument."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_data", {k: _freeze(v) for k, v in sorted(dict(data).items())})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Structure is read-only")

    def __iter__(self):  # type: ignore[override]
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(tuple(self._data.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Structure) and self._data == other._data

    def __repr__(self) -> str:
        return "Structure(" + ", ".join(f"{k}={v!r}" for k, v in self._data.items()) + ")"

    def as_json(self) -> dict[str, Any]:
        return {k: _thaw(v) for k, v in self._data.items()}


def _freeze(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(i) for i in v)
    if isinstance(v, Mapping):
        return Structure(v)
    return v


def _thaw(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_thaw(i) for i in v]
    if isinstance(v, Structure):
        return v.as_json()
    return v


def as_residuals(out: Any) -> dict[str, Residual]:
    """Normalise a property's return value to ``{component name: Residual}``."""
    if isinstance(out, Residual):
        return {"residual": out}
    if isinstance(out, Mapping) and out and all(isinstance(v, Residual) for v in out.values()):
        return dict(out)
    raise TypeError(
        "a property must return verify.residual(...) / verify.Residual or a non-empty dict of them, "
        f"got {type(out).__name__}"
    )


def summarise(res: dict[str, Residual], tol: Tolerance) -> dict[str, Any]:
    """Per-component worst tolerance ratio and largest |residual|, on the active backend."""
    ratios, absres, finite = [], [], []
    for r in res.values():
        value = xp.asarray(r.value)
        bound = tol.bound(xp.abs(xp.asarray(r.scale)))
        a = xp.abs(value)
        ratios.append(xp.max(a / xp.maximum(bound, _TINY)))
        absres.append(xp.max(a))
        finite.append(xp.all(xp.isfinite(value)) & xp.all(xp.isfinite(xp.asarray(r.scale))))
    return {"ratios": ratios, "absres": absres, "finite": finite}


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


@functools.lru_cache(maxsize=None)
def _uniform_pool(n: int, width: int):
    """``n`` instances' worth of uniforms in (0, 1]: compiled once per (batch size, width)."""
    return jax.jit(lambda key_seed: 1.0 - jax.random.uniform(jax.random.key(key_seed), (n, width)))


@functools.lru_cache(maxsize=1024)
def pool_width(sample: Any, s: Structure) -> int:
    """How many uniforms one instance of ``s`` needs, rounded up to a power of two (>= 16)."""
    rng = Rng(None)
    jax.eval_shape(lambda: sample(rng, s))
    return max(16, 1 << max(rng.used - 1, 0).bit_length())


def draw_batch(sample: Any, s: Structure, key_seed: int, n: int) -> tuple[Any, int]:
    """The uniform pool for a batch (a device array) and its width."""
    width = pool_width(sample, s)
    with backend("jax"):
        return _uniform_pool(n, width)(np.uint32(key_seed)), width


def _sample_all(sample: Any, s: Structure, pools: Any) -> Any:
    xs = jax.vmap(lambda pool: sample(Rng(pool), s))(pools)
    if not isinstance(xs, dict):
        raise TypeError(f"sample must return a dict of arrays, got {type(xs).__name__}")
    return xs


@functools.lru_cache(maxsize=256)
def batch_evaluator(prop: Any, sample: Any, assumptions: tuple[Assumption, ...], tol: Tolerance):
    """A compiled ``(s, key_seed, n) -> dict of arrays`` for one property; cached per property."""

    def run(s: Structure, pools: Any):
        xs = _sample_all(sample, s, pools)
        return jax.vmap(lambda x: _evaluate_one(prop, assumptions, tol, s, x))(xs)

    jitted = jax.jit(run, static_argnums=0)

    def call(s: Structure, key_seed: int, n: int) -> dict[str, np.ndarray]:
        pools, _ = draw_batch(sample, s, key_seed, n)
        with backend("jax"):
            out = jitted(s, pools)
        return {k: np.asarray(v) for k, v in out.items()}

    return call


@functools.lru_cache(maxsize=64)
def batch_sampler(sample: Any):
    """A compiled ``(s, key_seed, n) -> batch of instances`` (NumPy arrays)."""
    jitted = jax.jit(lambda s, pools: _sample_all(sample, s, pools), static_argnums=0)

    def call(s: Structure, key_seed: int, n: int) -> Any:
        pools, _ = draw_batch(sample, s, key_seed, n)
        with backend("jax"):
            return jax.tree_util.tree_map(np.asarray, jitted(s, pools))

    return call


@functools.lru_cache(maxsize=256)
def single_evaluator(prop: Any, assumptions: tuple[Assumption, ...], tol: Tolerance):
    """A compiled float64 evaluation of one instance (used while shrinking and replaying)."""
    jitted = jax.jit(lambda s, x: _evaluate_one(prop, assumptions, tol, s, x), static_argnums=0)

    def call(s: Structure, x: Any) -> dict[str, np.ndarray]:
        with backend("jax"):
            out = jitted(s, x)
        return {k: np.asarray(v) for k, v in out.items()}

    return call


def evaluate_highprec(prop: Any, assumptions: Sequence[Assumption], tol: Tolerance, s: Structure, x: Any):
    """Evaluate one instance at 50 digits. Returns the same fields as the float64 path, as
    Python values (``ratio`` and ``absres`` as mpmath numbers)."""
    xh = to_highprec(x)
    with backend("highprec"):
        out = _evaluate_one(prop, tuple(assumptions), tol, s, xh)
    return {
        "ratio": out["ratio"],
        "components": list(np.asarray(out["components"]).ravel()),
        "absres": out["absres"],
        "finite": bool(out["finite"]),
        "holds": [bool(h) for h in np.asarray(out["holds"]).ravel()],
    }


def judge(prop: Any, assumptions: Sequence[Assumption], tol: Tolerance, s: Structure, x: Any,
          enforce: Sequence[int]) -> dict[str, Any]:
    """One instance judged in float64 and, where the property has a 50-digit form, at 50 digits.

    Returns the float64 fields (``f64``), the 50-digit residual and ratio as text (``n/a (why)``
    when the property cannot run there, e.g. it uses ``jax.grad``), and, from the most precise
    evaluation available: whether the enforced assumptions hold, whether the residual is finite,
    and whether it exceeds the tolerance.
    """
    f64 = single_evaluator(prop, tuple(assumptions), tol)(s, x)
    try:
        hp = evaluate_highprec(prop, assumptions, tol, s, x)
    except Exception as exc:  # noqa: BLE001 - no 50-digit form: judge in float64, and say so
        why = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return {
            "f64": f64, "highprec_residual": f"n/a ({why})", "highprec_ratio": "n/a",
            "holds": bool(np.asarray(f64["holds"])[list(enforce)].all()), "finite": bool(f64["finite"]),
            "exceeds": bool(f64["ratio"] > 1),
        }
    return {
        "f64": f64, "highprec_residual": str(hp["absres"]), "highprec_ratio": str(hp["ratio"]),
        "holds": all(hp["holds"][i] for i in enforce), "finite": hp["finite"], "exceeds": bool(hp["ratio"] > 1),
    }


def release_compiled() -> None:
    """Drop every compiled program held in memory (the on-disk XLA cache stays).

    Each compiled XLA CPU program keeps its own memory mappings; a run over the whole catalogue
    compiles thousands, and past the kernel's map limit (vm.max_map_count, often 65530) LLVM
    fails with "Cannot allocate memory". The runner calls this after each theorem.
    """
    for cached in (batch_evaluator, batch_sampler, single_evaluator, _uniform_pool):
        cached.cache_clear()
    jax.clear_caches()
