"""Rendering run results for a terminal (rich tables) and as JSON, from the records.

Like the HTML report, ``verify cite`` and the graph, the terminal reads certificates (the dicts
:meth:`TheoremReport.certificate` makes and :mod:`verify.records.certificate` writes), never the
engine's objects: one record, one vocabulary, whether the run happened in this process or in a
worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from verify.records.io import number
from verify.records.run import run_report

if TYPE_CHECKING:  # rendering reads what the engine produced; it never runs it
    from verify.records.counterexample import Replay

_STYLE = {
    "proved": "green", "confirmed": "green", "refuted": "red", "vacuous": "yellow", "error": "red",
    "unconfirmed": "yellow", "thin": "red", "necessary": "cyan", "not-shown-necessary": "dim",
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


def numeric_cell(r: dict[str, Any] | None, expect: str) -> str:
    """A certificate's numeric search (``SearchResult.as_dict()``) in one cell."""
    if not r:
        return "-"
    if r["verdict"] == "confirmed":
        return (f"{_v('confirmed')} {r['instances_satisfying_assumptions']}/{r['instances_drawn']}{_nontrivial(r)}, "
                f"max|r| {number(r['largest_residual']):.1e} ({number(r['largest_residual_over_tolerance']):.0e} of tol)"
                f"{_coverage(r)}")
    if r["verdict"] == "refuted":
        cx = r.get("counterexample")
        style = "green" if expect == "false" else "red"
        return (f"[{style}]refuted[/] at {_compact(cx['structure'])}, |r| {number(cx['residual_float64']):.3g}"
                if cx else _v("refuted"))
    return f"{_v(r['verdict'])}" + (f": {escape(r['note'])}" if r.get("note") else "")


def _nontrivial(r: dict[str, Any]) -> str:
    return f" ({r['instances_nontrivial']} non-trivial)" if r.get("instances_in_each_trivial_regime") else ""


def _coverage(r: dict[str, Any]) -> str:
    """How many structures were searched, and how much of the small scope they covered."""
    cov = r.get("coverage")
    if not cov:
        return ""
    scope = ("all of the small scope" if cov["covered"] == cov["structures"]
             else f"{cov['covered']} of {cov['structures']} in the small scope")
    return f"; {len(r.get('structures', []))} structures, {scope}"


def _compact(structure: dict[str, Any]) -> str:
    return escape(", ".join(f"{k}={v}" for k, v in structure.items()))


def run_table(certs: Sequence[dict[str, Any]]) -> Table:
    """One row per theorem, from its certificate (the record is the one thing every output reads)."""
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("theorem", no_wrap=True)
    for col in ( "expect", "symbolic", "numeric (instances meeting assumptions / drawn)", "mutants",
                "assumptions", "status"):
        table.add_column(col, overflow="fold")
    for c in certs:
        t = c["theorem"]
        sym = c.get("symbolic")
        sym = "-" if not sym or sym["verdict"] == "none" else _v(sym["summary"])
        muts = "-"
        if c["mutants"]:
            k = sum(m["refuted"] for m in c["mutants"])
            muts = f"[{'green' if k == len(c['mutants']) else 'red'}]{k}/{len(c['mutants'])} refuted[/]"
        abl = ", ".join(f"{a['assumption']}: {_v(a['verdict'])}" for a in c["ablations"]) or "-"
        status = "[green]ok[/]" if c["ok"] else "[red]FAIL[/]"
        table.add_row(t["id"], t["expect"], sym, numeric_cell(c.get("numeric"), t["expect"]), muts, abl, status)
    return table


def print_details(console: Console, certs: Sequence[dict[str, Any]]) -> None:
    """What failed, and every counterexample file a user may want to replay."""
    for c in certs:
        lines: list[str] = [f"  problem: {escape(p)}" for p in c["problems"]]
        num = c.get("numeric") or {}
        if num.get("counterexample"):
            lines.append(_cx_line("claim", num["counterexample"]))
        for m in c["mutants"]:
            cx = (m.get("numeric") or {}).get("counterexample")
            if cx and not m["refuted"]:
                lines.append(_cx_line(f"mutant {m['name']}", cx))
        for a in c["ablations"]:
            search = a["search"]
            if search.get("counterexample"):
                lines.append(_cx_line(f"without {a['assumption']}", search["counterexample"]))
            elif a["verdict"] == "not-shown-necessary":
                lines.append(f"  without {a['assumption']}: no counterexample in {search['instances_drawn']} instances "
                             f"({search.get('instances_violating_dropped_assumption')} violated it)")
        for r in c.get("failure_rates", []):
            lo, hi = r["interval95"]
            rate = f"rate {r['rate']:.4g} (95%: {lo:.3g}-{hi:.3g})" if r["rate"] is not None else "no rate"
            lines.append(f"  fails on {r['failing']}/{r['meeting_assumptions']} instances of "
                         f"{_compact(r['structure'])} meeting the assumptions ({r['instances']} drawn): {rate}")
        if lines:
            console.print(f"[bold]{c['theorem']['id']}[/]")
            for line in lines:
                console.print(line, highlight=False)


def _cx_line(label: str, cx: dict[str, Any]) -> str:
    """A counterexample record (``Counterexample.as_dict()``) in one entry."""
    values = escape("; ".join(f"{k}={v['values']}" for k, v in cx["instance"].items()))
    shrink = cx.get("shrink", {})
    replay = f"verify replay {cx['file']}" if cx.get("file") else "verify replay FILE"
    return (f"  {label}: witness {_compact(cx['structure'])}: {values}  |r| = {number(cx['residual_float64']):.6g} "
            f"(50 digits: {_short(cx['residual_50_digits'])}, {cx['established']}"
            f"{_certified(cx.get('certification') or {})}); "
            f"shrunk {_compact(shrink.get('structure_before', {}))} -> {_compact(shrink.get('structure_after', {}))} "
            f"by {shrink.get('method')}{_stopped(shrink)}\n    replay: {replay}")


def _certified(c: dict[str, str]) -> str:
    if not c:
        return ""
    return f", certified by {c['method']}" if c["status"] == "certified" else f", {c['status']}"


def _certification_text(c: dict[str, str]) -> str:
    if not c:
        return "not tried (the instance did not reproduce)"
    if c["status"] == "certified":
        return f"yes, by {c['method']}: |r| / tolerance >= {c['ratio_lower']}"
    return f"{c['status']}: {escape(c['reason'])}"


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


def list_table(rows: Sequence[dict[str, Any]]) -> Table:
    """The catalogue listing, from rows as :func:`verify.index.row` makes them."""
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("id", no_wrap=True)
    for col in ( "title", "expect", "assumptions", "mutants", "uses"):
        table.add_column(col, overflow="fold")
    for t in rows:
        table.add_row(t["id"], escape(t["title"]), t["expect"], ", ".join(t["assumptions"]) or "-",
                      str(len(t["mutants"])), ", ".join(t["uses"]) or "-")
    return table


def run_json(certs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run report (:mod:`verify.records.run`) of these certificates."""
    return run_report(certs)


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
        ("certified", _certification_text(r.certification)),
        ("reproduced", "yes: the variant fails on this instance" if r.reproduced else "no: it now passes here"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    return table
