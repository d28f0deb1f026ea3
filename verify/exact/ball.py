"""Certify a counterexample: re-evaluate its residual exactly (rationals) or in ball arithmetic.

A float64 counterexample re-evaluated at 50 digits is strong evidence, not a proof. This module
re-runs the same property, written over ``xp``, on two more backends (NumPy object arrays of
scalars, like ``verify.backends``' 50-digit backend):

* :class:`ExactOps`: exact rationals (``fractions.Fraction``). Every float64 input and every
  float constant of the property converts exactly. A function that leaves the rationals
  (``exp``, ``log``, ``tanh``, ``sqrt`` of a non-square) raises :class:`NotRational`.
* :class:`BallOps`: ball (interval) arithmetic, python-flint's ``arb`` at 128 bits when it is
  installed, else mpmath's interval type ``iv`` at 128 bits. Every value is an enclosure of the
  exact value of the same expression.

Both backends have an explicit list of functions (:data:`SUPPORTED`); any other ``xp.NAME``
raises :class:`UnsupportedFunction` naming it. Comparisons fail closed: a comparison of balls
that the enclosures cannot decide (a ball straddling the threshold, or two overlapping balls)
raises :class:`Undecided` rather than guessing, as do ``sign``, ``heaviside``, ``argmax`` and
truth tests. ``maximum``, ``minimum``, ``max``, ``min``, ``relu`` and ``abs`` are continuous and
need no decision: they return an enclosure.

:func:`certify` tries exact rationals, then balls, and reports ``certified`` only when every
enforced assumption holds certainly, everything is finite, and some residual component's
``|value|`` is certainly larger than its tolerance bound ``atol + rtol * |scale|``.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import operator
import sys
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import mpmath
import numpy as np
from mpmath import libmp

from verify import Residual

try:
    import flint
except ImportError:  # optional extra: fall back to mpmath's intervals
    flint = None

#: working precision of the ball backends, in bits
BALL_BITS = 128

METHOD_EXACT = "exact rationals"
METHOD_ARB = f"ball arithmetic (arb, {BALL_BITS} bits)"
METHOD_IV = "ball arithmetic (mpmath iv)"


class Undecided(ArithmeticError):
    """A comparison (or sign, or truth test) that the enclosures cannot decide."""


class NotRational(ArithmeticError):
    """A function whose value leaves the rationals (``exp``, ``log``, ...)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"property uses {name}: not rational")


class UnsupportedFunction(AttributeError):
    """``xp.NAME`` that this backend does not provide."""


_HERE = str(Path(__file__).resolve().parent)
#: where the ``verify`` and ``theorems`` packages lie: a line of theirs is shown from there
#: (``verify/models/linalg.py:115``), the same wherever dlverify is installed, so that a record
#: that names it (and the record's content hash) does not depend on the installation's path
_PACKAGES = str(Path(__file__).resolve().parents[2])


def _where() -> str:
    """``file:line`` of the innermost caller outside this package and NumPy (the property's line)."""
    f = sys._getframe(1)
    while f is not None:
        name = f.f_code.co_filename
        if not (name.startswith(_HERE) or "/numpy/" in name.replace("\\", "/") or name == _xp_file()):
            return f"{_shown(name)}:{f.f_lineno}"
        f = f.f_back
    return "?"


def _shown(name: str) -> str:
    """A file as a record names it: from the package for dlverify's own files, else from the
    working directory, else as it is."""
    path = Path(name).resolve()
    try:
        own = path.relative_to(_PACKAGES)
        if own.parts[0] in ("verify", "theorems"):
            return own.as_posix()
    except ValueError:
        pass
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return name


# ============================================================================ scalars


def _xp_file() -> str:
    try:
        return _xp_module().__file__ or ""
    except ImportError:
        return ""


def _fraction_of_float(f: float) -> Fraction:
    if not math.isfinite(f):
        raise NotRational(f"the non-finite number {f}")
    return Fraction(f)


class _Num:
    """A scalar of one backend. Arithmetic returns the same class; ``_coerce`` lifts Python and
    NumPy numbers exactly (a float is the binary number it is), anything else is NotImplemented."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    # subclasses provide: _coerce(o) -> raw or None; _bounds() -> (lo, hi) Fractions or +-inf floats;
    # _is_finite(); _pow(n)

    def _bin(self, other: Any, op: Callable[[Any, Any], Any], reflected: bool = False) -> Any:
        o = self._coerce(other)
        if o is None:
            return NotImplemented
        return type(self)(op(o, self.v) if reflected else op(self.v, o))

    def __add__(self, o: Any) -> Any:
        return self._bin(o, operator.add)

    def __radd__(self, o: Any) -> Any:
        return self._bin(o, operator.add, True)

    def __sub__(self, o: Any) -> Any:
        return self._bin(o, operator.sub)

    def __rsub__(self, o: Any) -> Any:
        return self._bin(o, operator.sub, True)

    def __mul__(self, o: Any) -> Any:
        return self._bin(o, operator.mul)

    def __rmul__(self, o: Any) -> Any:
        return self._bin(o, operator.mul, True)

    def __truediv__(self, o: Any) -> Any:
        return self._bin(o, self._div)

    def __rtruediv__(self, o: Any) -> Any:
        return self._bin(o, self._div, True)

    def __neg__(self) -> Any:
        return type(self)(-self.v)

    def __pos__(self) -> Any:
        return self

    def __pow__(self, n: Any) -> Any:
        if isinstance(n, _Num):
            lo, hi = n._bounds()
            if lo == hi and isinstance(lo, Fraction) and lo.denominator == 1:
                n = int(lo)
        if isinstance(n, (int, np.integer)) and not isinstance(n, bool):
            return type(self)(self._pow(int(n)))
        if isinstance(n, float) and n.is_integer():
            return type(self)(self._pow(int(n)))
        raise NotRational(f"a non-integer power (** {n})")

    # ---------------------------------------------------------------- decisions

    def _decide(self, other: Any, symbol: str) -> bool:
        o = other if isinstance(other, _Num) else self._lift(other)
        if o is NotImplemented:
            return NotImplemented  # type: ignore[return-value]
        (alo, ahi), (blo, bhi) = self._bounds(), o._bounds()
        if any(isinstance(t, float) and math.isnan(t) for t in (alo, ahi, blo, bhi)):
            raise Undecided(f"comparison {self} {symbol} {o} with NaN, at {_where()}")
        if symbol in ("<", ">="):
            certain, certainly_not = ahi < blo, alo >= bhi
        elif symbol in (">", "<="):
            certain, certainly_not = alo > bhi, ahi <= blo
        else:  # == and !=
            certain = alo == ahi == blo == bhi  # two equal points (NaN was excluded above)
            certainly_not = ahi < blo or bhi < alo
        if symbol in (">=", "<=", "!="):
            certain, certainly_not = certainly_not, certain
        if certain:
            return True
        if certainly_not:
            return False
        raise Undecided(f"comparison {self} {symbol} {o} undecided (the enclosures overlap), at {_where()}")

    def __lt__(self, o: Any) -> bool:
        return self._decide(o, "<")

    def __le__(self, o: Any) -> bool:
        return self._decide(o, "<=")

    def __gt__(self, o: Any) -> bool:
        return self._decide(o, ">")

    def __ge__(self, o: Any) -> bool:
        return self._decide(o, ">=")

    def __eq__(self, o: Any) -> bool:  # type: ignore[override]
        return self._decide(o, "==")

    def __ne__(self, o: Any) -> bool:  # type: ignore[override]
        return self._decide(o, "!=")

    def __bool__(self) -> bool:
        return self._decide(0, "!=")

    __hash__ = None  # type: ignore[assignment]

    def _lift(self, other: Any) -> Any:
        raw = self._coerce(other)
        return NotImplemented if raw is None else type(self)(raw)

    def sign(self) -> int:
        lo, hi = self._bounds()  # NaN bounds fail every test below: undecided
        if lo > 0:
            return 1
        if hi < 0:
            return -1
        if lo == hi == 0:
            return 0
        raise Undecided(f"sign of {self} undecided (the enclosure contains 0 and more), at {_where()}")

    def lower_abs(self) -> Fraction | float:
        """A lower bound of ``|self|`` (exact)."""
        lo, hi = self._bounds()
        if lo > 0:
            return lo
        if hi < 0:
            return -hi
        return Fraction(0)

    def upper(self) -> Fraction | float:
        return self._bounds()[1]

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class Q(_Num):
    """An exact rational."""

    __slots__ = ()

    @staticmethod
    def _coerce(o: Any) -> Fraction | None:
        if isinstance(o, Q):
            return o.v
        if isinstance(o, (bool, np.bool_)):
            return Fraction(int(o))
        if isinstance(o, (int, np.integer)):
            return Fraction(int(o))
        if isinstance(o, (float, np.floating)):
            return _fraction_of_float(float(o))
        if isinstance(o, Fraction):
            return o
        return None

    @staticmethod
    def _div(a: Fraction, b: Fraction) -> Fraction:
        if b == 0:
            raise ZeroDivisionError("division by zero in exact rationals")
        return a / b

    def _pow(self, n: int) -> Fraction:
        if n < 0 and self.v == 0:
            raise ZeroDivisionError("0 ** negative in exact rationals")
        return self.v ** n

    def _bounds(self) -> tuple[Fraction, Fraction]:
        return self.v, self.v

    def _is_finite(self) -> bool:
        return True

    def __repr__(self) -> str:
        return str(self.v)


def _arb_bounds(x: Any) -> tuple[Fraction | float, Fraction | float]:
    if x.is_nan():
        return math.nan, math.nan
    if not x.is_finite():
        if x.is_exact():  # radius 0: exactly +inf or -inf
            return (math.inf, math.inf) if x > 0 else (-math.inf, -math.inf)
        return -math.inf, math.inf  # an infinite radius: nothing decided
    lo, hi = x.lower(), x.upper()
    return _arb_fraction(lo), _arb_fraction(hi)


def _arb_fraction(x: Any) -> Fraction:
    m, e = x.man_exp()
    m, e = int(m), int(e)
    return Fraction(m * 2**e) if e >= 0 else Fraction(m, 2**-e)


def _mpf_fraction(raw: Any) -> Fraction | float:
    if raw == libmp.fnan:
        return math.nan
    if raw == libmp.finf:
        return math.inf
    if raw == libmp.fninf:
        return -math.inf
    p, q = libmp.to_rational(raw)
    return Fraction(p, q)


class ArbBall(_Num):
    """A ball of python-flint's ``arb`` (midpoint, radius), at the context's precision."""

    __slots__ = ()

    @staticmethod
    def _coerce(o: Any) -> Any:
        if isinstance(o, ArbBall):
            return o.v
        if isinstance(o, (bool, np.bool_, int, np.integer)):
            return flint.arb(int(o))
        if isinstance(o, (float, np.floating)):
            return flint.arb(float(o))  # a double converts exactly
        if isinstance(o, Fraction):
            return flint.arb(flint.fmpq(o.numerator, o.denominator))
        return None

    @staticmethod
    def _div(a: Any, b: Any) -> Any:
        return a / b  # a ball containing 0 as divisor gives a non-finite ball

    def _pow(self, n: int) -> Any:
        return self.v ** n

    def _bounds(self):
        return _arb_bounds(self.v)

    def _is_finite(self) -> bool:
        return bool(self.v.is_finite())

    def __repr__(self) -> str:
        return str(self.v)


class IvBall(_Num):
    """An interval of mpmath's ``iv`` (lower and upper endpoints), at ``iv.prec`` bits."""

    __slots__ = ()

    @staticmethod
    def _coerce(o: Any) -> Any:
        if isinstance(o, IvBall):
            return o.v
        if isinstance(o, (bool, np.bool_, int, np.integer)):
            return mpmath.iv.mpf(int(o))
        if isinstance(o, (float, np.floating)):
            return mpmath.iv.mpf(float(o))  # exact at >= 53 bits
        if isinstance(o, Fraction):
            return mpmath.iv.mpf(o.numerator) / mpmath.iv.mpf(o.denominator)
        return None

    @staticmethod
    def _div(a: Any, b: Any) -> Any:
        return a / b  # an interval containing 0 as divisor gives [-inf, inf]

    def _pow(self, n: int) -> Any:
        return self.v ** n

    def _bounds(self):
        lo, hi = self.v._mpi_
        return _mpf_fraction(lo), _mpf_fraction(hi)

    def _is_finite(self) -> bool:
        lo, hi = self._bounds()
        return all(isinstance(t, Fraction) for t in (lo, hi))

    def __repr__(self) -> str:
        lo, hi = self.v._mpi_
        return f"[{libmp.to_str(lo, 8)}, {libmp.to_str(hi, 8)}]"


# ============================================================================ backends

#: every ``xp`` name that both backends provide (functions and constants)
SUPPORTED = (
    "abs", "absolute", "all", "any", "arange", "argmax", "argmin", "array", "asarray", "broadcast_to", "concatenate",
    "diagonal", "dot", "einsum", "exp", "expand_dims", "eye", "heaviside", "inf", "isfinite", "log",
    "matmul", "max", "maximum", "mean", "min", "minimum", "name", "newaxis", "ones", "ones_like", "outer",
    "prod", "relu", "reshape", "sign", "sqrt", "square", "stack", "sum", "tanh", "trace", "transpose",
    "where", "zeros", "zeros_like", "float64_only", "segment_sum", "full",
)

#: NumPy functions that only rearrange, combine by + and *, or read shapes: on object arrays they
#: apply the scalars' own arithmetic, so they are exact (rationals) or enclosures (balls)
_NUMPY_AS_IS = (
    "broadcast_to", "concatenate", "diagonal", "dot", "einsum", "expand_dims", "matmul", "outer", "prod",
    "reshape", "stack", "trace", "transpose",
)


class _ObjectOps:
    """NumPy on object arrays of one scalar class; the explicit list :data:`SUPPORTED` only."""

    name = "object"
    scalar: type[_Num] = _Num
    newaxis = None

    def __getattr__(self, attr: str) -> Any:
        if attr in _NUMPY_AS_IS:
            return self._as_is(getattr(np, attr))
        raise UnsupportedFunction(f"xp.{attr} is not supported by the {self.name} backend "
                                  f"(supported: {', '.join(SUPPORTED)})")

    def _as_is(self, f: Callable[..., Any]) -> Callable[..., Any]:
        """NumPy's ``f`` with every float argument lifted first, so that nothing is computed in
        float64 (``xp.dot`` of two float arrays would otherwise round)."""

        def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple(self._lift_floats(a) for a in args)
            out = f(*args, **kwargs)
            return self._lift_floats(out)

        return call

    def _lift_floats(self, a: Any) -> Any:
        if isinstance(a, (float, np.floating)) or (isinstance(a, np.ndarray) and a.dtype.kind in "fc"):
            return self.asarray(a)
        if isinstance(a, (list, tuple)):
            return type(a)(self._lift_floats(v) for v in a)
        return a

    def arange(self, *args: Any, **kwargs: Any) -> Any:
        """Integers only (a float grid would be computed in float64)."""
        if any(not _ints(a) for a in (*args, *kwargs.values()) if a is not None):
            raise UnsupportedFunction(f"xp.arange with non-integer arguments on the {self.name} backend")
        return np.arange(*args, **kwargs)

    # ------------------------------------------------------------------ conversion

    def lift(self, v: Any) -> Any:
        """One scalar into this backend (exactly); a scalar already of it stays."""
        if isinstance(v, np.ndarray) and v.ndim == 0:
            v = v[()]
        if isinstance(v, self.scalar):
            return v
        if isinstance(v, _Num):
            raise TypeError(f"a {type(v).__name__} value reached the {self.name} backend")
        raw = self.scalar._coerce(v)
        if raw is None:
            raise TypeError(f"cannot convert {type(v).__name__} {v!r} to the {self.name} backend")
        return self.scalar(raw)

    def _map(self, f: Callable[[Any], Any], a: Any, otype: Any = object) -> Any:
        arr = np.asarray(a, dtype=object)
        out = np.empty(arr.shape, dtype=otype)
        flat_in, flat_out = arr.reshape(-1), out.reshape(-1)
        for i, v in enumerate(flat_in):
            flat_out[i] = f(v)
        return out if arr.ndim else out[()]

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """Booleans and integers stay as they are; every other number becomes a scalar of this
        backend (an array, 0-d for a scalar)."""
        if dtype is not None and np.dtype(dtype).kind in "biu":
            return np.asarray(a, dtype=dtype)
        if dtype is not None and np.dtype(dtype).kind not in "fO":
            raise UnsupportedFunction(f"xp.asarray(dtype={dtype}) on the {self.name} backend")
        arr = np.asarray(a, dtype=object) if isinstance(a, _Num) else np.asarray(a)
        if arr.dtype.kind in "biu":
            return arr
        return np.asarray(self._map(self.lift, arr), dtype=object)

    array = asarray

    def zeros(self, shape: Any, dtype: Any = None) -> Any:
        return self.asarray(np.zeros(shape, dtype=dtype or float), dtype=dtype)

    def ones(self, shape: Any, dtype: Any = None) -> Any:
        return self.asarray(np.ones(shape, dtype=dtype or float), dtype=dtype)

    def zeros_like(self, a: Any, dtype: Any = None) -> Any:
        return self.zeros(np.shape(a), dtype)

    def ones_like(self, a: Any, dtype: Any = None) -> Any:
        return self.ones(np.shape(a), dtype)

    def eye(self, n: int, m: int | None = None, k: int = 0, dtype: Any = None) -> Any:
        return self.asarray(np.eye(n, m, k, dtype=dtype or float), dtype=dtype)

    # ------------------------------------------------------------------ elementwise

    def _lifted(self, a: Any) -> Any:
        return np.asarray(self._map(self.lift, a), dtype=object)

    def abs(self, x: Any) -> Any:
        if _ints(x):
            return np.abs(x)
        return self._map(lambda v: self._abs(self.lift(v)), x)

    absolute = abs

    def square(self, x: Any) -> Any:
        if _ints(x):
            return np.square(x)
        return self._map(lambda v: self.lift(v) * self.lift(v), x)

    def maximum(self, a: Any, b: Any) -> Any:
        if _ints(a) and _ints(b):
            return np.maximum(a, b)
        a, b = np.broadcast_arrays(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
        return self._zip(self._max2, a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        if _ints(a) and _ints(b):
            return np.minimum(a, b)
        a, b = np.broadcast_arrays(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
        return self._zip(self._min2, a, b)

    def _zip(self, f: Callable[[Any, Any], Any], a: np.ndarray, b: np.ndarray) -> Any:
        out = np.empty(a.shape, dtype=object)
        for idx in np.ndindex(a.shape):
            out[idx] = f(self.lift(a[idx]), self.lift(b[idx]))
        return out if a.ndim else out[()]

    def relu(self, x: Any) -> Any:
        zero = self.lift(0)
        return self._map(lambda v: self._max2(self.lift(v), zero), x)

    def sign(self, x: Any) -> Any:
        return self._map(lambda v: self.lift(self.lift(v).sign()), x)

    def heaviside(self, x: Any) -> Any:
        """Indicator [x > 0] (0 at x = 0), as the other backends."""
        return self._map(lambda v: self.lift(1 if self.lift(v).sign() > 0 else 0), x)

    def full(self, shape: Any, value: Any, dtype: Any = None) -> Any:
        out = np.empty(shape, dtype=object)
        out[...] = self.lift(value)
        return out

    @staticmethod
    def float64_only(thunk: Callable[[], Any]) -> Any:
        """A component about JAX itself: no exact or ball form (skipped, as at 50 digits)."""
        from verify.backends import FLOAT64_ONLY

        return FLOAT64_ONLY

    def segment_sum(self, vals: Any, ids: Any, num_segments: int) -> Any:
        vals = np.asarray(vals, dtype=object)
        out = np.empty((num_segments,) + vals.shape[1:], dtype=object)
        out[...] = self.lift(0)
        np.add.at(out, np.asarray(ids, dtype=np.int64), vals)
        return out

    def sqrt(self, x: Any) -> Any:
        return self._map(lambda v: self._sqrt(self.lift(v)), x)

    def exp(self, x: Any) -> Any:
        return self._map(lambda v: self._exp(self.lift(v)), x)

    def log(self, x: Any) -> Any:
        return self._map(lambda v: self._log(self.lift(v)), x)

    def tanh(self, x: Any) -> Any:
        return self._map(lambda v: self._tanh(self.lift(v)), x)

    def isfinite(self, x: Any) -> Any:
        return self._map(lambda v: bool(self.lift(v)._is_finite()), x, otype=bool)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        c = self._truth(cond)
        if _ints(a) and _ints(b):
            return np.where(c, a, b)
        out = np.where(c, np.asarray(a, dtype=object), np.asarray(b, dtype=object))
        return self._map(self.lift, out)

    # ------------------------------------------------------------------ reductions

    def _reduce(self, f: Callable[[Any, Any], Any], a: Any, axis: Any, keepdims: bool) -> Any:
        """Reduce by an associative, commutative ``f`` over ``axis`` (None, an int or a tuple),
        one axis at a time (NumPy reduces a Python function over one axis only)."""
        arr = self._lifted(a)
        if arr.ndim == 0:
            return arr[()]
        if arr.size == 0:
            raise ValueError("max/min of an empty array")
        axes = range(arr.ndim) if axis is None else np.atleast_1d(axis)
        ufunc = np.frompyfunc(f, 2, 1)
        for ax in sorted({int(ax) % arr.ndim for ax in axes}, reverse=True):
            arr = ufunc.reduce(arr, axis=ax, keepdims=True)
        if not keepdims:
            arr = arr.reshape([n for i, n in enumerate(arr.shape) if i not in
                               {int(ax) % len(arr.shape) for ax in axes}])
        return arr[()] if isinstance(arr, np.ndarray) and arr.ndim == 0 else arr

    def max(self, a: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if _ints(a):
            return np.max(a, axis=axis, keepdims=keepdims)
        return self._reduce(self._max2, a, axis, keepdims)

    def min(self, a: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if _ints(a):
            return np.min(a, axis=axis, keepdims=keepdims)
        return self._reduce(self._min2, a, axis, keepdims)

    def sum(self, a: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if _ints(a):
            return np.sum(a, axis=axis, keepdims=keepdims)
        out = np.sum(self._lifted(a), axis=axis, keepdims=keepdims)  # an empty sum is the int 0
        return self._map(self.lift, out)

    def mean(self, a: Any, axis: Any = None, keepdims: bool = False) -> Any:
        arr = self._lifted(a)
        n = arr.size if axis is None else int(np.prod([arr.shape[i] for i in np.atleast_1d(axis)]))
        return self.sum(arr, axis=axis, keepdims=keepdims) / n

    def all(self, a: Any, axis: Any = None) -> Any:
        return np.all(self._truth(a), axis=axis)

    def any(self, a: Any, axis: Any = None) -> Any:
        return np.any(self._truth(a), axis=axis)

    def _truth(self, a: Any) -> np.ndarray:
        arr = np.asarray(a)
        return self._map(bool, arr, otype=bool) if arr.dtype == object else arr

    def argmax(self, a: Any, axis: Any = None) -> Any:
        return np.argmax(self._lifted(a), axis=axis)  # compares: undecided ties raise

    def argmin(self, a: Any, axis: Any = None) -> Any:
        return np.argmin(self._lifted(a), axis=axis)


class ExactOps(_ObjectOps):
    """NumPy on object arrays of exact rationals (:class:`Q`)."""

    name = "exact"
    scalar = Q

    def __getattr__(self, attr: str) -> Any:
        if attr in ("pi", "e", "nan"):
            raise NotRational(f"xp.{attr}")
        return super().__getattr__(attr)

    @property
    def inf(self) -> Any:
        raise NotRational("xp.inf")

    @staticmethod
    def _abs(v: Q) -> Q:
        return Q(abs(v.v))

    @staticmethod
    def _max2(a: Q, b: Q) -> Q:
        return a if a.v >= b.v else b

    @staticmethod
    def _min2(a: Q, b: Q) -> Q:
        return a if a.v <= b.v else b

    @staticmethod
    def _sqrt(v: Q) -> Q:
        q = v.v
        if q >= 0:
            n, d = math.isqrt(q.numerator), math.isqrt(q.denominator)
            if n * n == q.numerator and d * d == q.denominator:
                return Q(Fraction(n, d))
        raise NotRational("sqrt")

    @staticmethod
    def _exp(v: Q) -> Q:
        raise NotRational("exp")

    @staticmethod
    def _log(v: Q) -> Q:
        raise NotRational("log")

    @staticmethod
    def _tanh(v: Q) -> Q:
        raise NotRational("tanh")


class _BallOps(_ObjectOps):
    """Shared by the two ball kinds: domain checks that fail closed."""

    def _domain(self, v: _Num, what: str, strict: bool) -> bool:
        """True when v is certainly in the domain (> 0 or >= 0); False when certainly outside
        (the result is NaN, as in float64); Undecided otherwise."""
        lo, hi = v._bounds()
        if (lo > 0) if strict else (lo >= 0):
            return True
        if (hi <= 0) if strict else (hi < 0):
            return False
        raise Undecided(f"xp.{what}: the argument {v} is not certainly in the domain, at {_where()}")


class ArbOps(_BallOps):
    name = "ball-arb"
    scalar = ArbBall
    method = METHOD_ARB

    @property
    def inf(self) -> Any:
        return ArbBall(flint.arb.pos_inf())

    @staticmethod
    def _abs(v: ArbBall) -> ArbBall:
        return ArbBall(abs(v.v))

    @staticmethod
    def _max2(a: ArbBall, b: ArbBall) -> ArbBall:
        return ArbBall(a.v.max(b.v))

    @staticmethod
    def _min2(a: ArbBall, b: ArbBall) -> ArbBall:
        return ArbBall(a.v.min(b.v))

    def _sqrt(self, v: ArbBall) -> ArbBall:
        return ArbBall(v.v.sqrt() if self._domain(v, "sqrt", False) else flint.arb.nan())

    def _log(self, v: ArbBall) -> ArbBall:
        return ArbBall(v.v.log() if self._domain(v, "log", True) else flint.arb.nan())

    @staticmethod
    def _exp(v: ArbBall) -> ArbBall:
        return ArbBall(v.v.exp())

    @staticmethod
    def _tanh(v: ArbBall) -> ArbBall:
        return ArbBall(v.v.tanh())


def _iv_from(lo: Any, hi: Any) -> Any:
    """An interval from raw mpf endpoints, kept exactly (``mpmath.mpf(raw)`` would round them to
    the mp context's precision)."""
    if lo == libmp.fnan or hi == libmp.fnan:
        return mpmath.iv.mpf("nan")
    return mpmath.iv.make_mpf((lo, hi))


def _raw_max(a: Any, b: Any) -> Any:
    return a if libmp.mpf_cmp(a, b) >= 0 else b


def _raw_min(a: Any, b: Any) -> Any:
    return a if libmp.mpf_cmp(a, b) <= 0 else b


class IvOps(_BallOps):
    name = "ball-iv"
    scalar = IvBall
    method = METHOD_IV

    @property
    def inf(self) -> Any:
        return IvBall(mpmath.iv.mpf(mpmath.inf))

    @staticmethod
    def _abs(v: IvBall) -> IvBall:
        return IvBall(abs(v.v))

    @staticmethod
    def _max2(a: IvBall, b: IvBall) -> IvBall:
        (alo, ahi), (blo, bhi) = a.v._mpi_, b.v._mpi_
        return IvBall(_iv_from(_raw_max(alo, blo), _raw_max(ahi, bhi)))

    @staticmethod
    def _min2(a: IvBall, b: IvBall) -> IvBall:
        (alo, ahi), (blo, bhi) = a.v._mpi_, b.v._mpi_
        return IvBall(_iv_from(_raw_min(alo, blo), _raw_min(ahi, bhi)))

    def _sqrt(self, v: IvBall) -> IvBall:
        return IvBall(mpmath.iv.sqrt(v.v) if self._domain(v, "sqrt", False) else mpmath.iv.mpf("nan"))

    def _log(self, v: IvBall) -> IvBall:
        return IvBall(mpmath.iv.log(v.v) if self._domain(v, "log", True) else mpmath.iv.mpf("nan"))

    @staticmethod
    def _exp(v: IvBall) -> IvBall:
        return IvBall(mpmath.iv.exp(v.v))

    @staticmethod
    def _tanh(v: IvBall) -> IvBall:
        # mpmath's iv has no tanh: 1 - 2 / (exp(2x) + 1) uses x once, so the enclosure stays tight
        return IvBall(1 - 2 / (mpmath.iv.exp(2 * v.v) + 1))


def ball_kind() -> str | None:
    """'arb' with python-flint, else 'iv' with mpmath's interval context, else None."""
    if flint is not None:
        return "arb"
    if hasattr(mpmath, "iv"):
        return "iv"
    return None


def BallOps(kind: str | None = None) -> _BallOps:  # noqa: N802 - a factory named as the backend
    """The ball backend: ``arb`` (python-flint) if importable, else mpmath's ``iv``."""
    kind = kind or ball_kind()
    if kind == "arb":
        if flint is None:
            raise ImportError("python-flint is not installed: pip install 'dlverify[exact]'")
        return ArbOps()
    if kind == "iv":
        return IvOps()
    raise ImportError("no ball arithmetic: neither python-flint nor mpmath's iv is available")


# ============================================================================ binding xp


def _xp_module() -> Any:
    """The module that holds ``xp``'s backends."""
    return importlib.import_module("verify.backends")


@contextlib.contextmanager
def bound(ops: _ObjectOps) -> Iterator[None]:
    """Run the enclosed code with ``xp`` bound to ``ops`` (at the ball precision for balls)."""
    mod = _xp_module()
    mod._OPS[ops.name] = ops
    token = mod._backend.set(ops.name)
    saved_flint = flint.ctx.prec if flint is not None else None
    saved_iv = mpmath.iv.prec
    try:
        if flint is not None:
            flint.ctx.prec = BALL_BITS
        mpmath.iv.prec = BALL_BITS
        yield
    finally:
        if flint is not None:
            flint.ctx.prec = saved_flint
        mpmath.iv.prec = saved_iv
        mod._backend.reset(token)
        mod._OPS.pop(ops.name, None)


def convert(ops: _ObjectOps, tree: Any) -> Any:
    """A dict (or list/tuple) of float64 arrays as arrays of ``ops``' scalars, exactly."""
    if isinstance(tree, Mapping):
        return {k: convert(ops, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(convert(ops, v) for v in tree)
    return ops.asarray(np.asarray(tree))


# ============================================================================ certify


@dataclass(frozen=True)
class Certification:
    """What exact rationals or ball arithmetic established about one counterexample.

    ``status``: ``"certified"`` (the residual is certainly beyond tolerance and every enforced
    assumption certainly holds), ``"not-certified"`` (``reason`` says what was and was not
    established), or ``"unavailable"`` (no ball arithmetic on this machine).
    ``ratio_lower``: a decimal lower bound of the largest ``|r| / bound`` ("inf" for a nonzero
    residual against a zero bound), "" when nothing was bounded.
    """

    status: str
    method: str
    ratio_lower: str
    reason: str


def _as_residuals(out: Any) -> dict[str, Residual]:
    """The components that have an exact or ball form (``xp.float64_only`` ones are left out)."""
    from verify.backends import Float64Only

    if isinstance(out, Residual):
        return {"residual": out}
    if isinstance(out, Mapping) and out and all(isinstance(v, (Residual, Float64Only)) for v in out.values()):
        kept = {k: v for k, v in out.items() if isinstance(v, Residual)}
        if not kept:
            raise _Inconclusive("every component is float64-only (a claim about JAX itself)")
        return kept
    raise TypeError(f"a property must return a Residual or a non-empty dict of them, got {type(out).__name__}")


def decimal_lower(q: Fraction, digits: int = 3, up: bool = False) -> str:
    """``q >= 0`` rounded down (``up``: up) to ``digits`` significant digits, as text (e.g. '1.23e+05')."""
    if q <= 0:
        return "0"
    e = len(str(q.numerator)) - len(str(q.denominator))  # within 1 of log10(q); the loops settle it
    while Fraction(10) ** e > q:
        e -= 1
    while Fraction(10) ** (e + 1) <= q:
        e += 1
    m = (math.ceil if up else math.floor)(q / Fraction(10) ** (e - digits + 1))  # a digits-digit integer
    if m == 10**digits:  # rounded up to the next power of ten
        m, e = 10 ** (digits - 1), e + 1
    return format(Decimal(m).scaleb(e - digits + 1), "g")


def _ints(a: Any) -> bool:
    """Integer or Boolean data (indices, masks, counts): left to NumPy, as the 50-digit backend does."""
    if isinstance(a, (bool, int, np.integer, np.bool_)):
        return True
    return isinstance(a, np.ndarray) and a.dtype.kind in "biu"


class _Inconclusive(Exception):
    """This method ran but could not settle the question (the next one may)."""


def _judge(ops: _ObjectOps, prop: Any, assumptions: Sequence[Any], tolerance: Any, s: Any, x: Any,
           enforce: Sequence[int], exact: bool) -> tuple[str, str, str]:
    """(status, ratio_lower, reason) from one method, or raise _Inconclusive / a method error."""
    with bound(ops):
        xb = convert(ops, x)
        for i in enforce:
            a = assumptions[i]
            held = np.asarray(a.holds(s, xb))
            values = [bool(v) for v in held.reshape(-1)]
            if not all(values):
                return "not-certified", "", f"{ops_method(ops)}: the enforced assumption {a.name} does not hold"
        res = _as_residuals(prop(s, xb))
        best: Fraction | float | None = None
        best_name, best_lo, best_hi = "", Fraction(0), Fraction(0)
        largest = Fraction(0)
        straddle = []
        for name, r in res.items():
            value = np.asarray(ops.asarray(r.value), dtype=object)
            scale = np.asarray(ops.asarray(r.scale), dtype=object)
            bound_ = np.asarray(tolerance.bound(ops.abs(scale)), dtype=object)
            value, bound_ = np.broadcast_arrays(value, bound_)
            finite = all(ops.lift(v)._is_finite() for v in value.reshape(-1)) and all(
                ops.lift(v)._is_finite() for v in scale.reshape(-1))
            if not finite:
                raise _Inconclusive(f"{ops_method(ops)}: component {name!r} is not finite")
            for v, b in zip(value.reshape(-1), bound_.reshape(-1)):
                lo, hi = ops.lift(v).lower_abs(), ops.lift(b).upper()
                if exact:
                    largest = max(largest, lo)
                if lo > hi:
                    ratio = math.inf if hi == 0 else Fraction(lo) / Fraction(hi)
                    if best is None or ratio > best:
                        best, best_name, best_lo, best_hi = ratio, name, lo, hi
                elif not exact:
                    vhi, blo = _abs_upper(ops.lift(v)), ops.lift(b)._bounds()[0]
                    if not vhi <= blo:
                        straddle.append(name)
    if best is not None:
        text = "inf" if best == math.inf else decimal_lower(Fraction(best))
        return "certified", text, (f"{ops_method(ops)}: |r| >= {decimal_lower(Fraction(best_lo))} > tolerance bound "
                                   f"{decimal_lower(Fraction(best_hi), up=True)} in component {best_name!r}"
                                   + ("" if best == math.inf else f" (ratio >= {text})"))
    if exact:
        return "not-certified", "", (f"{ops_method(ops)}: every residual is within tolerance exactly "
                                     f"(largest |r| = {decimal_lower(largest, up=True)}): not a real violation")
    if not straddle:
        return "not-certified", "", f"{ops_method(ops)}: every residual is certainly within tolerance: not a real violation"
    raise _Inconclusive(f"{ops_method(ops)}: the enclosure of |r| in component {straddle[0]!r} "
                        f"meets the tolerance bound (undecided)")


def _abs_upper(v: _Num) -> Fraction | float:
    lo, hi = v._bounds()
    return max(abs(lo), abs(hi))


def ops_method(ops: _ObjectOps) -> str:
    return METHOD_EXACT if isinstance(ops, ExactOps) else ops.method  # type: ignore[attr-defined]


def certify(prop: Any, assumptions: Sequence[Any], tolerance: Any, s: Any, x: Any,
            enforce: Sequence[int]) -> Certification:
    """Certify (or not) that ``prop(s, x)`` really exceeds ``tolerance`` at the float64 instance
    ``x`` with the enforced assumptions holding. Exact rationals first, then ball arithmetic; a
    method that cannot run (NotRational, an unsupported function, an undecided comparison) hands
    over to the next. Never certifies on doubt."""
    kind = ball_kind()
    if kind is None:
        return Certification("unavailable", "", "", "no ball arithmetic: neither python-flint nor mpmath's iv")
    methods: list[_ObjectOps] = [ExactOps(), BallOps(kind)]
    notes: list[str] = []
    last = ""
    for ops in methods:
        exact = isinstance(ops, ExactOps)
        last = ops_method(ops)
        try:
            status, ratio, reason = _judge(ops, prop, assumptions, tolerance, s, x, enforce, exact)
        except _Inconclusive as exc:
            notes.append(str(exc))
            continue
        except (Undecided, NotRational, UnsupportedFunction) as exc:
            notes.append(f"{last}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - a property may not run on object arrays at all
            notes.append(f"{last}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
            continue
        return Certification(status, last, ratio, "; ".join([*notes, reason]))
    return Certification("not-certified", last, "", "; ".join(notes))
