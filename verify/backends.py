"""The array namespace ``xp`` that properties, assumptions and samplers are written against.

A property is written once, as ordinary array code over ``xp``. The engine runs it on two
backends:

* ``jax``: ``jax.numpy`` in float64, traced under ``jit(vmap(...))`` for batched search;
* ``highprec``: NumPy object arrays of :mod:`mpmath` numbers at 50 significant digits, used to
  re-evaluate a counterexample far from float64 rounding. Every float64 input converts to an
  ``mpf`` exactly, so the only rounding left is at 50 digits.

The contract is the explicit list :data:`CONTRACT`: every name in it works on both backends with
the same conventions (``relu`` and ``heaviside`` are 0 at 0, also under ``jax.grad``). A name
outside the list raises :class:`XpError` naming it, on both backends, so a property that would
not run at 50 digits fails the moment it is written, not when a counterexample is judged.

Claims about JAX itself (what ``jax.grad`` returns at a tie, say) have no 50-digit form. Such a
component is written ``xp.float64_only(lambda: residual(...))``: on the ``jax`` backend the
thunk runs; on ``highprec`` it is skipped, and the engine reports that component as "float64
only". Inside the thunk, ``xp.jax`` is the ``jax`` module itself.

``xp`` dispatches to whichever backend is active (a context variable), so a theorem module only
writes ``from verify import xp`` and never branches on the backend.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Any, Callable, Iterator

import mpmath
import numpy as np

from verify.errors import TheoremError

#: decimal digits of the high-precision backend
HIGHPREC_DIGITS = 50

#: what ``xp`` offers, on every backend
CONTRACT = frozenset({
    # building and reshaping arrays
    "asarray", "array", "zeros", "ones", "zeros_like", "ones_like", "full", "eye", "arange",
    "stack", "concatenate", "reshape", "transpose", "diagonal", "outer", "einsum", "matmul",
    "dot", "where", "take", "flip", "broadcast_to", "expand_dims", "squeeze", "tile", "repeat",
    # reductions
    "sum", "prod", "max", "min", "mean", "all", "any", "argmax", "argmin", "cumsum",
    # elementwise
    "abs", "sign", "sqrt", "square", "exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh",
    "arctan", "maximum", "minimum", "clip", "floor", "ceil", "isfinite", "isnan",
    # the conventions every backend shares
    "relu", "heaviside", "segment_sum",
    # constants and dtypes
    "inf", "pi", "e", "newaxis", "float64", "int64", "bool_",
    # claims about JAX itself
    "float64_only", "jax",
})


class XpError(TheoremError):
    """A property used a name that is not part of the ``xp`` contract."""


class Float64Only:
    """The value of an ``xp.float64_only`` component on a backend without JAX."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<float64-only component>"


FLOAT64_ONLY = Float64Only()

_backend: contextvars.ContextVar[str] = contextvars.ContextVar("dlverify_backend", default="jax")


def _not_in_contract(attr: str) -> XpError:
    return XpError(
        f"xp.{attr} is not part of the xp contract (it has no 50-digit form here); use one of "
        f"{', '.join(sorted(n for n in CONTRACT if n[0].isalpha()))}; a component that needs JAX itself "
        "goes inside xp.float64_only(lambda: ...)"
    )


#: below this many (segments x entries), segment_sum is a constant 0/1 matrix product, which
#: compiles faster than a scatter
_DENSE_SEGMENT_LIMIT = 1 << 16


@functools.lru_cache(maxsize=4096)
def _indicator(ids_bytes: bytes, n: int, m: int) -> np.ndarray:
    ids = np.frombuffer(ids_bytes, dtype=np.int64)
    out = np.zeros((m, n))
    out[ids, np.arange(n)] = 1.0
    return out


class _JaxOps:
    """``jax.numpy`` restricted to the contract, plus the functions every backend defines alike."""

    name = "jax"

    def __getattr__(self, attr: str) -> Any:
        import jax.numpy as jnp

        if attr not in CONTRACT:
            raise _not_in_contract(attr)
        return getattr(jnp, attr)

    @staticmethod
    def relu(x: Any) -> Any:
        import jax.numpy as jnp

        # ReLU'(0) = 0 under jax.grad, as jax.nn.relu. (jnp.maximum(x, 0) would give 1/2 at 0:
        # JAX splits the gradient of maximum at ties.)
        return jnp.where(x > 0, x, 0.0)

    @staticmethod
    def heaviside(x: Any) -> Any:
        """Indicator [x > 0]: 0 at x = 0 (SymPy's Heaviside(0) is 1/2; we never use that)."""
        import jax.numpy as jnp

        return jnp.where(x > 0, 1.0, 0.0)

    @staticmethod
    def segment_sum(vals: Any, ids: np.ndarray, num_segments: int) -> Any:
        """``out[a] = sum over x with ids[x] = a of vals[x]`` (leading axis); ``ids`` is a NumPy array."""
        import jax

        ids = np.asarray(ids, dtype=np.int64)
        if num_segments * len(ids) <= _DENSE_SEGMENT_LIMIT:
            import jax.numpy as jnp

            return jnp.asarray(_indicator(ids.tobytes(), len(ids), num_segments)) @ vals
        return jax.ops.segment_sum(vals, ids, num_segments=num_segments)

    @staticmethod
    def float64_only(thunk: Callable[[], Any]) -> Any:
        return thunk()

    @property
    def jax(self) -> Any:
        import jax

        return jax


def _elementwise(fn: Callable[[Any], Any], otype: Any = object) -> Callable[[Any], Any]:
    vec = np.vectorize(fn, otypes=[otype])

    def apply(x: Any) -> Any:
        arr = np.asarray(x)
        return vec(arr) if arr.size else arr.astype(otype)

    return apply


class _SkipsClaimsAboutJax:
    """A backend other than JAX: a claim about JAX itself (``xp.float64_only``) is skipped."""

    @staticmethod
    def float64_only(thunk: Callable[[], Any]) -> Any:
        return FLOAT64_ONLY

    @property
    def jax(self) -> Any:
        raise XpError("xp.jax is only available inside xp.float64_only(lambda: ...)")


class _HighPrecOps(_SkipsClaimsAboutJax):
    """NumPy on object arrays of ``mpmath.mpf`` (50 digits), restricted to the contract."""

    name = "highprec"

    #: contract names NumPy already computes exactly on object arrays (comparisons, +, *, /)
    _NUMPY = frozenset({
        "stack", "concatenate", "reshape", "transpose", "diagonal", "outer", "einsum", "matmul", "dot",
        "where", "take", "flip", "broadcast_to", "expand_dims", "squeeze", "tile", "repeat",
        "sum", "prod", "max", "min", "mean", "all", "any", "argmax", "argmin", "cumsum",
        "abs", "sign", "square", "maximum", "minimum", "clip", "arange",
        "inf", "newaxis", "float64", "int64", "bool_",
    })

    def __init__(self) -> None:
        mp = mpmath.mp
        self._mp_functions = {
            "sqrt": _elementwise(lambda v: mp.sqrt(v)),
            "exp": _elementwise(lambda v: mp.exp(v)),
            "log": _elementwise(lambda v: mp.log(v)),
            "log1p": _elementwise(lambda v: mp.log1p(v)),
            "expm1": _elementwise(lambda v: mp.expm1(v)),
            "sin": _elementwise(lambda v: mp.sin(v)),
            "cos": _elementwise(lambda v: mp.cos(v)),
            "tan": _elementwise(lambda v: mp.tan(v)),
            "tanh": _elementwise(lambda v: mp.tanh(v)),
            "arctan": _elementwise(lambda v: mp.atan(v)),
            "floor": _elementwise(lambda v: mp.floor(v)),
            "ceil": _elementwise(lambda v: mp.ceil(v)),
            "isfinite": _elementwise(lambda v: bool(mp.isfinite(v)), bool),
            "isnan": _elementwise(lambda v: bool(mp.isnan(v)), bool),
        }

    def __getattr__(self, attr: str) -> Any:
        if attr not in CONTRACT:
            raise _not_in_contract(attr)
        if attr in self._mp_functions:
            return self._mp_functions[attr]
        if attr in self._NUMPY:
            return getattr(np, attr)
        if attr in ("pi", "e"):
            return getattr(mpmath.mp, attr) * 1
        raise AssertionError(f"xp.{attr} is in the contract but has no 50-digit implementation")  # pragma: no cover

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

    def full(self, shape: Any, value: Any, dtype: Any = None) -> np.ndarray:
        return self.asarray(np.full(shape, value, dtype=dtype or object))

    def zeros_like(self, a: Any, dtype: Any = None) -> np.ndarray:
        return self.zeros(np.shape(a), dtype)

    def ones_like(self, a: Any, dtype: Any = None) -> np.ndarray:
        return self.ones(np.shape(a), dtype)

    def eye(self, n: int, m: int | None = None, dtype: Any = None) -> np.ndarray:
        return self.asarray(np.eye(n, m, dtype=dtype or float))

    def relu(self, x: Any) -> Any:
        return np.where(np.asarray(x) > 0, x, mpmath.mpf(0))

    def heaviside(self, x: Any) -> Any:
        return np.where(np.asarray(x) > 0, mpmath.mpf(1), mpmath.mpf(0))

    def segment_sum(self, vals: Any, ids: np.ndarray, num_segments: int) -> Any:
        vals = np.asarray(vals, dtype=object)
        out = np.empty((num_segments,) + vals.shape[1:], dtype=object)
        out[...] = mpmath.mpf(0)
        np.add.at(out, np.asarray(ids, dtype=np.int64), vals)
        return out


class _NumpyOps(_SkipsClaimsAboutJax):
    """NumPy in float64, restricted to the contract: one instance evaluated eagerly (the engine's
    cross-check of a claim against its property) without JAX's dispatch per operation. A claim
    about JAX itself (``xp.float64_only``) is skipped here, as at 50 digits."""

    name = "numpy"

    def __getattr__(self, attr: str) -> Any:
        if attr not in CONTRACT:
            raise _not_in_contract(attr)
        return getattr(np, attr)

    @staticmethod
    def relu(x: Any) -> Any:
        return np.where(np.asarray(x) > 0, x, 0.0)

    @staticmethod
    def heaviside(x: Any) -> Any:
        return np.where(np.asarray(x) > 0, 1.0, 0.0)

    @staticmethod
    def segment_sum(vals: Any, ids: np.ndarray, num_segments: int) -> Any:
        vals = np.asarray(vals, dtype=np.float64)
        out = np.zeros((num_segments,) + vals.shape[1:])
        np.add.at(out, np.asarray(ids, dtype=np.int64), vals)
        return out


_OPS = {"jax": _JaxOps(), "highprec": _HighPrecOps(), "numpy": _NumpyOps()}


class _Dispatch:
    """The public ``xp``: forwards every attribute to the backend active *when it is used*.

    Functions are looked up at call time, so ``f = xp.relu`` taken at import still follows
    the backend (``jax`` while searching, ``highprec`` while re-evaluating a counterexample).
    """

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr not in CONTRACT:
            raise _not_in_contract(attr)
        if attr == "jax":
            return _OPS[_backend.get()].jax
        value = getattr(_OPS[_backend.get()], attr)
        if callable(value) and not isinstance(value, type):
            return _LateBound(attr)
        return value

    def __dir__(self) -> list[str]:
        return sorted(CONTRACT)

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


def active_backend() -> str:
    """The backend ``xp`` is bound to now (for the engine; theorem modules never branch on it)."""
    return _backend.get()


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    """Run the enclosed code with ``xp`` bound to backend ``name`` ('jax', 'highprec' or 'numpy')."""
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
    import jax

    ops = _OPS["highprec"]
    with mpmath.workdps(HIGHPREC_DIGITS):
        return jax.tree_util.tree_map(lambda a: ops.asarray(np.asarray(a)), tree)
