"""dlverify: theorems of deep-learning theory, checked symbolically (SymPy), numerically (JAX,
float64, ``jit`` + ``vmap``) and by counterexample search (Hypothesis).

The public contract for a theorem module is everything exported here; nothing else in
``verify`` is needed to write a theorem. Importing ``verify`` is cheap and changes nothing in
the host process: names are loaded on first use, and JAX is configured (float64) only inside
dlverify's own runs (:mod:`verify.config`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers and documentation tools (loaded lazily below)
    from verify.backends import xp
    from verify.errors import TheoremError, UsageError, VerifyError
    from verify.sampling import Rng
    from verify.spec import Assumption, Cited, Example, Mutant, Regime, Source, Theorem, Tolerance
    from verify.symbolic import (
        Agrees, Algebra, Cases, Claim, Derivation, Fact, Lemma, MaxOver, MaxSum, MinOver, Monotone, Unfold, backwards, eq,
        ge, le,
    )
    from verify.values import Residual, Structure, at_least, at_most, residual

#: public name -> module that defines it
_EXPORTS = {
    "Assumption": "verify.spec",
    "Cited": "verify.spec",
    "Example": "verify.spec",
    "Mutant": "verify.spec",
    "Regime": "verify.spec",
    "Source": "verify.spec",
    "Theorem": "verify.spec",
    "Tolerance": "verify.spec",
    "Residual": "verify.values",
    "Structure": "verify.values",
    "residual": "verify.values",
    "at_most": "verify.values",
    "at_least": "verify.values",
    "Rng": "verify.sampling",
    "xp": "verify.backends",
    "TheoremError": "verify.errors",
    "UsageError": "verify.errors",
    "VerifyError": "verify.errors",
    "Agrees": "verify.symbolic",
    "Algebra": "verify.symbolic",
    "Cases": "verify.symbolic",
    "Claim": "verify.symbolic",
    "Derivation": "verify.symbolic",
    "Fact": "verify.symbolic",
    "Lemma": "verify.symbolic",
    "MaxOver": "verify.symbolic",
    "MaxSum": "verify.symbolic",
    "MinOver": "verify.symbolic",
    "Monotone": "verify.symbolic",
    "Unfold": "verify.symbolic",
    "backwards": "verify.symbolic",
    "eq": "verify.symbolic",
    "ge": "verify.symbolic",
    "le": "verify.symbolic",
}

__all__ = sorted(_EXPORTS)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dlverify")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


__version__ = _version()


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'verify' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
