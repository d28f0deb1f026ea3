"""A self-contained HTML report of a run, from its certificates (the layout of pytest-html).

From the top: an environment table (the library versions, JAX's settings, the seed, the budget
and when the certificates were made, as the certificates record them; a field on which the
certificates differ lists each value with how many theorems have it); a summary table, one row
per theorem with failures first, sortable by a click on a column header and filtered by outcome
(passed / failed) with a few lines of inline JavaScript; then one expandable section per theorem
(``<details>``, open when it failed) in the same order: the statement as math, the verdicts, the
trust rows (:func:`verify.records.trust.sentence`), a chart of the claim's residuals with where
each counterexample landed, the counterexamples with their replay commands, the structures
searched and, where a theorem lists ``rates_on``, the measured failure rates.

The page is well-formed XHTML with inline SVG, CSS and scripts: it loads nothing, so it works
offline and can be mailed as one file. Statements are typeset by KaTeX when its files are found
(:func:`katex_dir`); they are inlined, fonts included (about 0.6 MB). Without KaTeX a statement
shows its LaTeX source in ``<code>`` and the page says so.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping

from verify.records.certificate import HISTOGRAM_DECADES, load_certificates  # noqa: F401 (re-exported)
from verify.records.io import number
from verify.records.trust import sentence, symbolic_cell

XHTML_NS = "http://www.w3.org/1999/xhtml"
SVG_NS = "http://www.w3.org/2000/svg"
#: a directory holding KaTeX's dist files (katex.min.js, katex.min.css, fonts/), tried first
KATEX_ENV = "DLVERIFY_KATEX"


# ----------------------------------------------------------------------------- markup


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _el(tag: str, body: str = "", /, **attrs: Any) -> str:
    """``<tag attrs>body</tag>``; ``body`` is markup (escape text with :func:`_esc`). An attribute
    ``class_`` is ``class``, ``data_x`` is ``data-x``; ``None`` and ``False`` omit it."""
    parts = [tag]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(f'{name}="{_esc(name if value is True else value)}"')
    return f"<{' '.join(parts)}>{body}</{tag}>"


def _row(cells: Iterable[Any], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{_esc(c)}</{tag}>" for c in cells) + "</tr>"


def _cdata(code: str) -> str:
    """Script or style text that reads the same to an XML and to an HTML parser."""
    if "]]>" in code or re.search(r"</(script|style)", code, re.I):
        raise ValueError("inline code must not contain ']]>', '</script' or '</style'")
    return f"/*<![CDATA[*/\n{code}\n/*]]>*/"


# ----------------------------------------------------------------------------- KaTeX


def katex_dir() -> Path | None:
    """Where KaTeX's files are: ``$DLVERIFY_KATEX``, else the copy shipped with this module
    (``verify/render/katex``, in the wheel too), else Debian's ``libjs-katex``; None when none of
    them holds ``katex.min.js`` and ``katex.min.css``."""
    here = Path(__file__).resolve().parent
    candidates = [os.environ.get(KATEX_ENV) or None, here / "katex",
                  "/usr/share/javascript/katex"]
    for c in candidates:
        if c and (Path(c) / "katex.min.js").is_file() and (Path(c) / "katex.min.css").is_file():
            return Path(c)
    return None


@functools.lru_cache(maxsize=4)
def _katex_assets(directory: Path) -> tuple[str, str]:
    """KaTeX's stylesheet, each font it names inlined as a data: URL (a font file that is absent
    is dropped from its rule), and its script."""
    css = (directory / "katex.min.css").read_text(encoding="utf-8")

    def font(m: re.Match[str]) -> str:
        path = directory / m.group(1)
        if not path.is_file():
            return ""
        kind = path.suffix.lstrip(".").replace("ttf", "truetype")
        return f'url(data:font/{kind};base64,{base64.b64encode(path.read_bytes()).decode()}) format("{kind}")'

    css = re.sub(r'url\((fonts/[^)]+)\)\s*format\("[^"]+"\)', font, css)
    css = re.sub(r",\s*(?=[,;}])", "", css)  # the comma before a dropped source
    return css, (directory / "katex.min.js").read_text(encoding="utf-8")


_MATH = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<!\\)\$(.+?)(?<!\\)\$", re.S)
_TEXT_MODE = re.compile(r"\\(texttt|emph|textit|textbf)\{([^{}]*)\}|\\([_%&#${}])|``|''|---|--|~")
_TEXT_MODE_CHARS = {"``": "\u201c", "''": "\u201d", "---": "\u2014", "--": "\u2013", "~": "\u00a0"}


def _text_html(s: str) -> str:
    """LaTeX text-mode markup outside math as XHTML: ``\\texttt``, ``\\emph``, ``\\textit``,
    ``\\textbf``, escaped specials, quotes, dashes and ``~``; anything else as written."""
    out, pos = [], 0
    for m in _TEXT_MODE.finditer(s):
        out.append(_esc(s[pos:m.start()]))
        command, arg, char = m.group(1), m.group(2), m.group(3)
        if command == "texttt":
            out.append(_el("code", _esc(re.sub(r"\\([_%&#${}])", r"\1", arg))))
        elif command:
            out.append(_el("b" if command == "textbf" else "em", _text_html(arg)))
        else:
            out.append(_esc(char) if char else _TEXT_MODE_CHARS[m.group(0)])
        pos = m.end()
    out.append(_esc(s[pos:]))
    return "".join(out)


def statement_html(statement: str, math_rendered: bool) -> str:
    """A statement as XHTML: each ``$...$`` (``$$...$$`` displayed) a ``span.math`` that the
    page's script typesets with KaTeX, or, with ``math_rendered`` false, a ``code.tex`` holding
    the formula's LaTeX source with its dollars."""
    out, pos = [], 0
    for m in _MATH.finditer(statement):
        out.append(_text_html(statement[pos:m.start()]))
        display = m.group(1) is not None
        if math_rendered:
            out.append(_el("span", _esc(m.group(1) if display else m.group(2)),
                           class_="math display" if display else "math"))
        else:
            out.append(_el("code", _esc(m.group(0)), class_="tex"))
        pos = m.end()
    out.append(_text_html(statement[pos:]))
    return "".join(out)


# ----------------------------------------------------------------------------- the residual chart

_CW = 720  # chart width
_LEFT, _RIGHT, _TOP = 50, 30, 20  # room for the y-axis labels, for the last marker's number, for the tolerance label
_PLOT_H = 130
_ROW = 14  # one row of counterexample markers
_MARK = 5  # half-width of a marker triangle
_OVER = 13  # ratios from 1e13 up (and infinite or NaN ones) share one slot at the right
_FONT = 10
_CHAR = 6.0  # width of one digit at _FONT (generous, so text never overlaps)


def _ratio(cx: Mapping[str, Any]) -> float:
    r = number(cx.get("residual_over_tolerance_float64", "Infinity"))
    return r if r == r else math.inf  # NaN: no finite bound, drawn with the overflow


def _markers(cert: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every search of the certificate that found a counterexample, with its label, in table order."""
    searches = [("claim", cert.get("numeric"))]
    searches += [(f"mutant {m['name']}", m.get("numeric")) for m in cert.get("mutants", [])]
    searches += [(f"without {a['assumption']}", a.get("search")) for a in cert.get("ablations", [])]
    return [(label, s["counterexample"]) for label, s in searches if s and s.get("counterexample")]


def _tick(k: int) -> str:
    return "1" if k == 0 else "10" if k == 1 else f"1e{k}"


def _count(n: int) -> str:
    return f"{n:,}"


def residual_chart(cert: Mapping[str, Any]) -> str:
    """An SVG histogram of |r| / tolerance for the claim's instances meeting the assumptions, one
    bar per decade (a bar at k counts 10^k <= ratio < 10^(k+1); the outermost decades of
    :data:`HISTOGRAM_DECADES` also hold what lies beyond them; exact zeros have their own slot),
    the count on each bar, a logarithmic y axis, the tolerance (ratio 1) as a dashed line, and
    below the axis a numbered triangle where each counterexample's ratio lies (numbers as in the
    report's table of counterexamples). Triangles that would overlap are stacked in rows."""
    num = cert.get("numeric") or {}
    hist: dict[Any, int] = {}
    for k, n in num.get("residual_over_tolerance_histogram", {}).items():
        if n:
            hist["zero" if k == "zero" else int(k)] = n
    ratios = [(i + 1, label, _ratio(cx)) for i, (label, cx) in enumerate(_markers(cert))]

    def slot_of(r: float) -> Any:
        return "zero" if r == 0 else "over" if not r < 10.0 ** _OVER else math.floor(math.log10(r))

    decades = [k for k in hist if k != "zero"] + [s for s in map(slot_of, (r for *_, r in ratios))
                                                  if s not in ("zero", "over")]
    lo, hi = min(decades + [-1]), max(decades + [0])
    kinds = {slot_of(r) for *_, r in ratios} | set(hist)
    slots = (["zero"] if "zero" in kinds else []) + list(range(lo, hi + 1)) + (["over"] if "over" in kinds else [])
    sw = (_CW - _LEFT - _RIGHT) / len(slots)
    left = {s: _LEFT + i * sw for i, s in enumerate(slots)}

    # counts: horizontal over the bar when they fit, else turned to read upwards
    top = max(hist.values(), default=1)
    turn = any(len(_count(n)) * _CHAR + 2 > sw for n in hist.values())
    room = (max((len(_count(n)) for n in hist.values()), default=1) * _CHAR + 6) if turn else _FONT + 4
    base = _TOP + _PLOT_H
    scale = (_PLOT_H - room) / math.log10(1 + top)

    def y(n: float) -> float:
        return base - scale * math.log10(1 + n)

    # markers: stacked greedily, left to right, in the first row where they clear the previous one
    placed, rows_end = [], []
    for i, label, r in sorted(ratios, key=lambda m: (m[2], m[0])):
        s = slot_of(r)
        if s in ("zero", "over"):
            x = left[s] + sw / 2
        else:
            x = left[s] + (math.log10(r) - s) * sw
        x = min(max(x, _MARK + 1), _CW - _MARK - 1 - len(str(i)) * _CHAR)
        width = 2 * _MARK + 2 + len(str(i)) * _CHAR
        row = next((j for j, end in enumerate(rows_end) if x - _MARK >= end + 2), len(rows_end))
        if row == len(rows_end):
            rows_end.append(0.0)
        rows_end[row] = x - _MARK + width
        placed.append((i, label, r, x, row))
    tick_y = base + 4 + _FONT
    band = tick_y + 6
    axis_y = band + len(rows_end) * _ROW + (_FONT + 4 if rows_end else _FONT)
    height = axis_y + 6

    p = [f'<svg xmlns="{SVG_NS}" width="{_CW}" height="{height:.0f}" viewBox="0 0 {_CW} {height:.0f}" '
         f'font-family="sans-serif" font-size="{_FONT}" role="img" class="residuals">',
         f"<title>|r| / tolerance of {sum(hist.values()):,} instances meeting the assumptions, by decade</title>"]
    # y axis: decade ticks of the count
    p.append(f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}" stroke="#444"/>')
    for j in range(int(math.log10(top)) + 1 if hist else 1):
        v = 10 ** j
        yy = y(v)
        p.append(f'<line x1="{_LEFT - 4}" y1="{yy:.1f}" x2="{_LEFT}" y2="{yy:.1f}" stroke="#444"/>'
                 f'<text class="ytick" x="{_LEFT - 6}" y="{yy + 3.5:.1f}" text-anchor="end">'
                 f'{_count(v) if j < 4 else f"1e{j}"}</text>')
    p.append(f'<text class="axis-label" x="12" y="{(_TOP + base) / 2:.1f}" text-anchor="middle" '
             f'transform="rotate(-90 12 {(_TOP + base) / 2:.1f})">instances (log scale)</text>')
    # bars and their counts
    for s in slots:
        n = hist.get(s, 0)
        if not n:
            continue
        x0, h = left[s] + sw * 0.1, base - y(n)
        what = ("exactly 0" if s == "zero" else f"below 1e{s + 1}" if s == HISTOGRAM_DECADES.start
                else f"at least 1e{s}" if s == HISTOGRAM_DECADES.stop - 1 else f"1e{s} to 1e{s + 1}")
        p.append(f'<rect class="bar" data-bin="{s}" data-count="{n}" x="{x0:.1f}" y="{y(n):.1f}" '
                 f'width="{sw * 0.8:.1f}" height="{h:.1f}" fill="steelblue">'
                 f"<title>{_count(n)} instances with |r| / tolerance {what}</title></rect>")
        cx = left[s] + sw / 2
        if turn:
            p.append(f'<text class="count" data-bin="{s}" x="{cx + 3.5:.1f}" y="{y(n) - 3:.1f}" '
                     f'transform="rotate(-90 {cx + 3.5:.1f} {y(n) - 3:.1f})">{_count(n)}</text>')
        else:
            p.append(f'<text class="count" data-bin="{s}" x="{cx:.1f}" y="{y(n) - 3:.1f}" '
                     f'text-anchor="middle">{_count(n)}</text>')
    # x axis: a tick at each decade's edge; labels where they have room (the tolerance's first)
    p.append(f'<line x1="{_LEFT}" y1="{base}" x2="{_CW - _RIGHT}" y2="{base}" stroke="#444"/>')
    step = next(k for k in (1, 2, 3, 5, 10, 20) if k * sw >= 5 * _CHAR + 4)
    labels = [(1, left["zero"] + sw / 2, "0", "middle")] if "zero" in slots else []
    if "over" in slots:
        labels.append((1, left["over"] + 1, f"≥1e{_OVER}", "start"))
    for k in range(lo, hi + 2):
        xk = left[k] if k <= hi else left[hi] + sw
        p.append(f'<line x1="{xk:.1f}" y1="{base}" x2="{xk:.1f}" y2="{base + 4}" stroke="#444"/>')
        if k % step == 0 and not (k == hi + 1 and "over" in slots):
            labels.append((0 if k == 0 else 2, xk, _tick(k), "middle"))
    kept: list[tuple[float, float]] = []
    for _, xk, text, anchor in sorted(labels, key=lambda t: t[0]):
        a = xk - len(text) * _CHAR / 2 if anchor == "middle" else xk
        b = a + len(text) * _CHAR
        if a < 0 or b > _CW or any(a < kb + 3 and ka < b + 3 for ka, kb in kept):
            continue
        kept.append((a, b))
        p.append(f'<text class="xtick" x="{xk:.1f}" y="{tick_y}" text-anchor="{anchor}">{text}</text>')
    # the tolerance
    tol = left[0]
    p.append(f'<line class="tolerance" x1="{tol:.1f}" y1="{_TOP - 4}" x2="{tol:.1f}" y2="{base}" stroke="red" '
             f'stroke-dasharray="4 3"/><text x="{tol:.1f}" y="{_TOP - 7}" text-anchor="middle" fill="red">'
             f"tolerance</text>")
    # counterexamples
    for i, label, r, x, row in sorted(placed):
        yy = band + row * _ROW
        colour = "black" if label == "claim" else "crimson"
        p.append(f'<path class="marker" data-n="{i}" data-x="{x:.1f}" data-row="{row}" '
                 f'd="M {x:.1f} {yy:.1f} l -{_MARK} 9 l {2 * _MARK} 0 z" fill="{colour}">'
                 f"<title>{_esc(f'{i}: {label}: |r| / tolerance = {r:.3g}')}</title></path>"
                 f'<text class="marker-n" x="{x + _MARK + 1:.1f}" y="{yy + 9:.1f}">{i}</text>')
    caption = "|r| / tolerance" + (" (triangles: counterexamples, numbered as in the table below)" if placed else "")
    p.append(f'<text class="axis-label" x="{(_LEFT + _CW - _RIGHT) / 2:.1f}" y="{axis_y:.1f}" '
             f'text-anchor="middle">{_esc(caption)}</text>')
    p.append("</svg>")
    return "".join(p)


# ----------------------------------------------------------------------------- one theorem


def _counterexample_rows(cert: Mapping[str, Any]) -> Iterable[str]:
    for i, (label, cx) in enumerate(_markers(cert), 1):
        sh = cx.get("shrink") or {}
        cells = [_esc(i), _esc(label), _esc(json.dumps(sh.get("structure_before", cx.get("structure")))),
                 _esc(json.dumps(sh.get("structure_after", cx.get("structure")))),
                 _esc(f"{sh.get('nonzero_entries_before', '-')} → {sh.get('nonzero_entries_after', '-')}"),
                 _esc(f"{number(cx.get('residual_float64', 'NaN')):.3g}"), _esc(f"{_ratio(cx):.3g}"),
                 _esc(cx.get("established", ""))]
        f = cx.get("file") or ""
        cells.append(_el("a", _el("code", _esc(f"verify replay {f}")), href=f) if f else "not saved")
        yield "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _structure_row(r: Mapping[str, Any]) -> str:
    return _row([json.dumps(r["structure"]), f"{r['drawn']:,}", f"{r['meeting_assumptions']:,}",
                 f"{r['nontrivial']:,}", f"{r['failing']:,}", f"{r['best_ratio']:.2g}"])


def _rate_row(r: Mapping[str, Any]) -> str:
    lo, hi = r["interval95"]
    rate, interval = ("-", "-") if r["rate"] is None else (f"{r['rate']:.3g}", f"{lo:.3g} to {hi:.3g}")
    return _row([json.dumps(r["structure"]), f"{r['failing']:,} / {r['meeting_assumptions']:,}", rate, interval])


def _status(c: Mapping[str, Any]) -> str:
    return "passed" if c["ok"] else "failed"


def _section(c: Mapping[str, Any], math_rendered: bool) -> str:
    t = c["theorem"]
    num = c.get("numeric") or {}
    muts = c.get("mutants", [])
    status = _status(c)
    body = [_el("summary", _el("span", status, class_=f"badge {status}") + " " + _el("b", _esc(t["id"]))
                + " " + _esc(t["title"])),
            _el("p", statement_html(t["statement"], math_rendered), class_="statement")]
    if c["problems"]:
        body.append(_el("ul", "".join(_el("li", _esc(p)) for p in c["problems"]), class_="problems"))
    body.append(_el("p", _esc(
        f"Expected {t['expect']}. Symbolic: {symbolic_cell(c.get('symbolic'))}. Numeric: {num.get('verdict', '-')} on "
        f"{num.get('instances_satisfying_assumptions', 0):,} instances meeting the assumptions; largest |r| "
        f"{number(num.get('largest_residual', 0)):.2e}. "
        f"Mutants refuted: {sum(m['refuted'] for m in muts)}/{len(muts)}. "
        f"Tolerance: {t['tolerance']['reason']}. Source: {t['source']}.")))
    trust = c.get("trust", [])
    if trust:
        body.append(_el("ul", "".join(_el("li", _esc(sentence(r))) for r in trust), class_="trust"))
    if num:
        body.append(_el("p", "Residuals of the claim on the instances meeting its assumptions, per decade of "
                             "|r| / tolerance:", class_="caption"))
        body.append(residual_chart(c))
    rows = list(_counterexample_rows(c))
    if rows:
        head = _row(["#", "search", "structure found", "after shrinking", "nonzero entries", "|r|", "|r| / tol",
                     "established", "replay"], "th")
        body.append(_el("table", _el("thead", head) + _el("tbody", "".join(rows)), class_="counterexamples"))
    per = num.get("structures") or []
    if per:
        cov = num.get("coverage") or {}
        head = (f"Structures searched by the claim's search: {len(per)}"
                + (f"; the small scope has {cov.get('structures')}, of which {cov.get('covered')} got a batch"
                   if cov else ""))
        th = _row(["structure", "drawn", "meeting assumptions", "non-trivial", "failing", "largest |r| / tol"], "th")
        body.append(_el("details", _el("summary", _esc(head)) + _el("table", _el("thead", th) + _el(
            "tbody", "".join(_structure_row(r) for r in per))), class_="structures"))
    rates = c.get("failure_rates", [])
    if rates:
        body.append("<p>How often the claim fails (instances meeting the assumptions, 95% Wilson interval):</p>"
                    "<table><tr><th>structure</th><th>failing / meeting</th><th>rate</th><th>95%</th></tr>"
                    + "".join(_rate_row(r) for r in rates) + "</table>")
    return _el("details", "".join(body), id=t["id"], class_=f"theorem {status}", data_status=status,
               open=status == "failed" or None)


# ----------------------------------------------------------------------------- the tables at the top


def _one(values: list[str]) -> str:
    """One value, or each distinct value with how many theorems have it (most first)."""
    counts = Counter(values)
    if len(counts) == 1:
        return values[0]
    return "; ".join(f"{v} ({n} theorem{'s' if n != 1 else ''})" for v, n in counts.most_common())


def environment(certs: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The environment table's rows (name, value), from the certificates' ``libraries``,
    ``numeric_settings``, ``seed``, ``budget`` and ``created``."""
    def lib(c: Mapping[str, Any], name: str) -> str:
        return str((c.get("libraries") or {}).get(name, "not recorded"))

    def settings(c: Mapping[str, Any]) -> str:
        s = c.get("numeric_settings") or {}
        if not s:
            return "not recorded"
        return (f"JAX on {s.get('platform', '?')}, {s.get('dtype', '?')}, matmul precision "
                f"{s.get('jax_default_matmul_precision', '?')}; high precision {s.get('highprec_digits', '?')} digits")

    def budget(c: Mapping[str, Any]) -> str:
        b = c.get("budget") or {}
        return ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in b.items()) or "not recorded"

    rows = [("dlverify", [lib(c, "dlverify") for c in certs]),
            ("JAX", [f"{lib(c, 'jax')} (jaxlib {lib(c, 'jaxlib')})" for c in certs]),
            ("SymPy", [lib(c, "sympy") for c in certs]),
            ("Hypothesis", [lib(c, "hypothesis") for c in certs]),
            ("NumPy", [lib(c, "numpy") for c in certs]),
            ("SciPy", [lib(c, "scipy") for c in certs]),
            ("mpmath", [lib(c, "mpmath") for c in certs]),
            ("Python", [lib(c, "python") for c in certs]),
            ("Platform", [settings(c) for c in certs]),
            ("Seed", [str(c.get("seed", "not recorded")) for c in certs]),
            ("Budget", [budget(c) for c in certs])]
    out = [(name, _one(values)) for name, values in rows]
    created = sorted(str(c["created"]) for c in certs if c.get("created"))
    out.append(("Created", "not recorded" if not created else created[0] if created[0] == created[-1]
                else f"{created[0]} to {created[-1]}"))
    return out


def _summary_row(i: int, c: Mapping[str, Any]) -> str:
    t = c["theorem"]
    num = c.get("numeric") or {}
    muts = c.get("mutants", [])
    refuted = sum(m["refuted"] for m in muts)
    status = _status(c)
    cells = [
        (t["id"], _el("a", _esc(t["id"]), href=f"#{t['id']}") + " " + _el("span", _esc(t["title"]), class_="title")),
        (t["expect"], _esc(t["expect"])),
        (symbolic_cell(c.get("symbolic")), _esc(symbolic_cell(c.get("symbolic")))),
        (num.get("verdict", "-"), _esc(f"{num.get('verdict', '-')} ({num.get('instances_satisfying_assumptions', 0):,})"
                                      if num else "-")),
        (f"{refuted / len(muts):.6f}" if muts else "-1", _esc(f"{refuted}/{len(muts)}")),
        ("0" if status == "failed" else "1", _el("span", status, class_=f"badge {status}",
                                                 title="; ".join(c["problems"]) or None)),
    ]
    return _el("tr", "".join(_el("td", body, data_value=value) for value, body in cells),
               class_=status, data_status=status, data_index=i)


_SCRIPT = r"""
(function () {
  var table = document.getElementById("summary");
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function cell(row, i) { return row.cells[i].getAttribute("data-value"); }
  Array.prototype.forEach.call(heads, function (th, i) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = cell(a, i), y = cell(b, i), nx = Number(x), ny = Number(y);
        var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return (up ? c : -c) || (Number(a.getAttribute("data-index")) - Number(b.getAttribute("data-index")));
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  document.querySelectorAll("input.filter").forEach(function (box) {
    box.addEventListener("change", function () {
      document.querySelectorAll("[data-status='" + box.value + "']").forEach(function (el) {
        if (el.tagName.toLowerCase() !== "input") { el.hidden = !box.checked; }
      });
    });
  });
  function openTarget() {
    var el = location.hash ? document.getElementById(decodeURIComponent(location.hash.slice(1))) : null;
    if (el && el.tagName.toLowerCase() === "details") { el.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  if (window.katex) {
    document.querySelectorAll(".math").forEach(function (el) {
      katex.render(el.textContent, el, {displayMode: el.classList.contains("display"), throwOnError: false});
    });
  }
})();
"""

_STYLE = """
body{font-family:sans-serif;max-width:1100px;margin:auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px;text-align:left;vertical-align:top}
#environment th{background:#f4f4f4}
#summary th{cursor:pointer;background:#f4f4f4;user-select:none}
#summary th::after{content:" \\2195";color:#aaa}
#summary th[aria-sort=ascending]::after{content:" \\25B2";color:#222}
#summary th[aria-sort=descending]::after{content:" \\25BC";color:#222}
tr.failed td{background:#fde8e8}
tr.passed td{background:#eef8ee}
.title{color:#666}
.badge{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:12px}
.badge.passed{background:#2e7d32}
.badge.failed{background:#c62828}
details.theorem{border:1px solid #ccc;border-radius:4px;margin:.5em 0;padding:.2em .6em}
details.theorem.failed{border-color:#c62828}
details.theorem>summary{cursor:pointer;padding:.2em 0}
p.statement{font-size:15px;background:#f8f8f8;padding:.4em .6em}
ul.problems{color:#c62828}
code.tex{background:#f1f1f1}
.filters label{margin-right:1em}
.note{color:#666;font-size:12px}
svg.residuals{display:block;overflow:visible}
"""


def render(certs: list[Mapping[str, Any]], *, katex: str | Path | None = "auto") -> str:
    """The report page (XHTML) of ``certs``. ``katex``: a directory of KaTeX's files to inline,
    ``"auto"`` for :func:`katex_dir`, None for none (statements show their LaTeX source)."""
    kdir = katex_dir() if katex == "auto" else Path(katex) if katex else None
    order = sorted(certs, key=lambda c: (c["ok"], c["theorem"]["id"]))
    failed = sum(not c["ok"] for c in certs)
    passed = len(certs) - failed

    body = [_el("h1", _esc(f"dlverify run: {passed} of {len(certs)} theorems as expected"))]
    body.append(_el("h2", "Environment"))
    body.append(_el("table", _el("tbody", "".join(_el("tr", _el("th", _esc(k)) + _el("td", _esc(v)))
                                                  for k, v in environment(certs))), id="environment"))
    body.append(_el("h2", "Summary"))
    body.append(_el("p", _esc(f"{len(certs)} theorems: {failed} failed, {passed} passed. Failures first; click a "
                              f"column header to sort by it. Show:") + " " + "".join(
        _el("label", f'<input type="checkbox" class="filter" value="{s}" checked="checked"/> '
            + _el("span", _esc(f"{n} {s}"), class_=f"badge {s}")) for s, n in (("failed", failed), ("passed", passed))),
        class_="filters"))
    head = "".join(_el("th", _esc(h)) for h in ("theorem", "expect", "symbolic", "numeric", "mutants refuted",
                                                "status"))
    body.append(_el("table", _el("thead", _el("tr", head)) + _el("tbody", "".join(
        _summary_row(i, c) for i, c in enumerate(order))), id="summary"))
    body.append(_el("h2", "Theorems"))
    if kdir is None:
        body.append(_el("p", _esc(f"KaTeX was not found (set {KATEX_ENV} to a directory holding katex.min.js, "
                                  "katex.min.css and fonts/), so each formula shows its LaTeX source."),
                        class_="note", id="math-note"))
    body.extend(_section(c, kdir is not None) for c in order)

    style, scripts = _STYLE, []
    if kdir is not None:
        css, js = _katex_assets(kdir)
        style = css + "\n" + style
        scripts.append(js)
    scripts.append(_SCRIPT)
    return ('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
            f'<html xmlns="{XHTML_NS}" lang="en"><head><meta charset="utf-8"/><title>dlverify report</title>'
            f"<style>{_cdata(style)}</style></head><body>{''.join(body)}"
            + "".join(f"<script>{_cdata(s)}</script>" for s in scripts) + "</body></html>\n")
