"""The HTML report (verify.render.html): environment and summary tables, sections in the same
order with failures first, the sorting and filtering script, math, and the residual chart; and,
where Chromium is installed, the page in a real browser (sorting, filtering, typeset math, and
no chart label or marker overlapping another or leaving the chart)."""

import copy
import json
import re
import xml.etree.ElementTree as ET

import pytest
from conftest import DATA, SMALL

import browser
from verify.engine.runner import run_theorem
from verify.records.certificate import load_certificates, write_certificate
from verify.registry import load_file
from verify.render.html import environment, katex_dir, render, residual_chart

NS = {"h": "http://www.w3.org/1999/xhtml", "s": "http://www.w3.org/2000/svg"}
#: user theorems from tests/data: one that holds, three that do not come out as expected
FILES = ("true", "false", "rounding", "vacuous")


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory):
    from verify.config import float64

    d = tmp_path_factory.mktemp("report-certs")
    with float64():
        for name in FILES:
            (thm,) = load_file(DATA / f"{name}_theorem.py")
            write_certificate(run_theorem(thm, budget=SMALL, out_dir=d / "counterexamples"), d)
    return d


@pytest.fixture(scope="module")
def certs(cert_dir):
    loaded = load_certificates(cert_dir)
    assert sorted(c["ok"] for c in loaded) == [False, False, False, True]
    return loaded


def _root(page: str) -> ET.Element:
    head, doctype, rest = page.split("\n", 2)
    assert head.startswith("<?xml") and doctype == "<!DOCTYPE html>"
    return ET.fromstring(rest)  # well-formed XML, or this raises


def _text(el: ET.Element) -> str:
    return "".join(el.itertext())


def _summary_ids(root: ET.Element) -> list[str]:
    return [tr.find("h:td", NS).get("data-value") for tr in root.findall(".//h:table[@id='summary']/h:tbody/h:tr", NS)]


def test_failures_first_in_the_summary_and_the_sections(certs):
    root = _root(render(certs))
    by_id = {c["theorem"]["id"]: c for c in certs}
    expected = sorted(by_id, key=lambda i: (by_id[i]["ok"], i))
    assert _summary_ids(root) == expected
    assert expected[-1] == "user.relu-odd-part"  # the one that passed, last
    sections = root.findall(".//h:details[@class]", NS)
    sections = [d for d in sections if "theorem" in d.get("class").split()]
    assert [d.get("id") for d in sections] == expected
    for d in sections:
        failed = not by_id[d.get("id")]["ok"]
        assert d.get("data-status") == ("failed" if failed else "passed")
        assert (d.get("open") == "open") is failed  # failed ones open, the others closed
    # each summary row links to its section
    links = [a.get("href") for a in root.findall(".//h:table[@id='summary']//h:a", NS)]
    assert links == [f"#{i}" for i in expected]


def test_environment_table_shows_what_the_certificates_record(certs):
    root = _root(render(certs))
    rows = {tr.find("h:th", NS).text: _text(tr.find("h:td", NS))
            for tr in root.findall(".//h:table[@id='environment']//h:tr", NS)}
    libs = certs[0]["libraries"]
    assert rows["dlverify"] == libs["dlverify"] and rows["SymPy"] == libs["sympy"]
    assert rows["Hypothesis"] == libs["hypothesis"] and rows["Python"] == libs["python"]
    assert rows["JAX"] == f"{libs['jax']} (jaxlib {libs['jaxlib']})"
    assert rows["Seed"] == str(certs[0]["seed"])
    assert f"batch {certs[0]['budget']['batch']:,}" in rows["Budget"]
    assert certs[0]["numeric_settings"]["platform"] in rows["Platform"] and "float64" in rows["Platform"]
    created = sorted(c["created"] for c in certs)
    assert rows["Created"] in (created[0], f"{created[0]} to {created[-1]}")
    # certificates that disagree: each value, with how many theorems have it
    other = copy.deepcopy(certs)
    other[0]["libraries"]["sympy"] = "0.0.1"
    other[1]["seed"] = 7
    env = dict(environment(other))
    assert env["SymPy"] == f"{libs['sympy']} (3 theorems); 0.0.1 (1 theorem)"
    assert "7 (1 theorem)" in env["Seed"]


def test_rows_carry_what_the_sorting_and_filtering_script_reads(certs):
    page = render(certs)
    root = _root(page)
    script = "".join(_text(s) for s in root.findall(".//h:script", NS))
    for used in ('getElementById("summary")', "data-value", "data-index", "aria-sort", "input.filter",
                 "data-status"):
        assert used in script, used
    head = [_text(th) for th in root.findall(".//h:table[@id='summary']/h:thead/h:tr/h:th", NS)]
    assert head == ["theorem", "expect", "symbolic", "numeric", "mutants refuted", "status"]
    by_id = {c["theorem"]["id"]: c for c in certs}
    rows = root.findall(".//h:table[@id='summary']/h:tbody/h:tr", NS)
    assert sorted(int(tr.get("data-index")) for tr in rows) == list(range(len(certs)))
    for tr in rows:
        cells = tr.findall("h:td", NS)
        assert len(cells) == len(head) and all(td.get("data-value") is not None for td in cells)
        c = by_id[cells[0].get("data-value")]
        assert tr.get("data-status") == ("passed" if c["ok"] else "failed") == _text(cells[5])
        muts = c["mutants"]
        assert _text(cells[4]) == f"{sum(m['refuted'] for m in muts)}/{len(muts)}"
    boxes = root.findall(".//h:input[@class='filter']", NS)
    assert sorted(b.get("value") for b in boxes) == ["failed", "passed"]


def test_chart_has_axes_and_the_certificates_counts(certs):
    root = _root(render(certs))
    charts = {}
    for d in root.findall(".//h:details", NS):
        svg = d.find("s:svg", NS)
        if svg is not None:
            charts[d.get("id")] = svg
    for c in certs:
        hist = c["numeric"]["residual_over_tolerance_histogram"]
        if not hist:
            continue
        svg = charts[c["theorem"]["id"]]
        counts = {t.get("data-bin"): t.text for t in svg.findall("s:text[@class='count']", NS)}
        assert counts == {k: f"{n:,}" for k, n in hist.items()}
        bars = {r.get("data-bin"): int(r.get("data-count")) for r in svg.findall("s:rect[@class='bar']", NS)}
        assert bars == hist
        labels = [t.text for t in svg.findall("s:text[@class='axis-label']", NS)]
        assert labels[0] == "instances (log scale)" and labels[1].startswith("|r| / tolerance")
        xticks = [t.text for t in svg.findall("s:text[@class='xtick']", NS)]
        assert "1" in xticks  # the tolerance's tick is always labelled
        assert len(svg.findall("s:line[@class='tolerance']", NS)) == 1
        assert svg.findall("s:text[@class='ytick']", NS)
    # the failed claim's own counterexample is a marker, numbered 1 as in the table below
    refuted = next(c for c in certs if c["theorem"]["id"] == "user.relu-additive")
    svg = charts["user.relu-additive"]
    assert [m.get("data-n") for m in svg.findall("s:path[@class='marker']", NS)][0] == "1"
    table = root.find(".//h:details[@id='user.relu-additive']//h:table[@class='counterexamples']", NS)
    first = table.find("h:tbody/h:tr", NS)
    assert [_text(td) for td in first.findall("h:td", NS)][:2] == ["1", "claim"]
    replay = first.find(".//h:a", NS)
    assert replay.get("href") == refuted["numeric"]["counterexample"]["file"]
    assert _text(replay) == f"verify replay {replay.get('href')}"


def _marker_boxes(svg: ET.Element) -> list[tuple[float, float, int]]:
    """(left, right, row) of each marker: its triangle and its number."""
    out = []
    for m in svg.findall("s:path[@class='marker']", NS):
        half = float(re.match(r"M \S+ \S+ l -(\S+) ", m.get("d")).group(1))
        x, digits = float(m.get("data-x")), len(m.get("data-n"))
        out.append((x - half, x + half + 1 + 6 * digits, int(m.get("data-row"))))
    return out


def test_counterexample_markers_do_not_overlap_and_stay_inside():
    """Six counterexamples at the same ratio, one at 0, one infinite: stacked in rows, none
    overlapping another, none past either edge."""
    ratios = [3.0] * 6 + [0.0, "Infinity", 1e-30, 2.5e12]
    cert = {"numeric": {"residual_over_tolerance_histogram": {"zero": 5, "-18": 123456, "-3": 7, "2": 99999}},
            "mutants": [{"name": f"m{i}", "refuted": True, "numeric": {"counterexample": {
                "residual_over_tolerance_float64": r}}} for i, r in enumerate(ratios)]}
    svg = ET.fromstring(residual_chart(cert))
    width = float(svg.get("width"))
    boxes = _marker_boxes(svg)
    assert len(boxes) == len(ratios)
    assert max(row for *_, row in boxes) >= 5  # the six at one ratio went into rows of their own
    for i, (a, b, row) in enumerate(boxes):
        assert 0 <= a and b <= width, (a, b, width)
        for a2, b2, row2 in boxes[i + 1:]:
            assert row != row2 or b <= a2 or b2 <= a, "markers overlap"
    counts = {t.get("data-bin"): t.text for t in svg.findall("s:text[@class='count']", NS)}
    assert counts == {"zero": "5", "-18": "123,456", "-3": "7", "2": "99,999"}
    xticks = [t.text for t in svg.findall("s:text[@class='xtick']", NS)]
    assert "0" in xticks and "≥1e13" in xticks  # the exact-zero and overflow slots are labelled


def test_cli_writes_the_page_and_says_how_math_is_shown(cert_dir, certs, tmp_path, capsys):
    from verify.cli import main

    out = tmp_path / "report.html"
    assert main(["report", "--certificates", str(cert_dir), "-o", str(out)]) == 0
    said = "".join(capsys.readouterr())
    assert f"wrote {out} (4 theorems; " in said
    assert ("typeset by KaTeX" in said) is (katex_dir() is not None)
    assert out.read_text() == render(certs)


def test_statements_as_math_with_katex_else_as_latex_source(certs):
    formulas = sum(len(re.findall(r"\$[^$]+\$", c["theorem"]["statement"])) for c in certs)
    assert formulas > 0
    plain_page = render(certs, katex=None)
    plain = _root(plain_page)
    assert len(plain.findall(".//h:p[@class='statement']/h:code[@class='tex']", NS)) == formulas
    assert plain.find(".//h:p[@id='math-note']", NS) is not None and "data:font/" not in plain_page
    found = katex_dir()
    if found is None:
        pytest.skip("KaTeX not found (verify/render/katex, or set DLVERIFY_KATEX): only the fallback was checked")
    page = render(certs, katex=found)
    root = _root(page)
    spans = root.findall(".//h:p[@class='statement']/h:span", NS)
    assert len(spans) == formulas and all("math" in s.get("class").split() for s in spans)
    assert root.find(".//h:p[@id='math-note']", NS) is None
    assert "katex.render(" in page and "data:font/woff2;base64," in page  # the script and fonts, inlined
    assert not re.search(r"""(?:src|href)=["'](?:https?:)?//""", page)  # nothing loaded from the network


# ----------------------------------------------------------------------------- in a browser

_PROBE = r"""
window.addEventListener("load", function () {
  var out = {};
  function ids() {
    return Array.prototype.map.call(document.querySelectorAll("#summary tbody tr"),
                                    function (r) { return r.cells[0].getAttribute("data-value"); });
  }
  var ths = document.querySelectorAll("#summary thead th");
  out.initial = ids();
  ths[0].click(); out.first = ids();
  ths[0].click(); out.second = ids();
  ths[5].click(); ths[5].click(); out.statusDown = ids();
  var box = document.querySelector("input.filter[value='passed']");
  box.checked = false; box.dispatchEvent(new Event("change"));
  out.hidden = Array.prototype.filter.call(document.querySelectorAll("[data-status]"),
                                           function (e) { return e.hidden; }).map(function (e) { return e.tagName; });
  box.checked = true; box.dispatchEvent(new Event("change"));
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  out.math = document.querySelectorAll(".math").length;
  out.typeset = document.querySelectorAll(".math .katex").length;
  out.errors = document.querySelectorAll(".katex-error").length;
  out.problems = [];
  document.querySelectorAll("svg.residuals").forEach(function (svg) {
    var frame = svg.getBoundingClientRect();
    var els = svg.querySelectorAll("path.marker, text.marker-n, text.xtick, text.count, text.ytick, text.axis-label");
    var boxes = Array.prototype.map.call(els, function (e) {
      var b = e.getBoundingClientRect();
      return [b.left, b.top, b.right, b.bottom, e.textContent || e.getAttribute("data-n")];
    });
    boxes.forEach(function (b, i) {
      if (b[0] < frame.left - 0.5 || b[2] > frame.right + 0.5 || b[1] < frame.top - 0.5 || b[3] > frame.bottom + 0.5) {
        out.problems.push("outside: " + b[4]);
      }
      boxes.slice(i + 1).forEach(function (c) {
        if (b[0] < c[2] - 0.5 && c[0] < b[2] - 0.5 && b[1] < c[3] - 0.5 && c[1] < b[3] - 0.5) {
          out.problems.push("overlap: " + b[4] + " / " + c[4]);
        }
      });
    });
  });
  var pre = document.createElement("pre");
  pre.id = "probe"; pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
"""


@pytest.mark.skipif(browser.chromium() is None,
                    reason="chromium not installed: the report was not checked in a browser (apt-get install chromium)")
def test_report_sorts_filters_and_typesets_in_a_browser(certs, tmp_path):
    import html

    # add a chart with crowded markers, so that the overlap check has something to check
    crowded = copy.deepcopy(next(c for c in certs if c["theorem"]["id"] == "user.relu-additive"))
    crowded["theorem"]["id"] = "user.crowded"
    cx = crowded["numeric"]["counterexample"]
    crowded["mutants"] = [{"name": f"m{i}", "refuted": True, "numeric": {"counterexample": dict(
        cx, residual_over_tolerance_float64=r)}} for i, r in enumerate([3.0, 3.0, 3.1, 0.0, "Infinity", 2e12])]
    page = render([*certs, crowded])
    (tmp_path / "report.html").write_text(page.replace("</body>", f"<script>{_PROBE}</script></body>"))
    with browser.serve(tmp_path) as base:
        dom = browser.render_dom(base + "report.html")
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe script did not run"
    out = json.loads(html.unescape(found.group(1)))
    ids = sorted(c["theorem"]["id"] for c in [*certs, crowded])
    assert out["first"] == ids and out["second"] == ids[::-1]  # one click sorts up, the next down
    assert out["initial"][-1] == "user.relu-odd-part" and out["statusDown"][0] == "user.relu-odd-part"
    assert sorted(out["hidden"]) == ["DETAILS", "TR"]  # the passed theorem's row and section
    if katex_dir() is not None:
        assert out["math"] > 0 and out["typeset"] == out["math"] and out["errors"] == 0, out
    assert out["problems"] == []
