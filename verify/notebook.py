"""Small display helpers for derivation notebooks (rendered LaTeX in Jupyter, text elsewhere)."""

from __future__ import annotations

from typing import Any

import sympy as sp

from verify.search import SearchResult
from verify.spec import Theorem
from verify.symbolic import Agrees, Cases, Equal, Monotone, Separable, SymbolicResult, check_derivation


def _display(latex: str, text: str) -> None:
    try:
        from IPython.display import Math, display

        display(Math(latex))
    except ImportError:  # plain Python: print the text form
        print(text)


def _step_latex(step: Any) -> str:
    if isinstance(step, (Equal, Cases)):
        rel = r"\ge" if getattr(step, "relation", "==") == ">=" else "="
        return f"{sp.latex(step.lhs)} {rel} {sp.latex(step.rhs)}"
    if isinstance(step, Separable):
        return rf"\max \sum_{{{sp.latex(step.index)}}} {sp.latex(step.summand)} = \sum_{{{sp.latex(step.index)}}} \max\,({sp.latex(step.summand)})"
    if isinstance(step, Monotone):
        return rf"{sp.latex(step.f)}\ \text{{is {step.direction} in}}\ {sp.latex(step.x)}"
    if isinstance(step, Agrees):
        return rf"{sp.latex(step.expr)} \approx \text{{numeric}}"
    return str(step)


def show_derivation(theorem: Theorem) -> SymbolicResult:
    """Check the derivation step by step, showing each claim and what SymPy made of it."""
    result = check_derivation(theorem.derivation)
    for step, res in zip(theorem.derivation.steps if theorem.derivation else (), result.steps):
        print(f"[{res.status}] {res.why}" + (f"  ({res.detail})" if res.detail else ""))
        _display(_step_latex(step), f"    {step}")
    print(f"verdict: {result.verdict} ({result.scope})")
    return result


def show_search(result: SearchResult) -> None:
    """One search's verdict, counts and (if any) its shrunk counterexample."""
    print(f"{result.variant}: {result.verdict}: {result.satisfied:,} of {result.drawn:,} instances met "
          f"{', '.join(result.enforced) or 'no assumptions'}; largest |r| {result.max_residual:.2e}")
    cx = result.counterexample
    if cx is not None:
        print(f"  counterexample at {cx.structure}: " + "; ".join(f"{k}={v.tolist()}" for k, v in cx.instance.items()))
        print(f"  |r| = {cx.residual:.6g} (50 digits: {cx.highprec_residual}); real: {cx.real}; "
              f"shrunk from {cx.shrink.get('structure_before')}")
