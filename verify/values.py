"""Typed values of the writing API: a property's :class:`Residual` and an instance's
:class:`Structure` (the discrete part drawn by Hypothesis)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from verify.backends import Float64Only, xp


class Residual(NamedTuple):
    """``value`` should be 0; ``scale`` is the size of the terms that cancel in it.

    Made by :func:`residual` (an identity ``lhs == rhs``) or :func:`at_most` / :func:`at_least`
    (an inequality), a residual also carries the two sides it compares and the relation, so the
    engine can check that a derivation's claim is the statement this property tests
    (:mod:`verify.engine.crosscheck`). A ``Residual(value, scale)`` built by hand has no sides.
    """

    value: Any
    scale: Any
    lhs: Any = None
    rhs: Any = None
    relation: str = "=="


def residual(lhs: Any, rhs: Any, scale: Any = None) -> Residual:
    """The identity ``lhs == rhs``: residual ``lhs - rhs`` with the size of the cancelling terms
    (default ``max(|lhs|, |rhs|)``)."""
    if scale is None:
        scale = xp.maximum(xp.abs(lhs), xp.abs(rhs))
    return Residual(lhs - rhs, scale, lhs, rhs, "==")


def at_most(lhs: Any, rhs: Any, scale: Any) -> Residual:
    """The inequality ``lhs <= rhs``: residual ``ReLU(lhs - rhs)`` (0 where it holds), with the size
    of the terms compared."""
    return Residual(xp.relu(lhs - rhs), scale, lhs, rhs, "<=")


def at_least(lhs: Any, rhs: Any, scale: Any) -> Residual:
    """The inequality ``lhs >= rhs``: residual ``ReLU(rhs - lhs)``."""
    return Residual(xp.relu(rhs - lhs), scale, lhs, rhs, ">=")


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
    """Normalise a property's return value to ``{component name: Residual}`` (on the 50-digit
    backend an ``xp.float64_only`` component is the marker :data:`verify.backends.FLOAT64_ONLY`)."""
    if isinstance(out, Residual):
        return {"residual": out}
    if isinstance(out, Mapping) and out and all(isinstance(v, (Residual, Float64Only)) for v in out.values()):
        return dict(out)
    raise TypeError(
        "a property must return verify.residual(...) / verify.Residual or a non-empty dict of them, "
        f"got {type(out).__name__}"
    )
