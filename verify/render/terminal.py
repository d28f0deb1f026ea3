"""Rendering run results for a terminal (rich tables) and as JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from verify.records.counterexample import Replay
from verify.spec import Theorem

if TYPE_CHECKING:  # rendering reads what the engine produced; it never runs it
    from verify.engine.runner import TheoremReport
    from verify.engine.search import SearchResult

_STYLE = {
    "proved": "green", "confirmed": "green", "refuted": "red", "vacuous": "yellow", "error": "red",
    "unconfirmed": "yellow", "necessary": "cyan", "not-shown-necessary": "dim",
}


def console(stderr: bool = False, file: Any = None) -> Console:
    """A console (on ``file``, else stdout or stderr) that does not squeeze tables into 80
    columns when output is piped."""
    probe = Console(stderr=stderr, file=file)
    return probe if probe.is_terminal else Console(stderr=stderr, file=file, width=200)


def _v(verdict: str) -> str:
    """A verdict (or a summary starting with one) in its colour."""
    style = _STYLE.get(verdict.split(" ")[0].rstrip(":;"), "")
    return f"[{style}]{verdict}[/]" if style else verdict


def numeric_cell(r: SearchResult | None, expect: str) -> str:
    if r is None:
        return "-"
    if r.verdict == "confirmed":
        return f"{_v('confirmed')} {r.satisfied}/{r.drawn}, max|r| {r.max_residual:.1e} ({r.max_ratio:.0e} of tol)"
    if r.verdict == "refuted":
        cx = r.counterexample
        style = "green" if expect == "false" else "red"
        return f"[{style}]refuted[/] at {_compact(cx.structure)}, |r| {cx.residual:.3g}" if cx else _v("refuted")
    return f"{_v(r.verdict)}" + (f": {escape(r.note)}" if r.note else "")


def _compact(structure: dict[str, Any]) -> str:
    return escape(", ".join(f"{k}={v}" for k, v in structure.items()))


def run_table(reports: Sequence[TheoremReport]) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("theorem", no_wrap=True)
    for col in ( "expect", "symbolic", "numeric (instances meeting assumptions / drawn)", "mutants",
                "assumptions", "status"):
        table.add_column(col, overflow="fold")
    for rep in reports:
        sym = "-" if rep.symbolic is None or rep.symbolic.verdict == "none" else _v(rep.symbolic.summary())
        muts = "-"
        if rep.mutants:
            k = sum(m.refuted for m in rep.mutants)
            muts = f"[{'green' if k == len(rep.mutants) else 'red'}]{k}/{len(rep.mutants)} refuted[/]"
        abl = ", ".join(f"{a.assumption}: {_v(a.verdict)}" for a in rep.ablations) or "-"
        status = "[green]ok[/]" if rep.ok else "[red]FAIL[/]"
        table.add_row(rep.theorem.id, rep.theorem.expect, sym, numeric_cell(rep.numeric, rep.theorem.expect), muts,
                      abl, status)
    return table


def print_details(console: Console, reports: Sequence[TheoremReport]) -> None:
    """What failed, and every counterexample file a user may want to replay."""
    for rep in reports:
        lines: list[str] = [f"  problem: {escape(p)}" for p in rep.problems]
        if rep.numeric and rep.numeric.counterexample:
            lines.append(_cx_line("claim", rep.numeric))
        for m in rep.mutants:
            if m.numeric.counterexample and not m.refuted:
                lines.append(_cx_line(f"mutant {m.name}", m.numeric))
        for a in rep.ablations:
            if a.search.counterexample:
                lines.append(_cx_line(f"without {a.assumption}", a.search))
            elif a.verdict == "not-shown-necessary":
                lines.append(f"  without {a.assumption}: no counterexample in {a.search.drawn} instances "
                             f"({a.search.dropped_violated} violated it)")
        for r in rep.rates:
            lo, hi = r["interval95"]
            rate = f"rate {r['rate']:.4g} (95%: {lo:.3g}-{hi:.3g})" if r["rate"] is not None else "no rate"
            lines.append(f"  fails on {r['failing']}/{r['meeting_assumptions']} instances of "
                         f"{_compact(r['structure'])} meeting the assumptions ({r['instances']} drawn): {rate}")
        if lines:
            console.print(f"[bold]{rep.theorem.id}[/]")
            for line in lines:
                console.print(line, highlight=False)


def _cx_line(label: str, r: SearchResult) -> str:
    cx = r.counterexample
    assert cx is not None
    values = escape("; ".join(f"{k}={v.tolist()}" for k, v in cx.instance.items()))
    shrink = cx.shrink
    return (f"  {label}: witness {_compact(cx.structure)}: {values}  |r| = {cx.residual:.6g} "
            f"(50 digits: {_short(cx.highprec_residual)}, {cx.established}); "
            f"shrunk {_compact(shrink.get('structure_before', {}))} -> {_compact(shrink.get('structure_after', {}))} "
            f"by {shrink.get('method')}{_stopped(shrink)}\n    replay: {cx.replay_command()}")


def _stopped(shrink: dict[str, Any]) -> str:
    if not shrink.get("stopped_early"):
        return ""
    return (f" (shrinking stopped at its budget: {shrink.get('structure_batches')} of "
            f"{shrink.get('structure_budget')} batches, {shrink.get('value_evaluations')} of "
            f"{shrink.get('value_budget')} instances)")


def _short(number: str) -> str:
    """A 50-digit number as 6 significant digits (or the text as it is, if not a number)."""
    try:
        return f"{float(number):.6g}"
    except ValueError:
        return escape(number)


def list_table(theorems: Sequence[Theorem]) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("id", no_wrap=True)
    for col in ( "title", "expect", "assumptions", "mutants", "uses"):
        table.add_column(col, overflow="fold")
    for t in theorems:
        table.add_row(t.id, escape(t.title), t.expect, ", ".join(a.name for a in t.assumptions) or "-",
                      str(len(t.mutants)), ", ".join(t.uses) or "-")
    return table


def run_json(reports: Sequence[TheoremReport]) -> dict[str, Any]:
    return {
        "ok": all(r.ok for r in reports),
        "theorems": [r.certificate() for r in reports],
    }


def replay_table(r: Replay) -> Table:
    cx = r.counterexample
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = [
        ("theorem", cx.theorem_id),
        ("variant", cx.variant),
        ("assumptions enforced", ", ".join(cx.enforced) or "none"),
        ("structure", _compact(cx.structure)),
        *[(f"  {k}", escape(str(v.tolist()))) for k, v in cx.instance.items()],
        ("residual (float64)", f"{r.residual:.17g} ({r.ratio:.3g} x tolerance)"),
        ("residual (50 digits)", f"{r.highprec_residual} ({_short(r.highprec_ratio)} x tolerance)"),
        ("assumptions hold", "yes" if r.assumptions_hold else "no"),
        ("established", r.established or "-"),
        ("reproduced", "yes: the variant fails on this instance" if r.reproduced else "no: it now passes here"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    return table
