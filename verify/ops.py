"""The array namespace ``xp`` that properties and assumptions are written against.

A property is written once, as ordinary array code over ``xp``. The engine runs it on two
backends:

* ``jax``: ``jax.numpy`` in float64, traced under ``jit(vmap(...))`` for batched search;
* ``highprec``: NumPy object arrays of :mod:`mpmath` numbers at 50 significant digits, used
  to re-evaluate a counterexample far from float64 rounding. Every float64 input converts to
  an ``mpf`` exactly, so the only rounding left is at 50 digits.

``xp`` dispatches to whichever backend is active (a context variable), so a property module
only writes ``from verify import xp``. Functions beyond the common NumPy subset (``relu``,
``heaviside``) are defined here for both backends with the same conventions.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from pathlib import Path
from typing import Any, Iterator

import jax

jax.config.update("jax_enable_x64", True)


def _enable_compilation_cache() -> None:
    """Keep compiled XLA programs on disk: a theorem's checks compile many small programs
    (~0.3 s each on CPU), and a second run reuses them. ``DLVERIFY_XLA_CACHE=off`` disables
    it; any other value is the directory (default ``~/.cache/dlverify/xla``)."""
    where = os.environ.get("DLVERIFY_XLA_CACHE", "")
    if where.lower() in ("off", "0", "no", "false"):
        return
    path = Path(where) if where else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dlverify" / "xla"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only home: run without the cache
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.05)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


_enable_compilation_cache()

import jax.numpy as jnp  # noqa: E402  (x64 must be enabled before first use)
import mpmath  # noqa: E402
import numpy as np  # noqa: E402

#: decimal digits of the high-precision backend
HIGHPREC_DIGITS = 50

_backend: contextvars.ContextVar[str] = contextvars.ContextVar("dlverify_backend", default="jax")


class _JaxOps:
    """``jax.numpy`` plus the few functions every backend defines alike."""

    name = "jax"

    def __getattr__(self, attr: str) -> Any:
        return getattr(jnp, attr)

    @staticmethod
    def relu(x: Any) -> Any:
        # ReLU'(0) = 0 under jax.grad, as jax.nn.relu. (jnp.maximum(x, 0) would give 1/2 at 0:
        # JAX splits the gradient of maximum at ties.)
        return jnp.where(x > 0, x, 0.0)

    @staticmethod
    def heaviside(x: Any) -> Any:
        """Indicator [x > 0]: 0 at x = 0 (SymPy's Heaviside(0) is 1/2; we never use that)."""
        return jnp.where(x > 0, 1.0, 0.0)


class _HighPrecOps:
    """NumPy on object arrays of ``mpmath.mpf`` (50 digits)."""

    name = "highprec"

    def __getattr__(self, attr: str) -> Any:
        return getattr(np, attr)

    @staticmethod
    def _mpf(v: Any) -> Any:
        return v if isinstance(v, mpmath.mpf) else mpmath.mpf(float(v))

    def asarray(self, a: Any, dtype: Any = None) -> np.ndarray:
        """Booleans and integers stay as they are; every other number becomes an ``mpf``."""
        if dtype is not None and np.dtype(dtype).kind in "biu":
            return np.asarray(a, dtype=dtype)
        arr = np.asarray(a)
        if arr.dtype == object or arr.dtype.kind in "biu":
            return arr
        return np.vectorize(self._mpf, otypes=[object])(arr) if arr.size else arr.astype(object)

    array = asarray

    def zeros(self, shape: Any, dtype: Any = None) -> np.ndarray:
        return self.asarray(np.zeros(shape, dtype=dtype or float))

    def ones(self, shape: Any, dtype: Any = None) -> np.ndarray:
        return self.asarray(np.ones(shape, dtype=dtype or float))

    def relu(self, x: Any) -> Any:
        return np.where(np.asarray(x) > 0, x, mpmath.mpf(0))

    def heaviside(self, x: Any) -> Any:
        return np.where(np.asarray(x) > 0, mpmath.mpf(1), mpmath.mpf(0))

    def sqrt(self, x: Any) -> Any:
        return np.vectorize(mpmath.sqrt, otypes=[object])(x)

    def exp(self, x: Any) -> Any:
        return np.vectorize(mpmath.exp, otypes=[object])(x)

    def log(self, x: Any) -> Any:
        return np.vectorize(mpmath.log, otypes=[object])(x)

    def isfinite(self, x: Any) -> Any:
        return np.vectorize(lambda v: bool(mpmath.isfinite(v)), otypes=[bool])(x)


_OPS = {"jax": _JaxOps(), "highprec": _HighPrecOps()}


class _Dispatch:
    """The public ``xp``: forwards every attribute to the backend active *when it is used*.

    Functions are looked up at call time, so ``f = xp.relu`` taken at import still follows
    the backend (``jax`` while searching, ``highprec`` while re-evaluating a counterexample).
    """

    def __getattr__(self, attr: str) -> Any:
        value = getattr(_OPS[_backend.get()], attr)
        if callable(value) and not isinstance(value, type):
            return _LateBound(attr)
        return value

    def __repr__(self) -> str:
        return f"<dlverify xp: {_backend.get()} backend>"


class _LateBound:
    __slots__ = ("attr",)

    def __init__(self, attr: str) -> None:
        self.attr = attr

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(_OPS[_backend.get()], self.attr)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<xp.{self.attr}>"


xp = _Dispatch()


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    """Run the enclosed code with ``xp`` bound to backend ``name`` ('jax' or 'highprec')."""
    if name not in _OPS:
        raise ValueError(f"unknown backend {name!r}; expected one of {sorted(_OPS)}")
    token = _backend.set(name)
    try:
        with mpmath.workdps(HIGHPREC_DIGITS):
            yield
    finally:
        _backend.reset(token)


def to_highprec(tree: Any) -> Any:
    """Convert a pytree of float64 arrays to object arrays of exact ``mpf`` values."""
    ops = _OPS["highprec"]
    with mpmath.workdps(HIGHPREC_DIGITS):
        return jax.tree_util.tree_map(lambda a: ops.asarray(np.asarray(a)), tree)
