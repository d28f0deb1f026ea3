"""A self-contained HTML report of a run, from its certificates.

Per theorem: the verdicts, a chart of the claim's residuals (how many instances fell in each
decade of |r| / tolerance, with the tolerance marked) together with where each mutant's and each
ablation's counterexample landed, and a table of counterexamples with their size before and
after shrinking; where a theorem lists ``rates_on``, the measured failure rates. The page is well-formed XHTML with inline SVG: no scripts, no network.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any, Iterable

from verify.records.trust import sentence, symbolic_cell
from verify.records.certificate import HISTOGRAM_DECADES, load_certificates  # noqa: F401 (re-exported)
from verify.records.io import number

_W, _H, _PAD = 560, 150, 30
_DECADES = list(HISTOGRAM_DECADES)
_X_LO, _X_HI = _DECADES[0] - 1, 13  # one slot left of the range for exact zeros; mutants up to 1e12


def _x(decade: float) -> float:
    return _PAD + (min(max(decade, _X_LO), _X_HI) - _X_LO) / (_X_HI - _X_LO + 1) * (_W - 2 * _PAD)


def _marker_decade(ratio: float) -> float:
    return _X_LO if ratio == 0 else math.log10(ratio) if math.isfinite(ratio) else _X_HI


def residual_chart(cert: dict[str, Any]) -> str:
    """An SVG histogram of log10(|r| / tolerance) with counterexample markers."""
    num = cert.get("numeric") or {}
    hist = {(_X_LO if k == "0" else int(k)): n for k, n in num.get("residual_over_tolerance_histogram", {}).items()}
    top = max(hist.values(), default=1)
    slot = (_W - 2 * _PAD) / (_X_HI - _X_LO + 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img">',
             f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="black"/>']
    for decade, n in sorted(hist.items()):
        h = (_H - 2 * _PAD) * math.sqrt(n / top)
        parts.append(f'<rect x="{_x(decade):.1f}" y="{_H - _PAD - h:.1f}" width="{slot * 0.9:.1f}" height="{h:.1f}" '
                     f'fill="steelblue"><title>{n} instances</title></rect>')
    tol = _x(0)
    parts.append(f'<line x1="{tol:.1f}" y1="{_PAD / 2}" x2="{tol:.1f}" y2="{_H - _PAD}" stroke="red" '
                 f'stroke-dasharray="4"/><text x="{tol + 3:.1f}" y="{_PAD / 2 + 8}" font-size="10">tolerance</text>')
    markers = [(f"mutant {m['name']}", m["numeric"].get("counterexample")) for m in cert.get("mutants", [])]
    markers += [(f"without {a['assumption']}", a["search"].get("counterexample")) for a in cert.get("ablations", [])]
    for label, cx in markers:
        if not cx:
            continue
        ratio = number(cx.get("residual_over_tolerance_float64", "Infinity"))
        x = _x(_marker_decade(ratio)) + slot / 2
        parts.append(f'<path d="M {x:.1f} {_H - _PAD + 2} l -4 8 l 8 0 z" fill="crimson">'
                     f'<title>{html.escape(label)}: |r|/tol = {ratio:.3g}</title></path>')
    for decade in range(-15, _X_HI, 5):
        parts.append(f'<text x="{_x(decade):.1f}" y="{_H - 4}" font-size="10">1e{decade}</text>')
    parts.append(f'<text x="{_x(_X_LO):.1f}" y="{_H - 4}" font-size="10">0</text>')
    parts.append("</svg>")
    return "".join(parts)


def _counterexample_rows(cert: dict[str, Any]) -> Iterable[str]:
    searches = [("claim", cert.get("numeric"))]
    searches += [(f"mutant {m['name']}", m.get("numeric")) for m in cert.get("mutants", [])]
    searches += [(f"without {a['assumption']}", a.get("search")) for a in cert.get("ablations", [])]
    for label, search in searches:
        cx = (search or {}).get("counterexample")
        if not cx:
            continue
        sh = cx.get("shrink", {})
        cells = [label, json.dumps(sh.get("structure_before")), json.dumps(sh.get("structure_after")),
                 f"{sh.get('nonzero_entries_before')} → {sh.get('nonzero_entries_after')}",
                 f"{number(cx.get('residual_float64', 'NaN')):.3g}", cx.get("established", "")]
        yield "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def _rate_row(r: dict[str, Any]) -> str:
    lo, hi = r["interval95"]
    rate, interval = ("-", "-") if r["rate"] is None else (f"{r['rate']:.3g}", f"{lo:.3g} to {hi:.3g}")
    cells = [json.dumps(r["structure"]), f"{r['failing']:,} / {r['meeting_assumptions']:,}", rate, interval]
    return "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


def render(certs: list[dict[str, Any]]) -> str:
    ok = sum(c["ok"] for c in certs)
    body = [f"<h1>dlverify run: {ok} of {len(certs)} theorems as expected</h1>"]
    for c in certs:
        t = c["theorem"]
        sym = symbolic_cell(c.get("symbolic"))
        num = c.get("numeric") or {}
        muts = c.get("mutants", [])
        status = "ok" if c["ok"] else "FAILED: " + "; ".join(c["problems"])
        body.append(f'<h2 id="{html.escape(t["id"])}">{html.escape(t["id"])}: {html.escape(t["title"])}</h2>')
        body.append(f"<p><b>{html.escape(status)}</b>. Symbolic: {html.escape(sym)}. Numeric: "
                    f"{html.escape(str(num.get('verdict', '-')))} on {num.get('instances_satisfying_assumptions', 0):,} "
                    f"instances meeting the assumptions; largest |r| {num.get('largest_residual', 0):.2e}. "
                    f"Mutants refuted: {sum(m['refuted'] for m in muts)}/{len(muts)}. "
                    f"Tolerance: {html.escape(t['tolerance']['reason'])}.</p>")
        trust = c.get("trust", [])
        if trust:
            body.append("<ul class=\"trust\">" + "".join(f"<li>{html.escape(sentence(r))}</li>" for r in trust)
                        + "</ul>")
        body.append("<p>Residuals of the claim per decade of |r| / tolerance (bars, square-root scale); "
                    "counterexamples of mutants and ablations (triangles):</p>")
        body.append(residual_chart(c))
        rows = list(_counterexample_rows(c))
        if rows:
            body.append("<table><tr><th>search</th><th>structure found</th><th>after shrinking</th>"
                        "<th>nonzero entries</th><th>|r|</th><th>established</th></tr>" + "".join(rows) + "</table>")
        rates = c.get("failure_rates", [])
        if rates:
            body.append("<p>How often the claim fails (instances meeting the assumptions, 95% Wilson interval):</p>"
                        "<table><tr><th>structure</th><th>failing / meeting</th><th>rate</th><th>95%</th></tr>"
                        + "".join(_rate_row(r) for r in rates) + "</table>")
    style = ("body{font-family:sans-serif;max-width:900px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}")
    return ('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml">'
            f'<head><meta charset="utf-8"/><title>dlverify report</title><style>{style}</style></head>'
            f"<body>{''.join(body)}</body></html>\n")
