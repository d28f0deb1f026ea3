"""Small display helpers for derivation notebooks (rendered LaTeX in Jupyter, text elsewhere)."""

from __future__ import annotations

from typing import Any

import sympy as sp

from verify.backends import backend, xp
from verify.config import in_float64
from verify.engine.evaluate import batch_sampler, summarise
from verify.engine.search import SearchResult
from verify.spec import Theorem
from verify.symbolic import Agrees, Cases, Equal, Monotone, Separable, SymbolicResult, check_derivation
from verify.values import Structure, as_residuals


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
        print(f"  |r| = {cx.residual:.6g} (50 digits: {cx.highprec_residual}); established: {cx.established}; "
              f"shrunk from {cx.shrink.get('structure_before')}")


@in_float64
def show_instance(theorem: Theorem, structure: dict[str, Any] | None = None, seed: int = 0,
                  **values: Any) -> dict[str, Any]:
    """Draw one instance (the smallest structure the theorem's strategy allows, unless given), set
    any ``values`` by hand, and evaluate the JAX property on it in float64: which assumptions hold,
    and each residual component's largest |r| and |r| / tolerance."""
    from hypothesis import find

    s = Structure(structure if structure is not None else find(theorem.structure, lambda _: True))
    with backend("jax"):
        x = {k: xp.asarray(v[0]) for k, v in batch_sampler(theorem.sample)(s, seed, 1).items()}
        x |= {k: xp.asarray(v, dtype=x[k].dtype if k in x else None) for k, v in values.items()}
        holds = {a.name: bool(a.holds(s, x)) for a in theorem.assumptions}
        res = as_residuals(theorem.property(s, x))
        summary = summarise(res, theorem.tolerance)
    rows = {name: {"max_abs": float(a), "over_tolerance": float(r)}
            for name, a, r in zip(res, summary["absres"], summary["ratios"])}
    print(f"instance at {dict(s)} (seed {seed}); assumptions: "
          + (", ".join(f"{k} {'holds' if v else 'FAILS'}" for k, v in holds.items()) or "none"))
    for name, row in rows.items():
        print(f"  {name}: max |r| = {row['max_abs']:.3g}, |r| / tolerance = {row['over_tolerance']:.3g}")
    return {"structure": dict(s), "instance": x, "holds": holds, "residuals": rows}
