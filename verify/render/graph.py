"""The dependency graph of theorems (``uses``), coloured by the verdicts of the last run."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from verify.errors import VerifyError
from verify.records.certificate import path_for, read_certificate
from verify.spec import Theorem

COLOURS = {"ok": "palegreen", "failed": "lightcoral", "not run": "lightgrey", "unreadable certificate": "orange",
           "claim not checked": "lightyellow"}


def status_of(theorem: Theorem, certificates: str | Path) -> str:
    path = path_for(theorem.id, certificates)
    if not path.is_file():
        return "not run"
    try:
        cert, _ = read_certificate(path)
    except VerifyError:  # said, not skipped: the graph shows it
        return "unreadable certificate"
    if cert.get("theorem", {}).get("statement_sha256") != theorem.statement_hash():
        return "not run"  # a certificate of an older statement says nothing about this one
    if not {"symbolic", "numeric"} & set(cert.get("faces", [])):
        return "claim not checked"  # only mutants or ablations (a hunt of a mutant, say): ok says nothing of the claim
    return "ok" if cert.get("ok") else "failed"


def to_dot(theorems: Sequence[Theorem], certificates: str | Path) -> str:
    lines = ["digraph dlverify {", "  rankdir=BT;", '  node [shape=box, style=filled, fontname="Helvetica"];']
    known = {t.id for t in theorems}
    for t in theorems:
        status = status_of(t, certificates)
        label = f"{t.id}\\n{t.title}\\n[{status}]".replace('"', "'")
        lines.append(f'  "{t.id}" [label="{label}", fillcolor={COLOURS[status]}];')
    for t in theorems:
        for dep in t.uses:
            style = "" if dep in known else " [style=dashed]"
            lines.append(f'  "{t.id}" -> "{dep}"{style};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_text(theorems: Sequence[Theorem], certificates: str | Path) -> str:
    """Each theorem with its status, and what it rests on, indented."""
    by_id = {t.id: t for t in theorems}
    out: list[str] = []

    def walk(tid: str, depth: int, seen: frozenset[str]) -> None:
        t = by_id.get(tid)
        status = status_of(t, certificates) if t else "not in catalogue"
        cycle = " (cycle)" if tid in seen else ""
        out.append(f"{'  ' * depth}{'<- ' if depth else ''}{tid} [{status}]{cycle}")
        if t and not cycle:
            for dep in t.uses:
                walk(dep, depth + 1, seen | {tid})

    used = {d for t in theorems for d in t.uses}
    for t in theorems:
        if t.id not in used:  # roots: nothing rests on them
            walk(t.id, 0, frozenset())
    return "\n".join(out) + "\n"
