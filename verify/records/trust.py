"""The trust table: what a run established, one row per claim, in one vocabulary.

Every output (the certificate, ``verify cite``, the terminal, the HTML report, the docs catalogue)
describes a theorem with these rows and these words, so none of them can say more than another.
A row is a plain dict (it is stored in the certificate under ``trust``): ``claim``, ``face``
(``symbolic``, ``numeric``, ``assumption``), ``class`` (one of :data:`CLASSES`) and the evidence
of that class (a scope and the rules used; instance counts and structures; a witness; a rate).
"""

from __future__ import annotations

from typing import Any, Mapping

#: the classes of what was established, strongest first, and what each means
CLASSES = {
    "proved": "a derivation whose every link the engine checked reaches the claim, over the scope the engine "
              "computed, and the claim agrees with the property on drawn instances",
    "decided": "an exact solver decided the claim for every instance of the listed sizes",
    "cross-checked": "a derivation reaches the claim, but some link is only a numeric cross-check",
    "tested": "no instance meeting the assumptions violated the claim, among those drawn",
    "refuted": "a counterexample (a witness) shows the claim false",
    "measured": "the failure rate was measured on a listed structure",
    "assumed": "an assumption of the theorem: taken, not shown",
    "unconfirmed": "a derivation was given but does not establish the claim (the gap says where it stops)",
    "vacuous": "no drawn instance met the assumptions: nothing was tested",
    "error": "the check could not run to a verdict",
}


def _structures(rows: list[Any]) -> str:
    if not rows:
        return "no structure"
    shown = ", ".join("{" + ", ".join(f"{k}={v}" for k, v in s.items()) + "}" for s in rows[:6])
    more = f" and {len(rows) - 6} more" if len(rows) > 6 else ""
    return f"{len(rows)} structure{'s' if len(rows) != 1 else ''} ({shown}{more})"


def sentence(row: Mapping[str, Any]) -> str:
    """One plain sentence for a trust row: exactly what it records, no more."""
    klass, claim = row["class"], row["claim"]
    comp = f" (component {row['component']})" if row.get("component") else ""
    if row["face"] == "symbolic":
        if klass in ("proved", "cross-checked"):
            rules = ", ".join(row.get("rules") or []) or "no named rule"
            how = ("by a derivation of " if klass == "proved" else "up to a numeric cross-check, by a derivation of ")
            text = (f"Symbolic{comp}: {klass} for {row['scope']}, {how}{row.get('links', 0)} checked links "
                    f"(named rules: {rules})")
            if row.get("crosscheck") == "agrees":
                text += (f"; the claim agrees with the property on {row.get('compared_instances', 0):,} drawn "
                         f"instances")
            return text + "."
        if klass == "refuted":
            return f"Symbolic{comp}: the claim is refuted at an exact rational point {_witness(row)}."
        return f"Symbolic{comp}: {klass}" + (f" ({row['gap']})" if row.get("gap") else "") + "."
    if row["face"] == "numeric" and klass == "measured":
        lo, hi = row.get("interval95") or (0.0, 1.0)
        rate = row.get("rate")
        if rate is None:
            return f"Measured at {row['claim'].removeprefix('failure rate at ')}: no instance met the assumptions."
        return (f"Measured: the claim fails on a fraction {rate:.3g} (95% interval {lo:.3g} to {hi:.3g}) of "
                f"{row.get('instances', 0):,} instances meeting the assumptions at "
                f"{row['claim'].removeprefix('failure rate at ')}.")
    if row["face"] == "numeric":
        if klass == "tested":
            return (f"Numeric: tested on {row.get('instances', 0):,} random instances meeting every assumption "
                    f"({row.get('drawn', 0):,} drawn, float64) over {_structures(row.get('structures') or [])}; "
                    f"none violated the tolerance.")
        if klass == "refuted":
            w = row.get("witness") or {}
            return (f"Numeric: refuted by a counterexample at {w.get('structure')} (established: "
                    f"{w.get('established', '?')}).")
        return f"Numeric: {klass}."
    if row["face"] == "assumption":
        ablation = row.get("ablation", "not run")
        shown = {"necessary": "shown necessary (a counterexample without it)",
                 "not-shown-necessary": "not shown necessary (no counterexample without it in the budget)",
                 "not run": "ablation not run"}.get(ablation, ablation)
        return f"Assumed: {claim.removeprefix('assumption ')}; {shown}."
    return f"{claim}: {klass}."


def _witness(row: Mapping[str, Any]) -> str:
    w = row.get("witness") or {}
    return "(" + ", ".join(f"{k} = {v}" for k, v in list(w.items())[:8]) + ")" if w else ""


def symbolic_cell(cert_symbolic: Mapping[str, Any] | None) -> str:
    """The short symbolic verdict of a certificate's ``symbolic`` entry, for tables."""
    if not cert_symbolic or cert_symbolic.get("verdict", "none") == "none":
        return "-"
    return cert_symbolic.get("summary") or cert_symbolic["verdict"]
