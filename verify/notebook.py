"""Small display helpers for derivation notebooks (rendered LaTeX in Jupyter, text elsewhere)."""

from __future__ import annotations

from typing import Any

import sympy as sp

from verify.backends import backend, xp
from verify.config import in_float64
from verify.engine.evaluate import batch_sampler, summarise
from verify.engine.search import SearchResult
from verify.spec import Theorem
from verify.symbolic import Derivation, Derivations, SymbolicResult, check_derivation
from verify.values import Structure, as_residuals


def _display(latex: str, text: str) -> None:
    try:
        from IPython.display import Math, display

        display(Math(latex))
    except ImportError:  # plain Python: print the text form
        print(text)


_REL = {"==": "=", "<=": r"\le", ">=": r"\ge"}


def _members(d: Any) -> list[Any]:
    return list(d.members) if isinstance(d, Derivations) else [d]


def show_derivation(theorem: Theorem | Derivation | Derivations) -> list[SymbolicResult]:
    """Check each derivation of ``theorem`` (or one derivation) and show it as it reads: the claim,
    then every link of its chain with what the engine made of it, then the verdict and the scope
    the engine computed. Returns the results, one per derivation."""
    derivations = theorem.derivations if isinstance(theorem, Theorem) else (theorem,)
    results = []
    for d in derivations:
        result = check_derivation(d)
        for member, chains in zip(_members(d), _chunks(result, d)):
            size = f" at {member.size}" if member.size else ""
            print(f"claim{size}" + (f" ({member.component})" if member.component else "") + ":")
            _display(f"{sp.latex(member.claim.lhs)} {_REL[member.claim.rel]} {sp.latex(member.claim.rhs)}",
                     f"    {member.claim}")
            for chain in chains:
                for link, res in zip(_links_of(member, chain), chain.links):
                    print(f"  [{res.status}] {res.why}" + (f"  ({res.detail})" if res.detail else ""))
                    _display(f"{_REL[link.rel]} {sp.latex(link.expr)}", f"    {link.rel} {link.expr}")
        print(f"verdict: {result.verdict}; scope: {result.scope}" + (f"; gap: {result.gap}" if result.gap else ""))
        results.append(result)
    return results


def _chunks(result: SymbolicResult, d: Any) -> list[list[Any]]:
    """The result's chains, grouped by the member derivation they belong to."""
    out, k = [], 0
    for member in _members(d):
        n = 1 + len(member.facts)
        out.append(result.chains[k:k + n])
        k += n
    return out


def _links_of(member: Derivation, chain: Any) -> tuple[Any, ...]:
    for fact in member.facts:
        if chain.claim.startswith(f"{fact.name}: "):
            return fact.chain
    return member.chain


def check_link(previous: Any, link: Any) -> Any:
    """Check one link while writing a derivation in a notebook: ``check_link(lhs, eq(e1, MaxSum(...)))``
    shows what the engine makes of ``previous rel e1`` and returns the link's result."""
    from verify.symbolic import _check_link

    res = _check_link(sp.sympify(previous) if not isinstance(previous, sp.MatrixBase) else previous, link, {})
    print(f"[{res.status}] {res.why}" + (f"  ({res.detail})" if res.detail else ""))
    _display(f"{sp.latex(previous)} {_REL[link.rel]} {sp.latex(link.expr)}", f"    {previous} {link.rel} {link.expr}")
    return res


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
