"""Citing from certificates, the theorem graph, and the HTML report."""

import json
import re
import shutil
import subprocess

import pytest
from conftest import SMALL

from verify.engine.runner import run_theorem
from verify.errors import NotVerified, VerifyError
from verify.records.certificate import write_certificate
from verify.registry import current_statement_hash, get, load_file
from verify.render import cite as _cite
from verify.render.graph import status_of, to_dot, to_text


def cite(theorem_id, fmt, directory):
    return _cite.cite(theorem_id, fmt, directory, current_statement_hash)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    write_certificate(run_theorem(get("patel2016.render-layer-convnet"), budget=SMALL), d)
    return d


def _balanced(text: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_latex_snippet_states_what_the_certificate_established(certs):
    tex = cite("patel2016.render-layer-convnet", "latex", certs)
    assert tex.count(r"\begin{theorem}") == tex.count(r"\end{theorem}") == 1 and _balanced(tex)
    assert r"\cite{patel2016probabilistic}" in tex and r"\cite{dlverify}" in tex
    # what the engine computed: the chain is over symbolic sizes D, K, P
    assert r"\texttt{z\_nonneg}" in tex and "proved for all sizes (D, K, P)" in tex
    cert = json.loads((certs / "patel2016.render-layer-convnet.json").read_text())
    assert f"tested on {cert['numeric']['instances_satisfying_assumptions']:,} random instances" in tex
    assert "shown necessary (a counterexample without it)" in tex
    # outside math mode, no bare underscore may reach LaTeX
    text_only = re.sub(r"\$[^$]*\$", "", tex.split("\n", 1)[1])
    assert not re.search(r"(?<!\\)_", text_only)


def test_bibtex_has_the_package_and_the_paper(certs):
    bib = cite("patel2016.render-layer-convnet", "bibtex", certs)
    assert "@misc{dlverify," in bib and "@inproceedings{patel2016probabilistic," in bib
    assert _balanced(bib)


def test_a_failed_claim_is_never_cited(data, tmp_path):
    (thm,) = load_file(data / "false_theorem.py")
    write_certificate(run_theorem(thm, faces=("numeric",), budget=SMALL), tmp_path)
    with pytest.raises(NotVerified, match="not cited as verified"):
        cite("user.relu-additive", "markdown", tmp_path)


def test_a_stale_or_missing_certificate_is_refused(certs, tmp_path):
    path = certs / "patel2016.render-layer-convnet.json"
    cert = json.loads(path.read_text())
    cert["theorem"]["statement_sha256"] = "0" * 64
    (tmp_path / path.name).write_text(json.dumps(cert))
    with pytest.raises(VerifyError, match="stale"):
        cite("patel2016.render-layer-convnet", "latex", tmp_path)
    with pytest.raises(VerifyError, match="no certificate"):
        cite("patel2016.switch-relu", "latex", tmp_path)


def test_graph_colours_by_the_last_run(certs):
    theorems = [get("patel2016.render-layer-convnet"), get("patel2016.switch-relu")]
    dot = to_dot(theorems, certs)
    assert '"patel2016.render-layer-convnet" -> "patel2016.switch-relu";' in dot
    assert re.search(r'"patel2016.render-layer-convnet" \[label=.*fillcolor=palegreen', dot)
    assert re.search(r'"patel2016.switch-relu" \[label=.*fillcolor=lightgrey', dot)  # not run
    # a dependency outside the selection is drawn dashed
    assert '"patel2016.translation-maxpool" [style=dashed]' in dot
    text = to_text(theorems, certs)
    assert "patel2016.render-layer-convnet [ok]" in text and "  <- patel2016.switch-relu [not run]" in text


def test_a_certificate_that_did_not_check_the_claim_does_not_colour_it_ok(certs, tmp_path):
    """A mutants-only certificate (``verify mutants``, a hunt of a mutant) is ok when the mutants
    were refuted: that says nothing of the claim, and the graph says so."""
    thm = get("patel2016.switch-relu")
    cert = json.loads((certs / "patel2016.render-layer-convnet.json").read_text())
    cert["theorem"] = dict(cert["theorem"], id=thm.id, statement_sha256=thm.statement_hash())
    (tmp_path / f"{thm.id}.json").write_text(json.dumps(cert | {"faces": ["mutants"], "ok": True}))
    assert status_of(thm, tmp_path) == "claim not checked"
    assert "fillcolor=lightyellow" in to_dot([thm], tmp_path)
    (tmp_path / f"{thm.id}.json").write_text(json.dumps(cert | {"faces": ["numeric"], "ok": True}))
    assert status_of(thm, tmp_path) == "ok"


def test_html_report_is_well_formed_and_charts_the_residuals(certs):
    import xml.etree.ElementTree as ET

    from verify.render.html import load_certificates, render

    page = render(load_certificates(certs))
    root = ET.fromstring(page.split("\n", 2)[2])  # well-formed XHTML (after the XML and DOCTYPE lines)
    ns = {"h": "http://www.w3.org/1999/xhtml", "s": "http://www.w3.org/2000/svg"}
    bars = root.findall(".//s:rect", ns)
    cert = json.loads((certs / "patel2016.render-layer-convnet.json").read_text())
    hist = cert["numeric"]["residual_over_tolerance_histogram"]
    assert sum(hist.values()) == cert["numeric"]["instances_satisfying_assumptions"]
    assert len(bars) == len(hist)
    assert all(int(k) < 0 for k in hist if k != "zero")  # every residual is below the tolerance
    markers = root.findall(".//s:path", ns)
    assert len(markers) == 4 + 1  # four mutants and the z_nonneg ablation
    assert "without z_nonneg" in page and "→" in page


def test_html_report_shows_measured_failure_rates(tmp_path):
    import xml.etree.ElementTree as ET

    from verify.render.html import load_certificates, render

    thm = get("tian2018.thm7.random-weights-full-rank")
    write_certificate(run_theorem(thm, faces=("numeric",), budget=SMALL), tmp_path)
    page = render(load_certificates(tmp_path))
    ET.fromstring(page.split("\n", 2)[2])
    assert "How often the claim fails" in page
    rates_table = page.split("How often the claim fails")[1].split("</table>")[0]
    assert rates_table.count("<tr><td>") == len(thm.rates_on)


# ----------------------------------------------------------------------------- LaTeX compile check

PDFLATEX = shutil.which("pdflatex")
needs_latex = pytest.mark.skipif(PDFLATEX is None, reason="no LaTeX engine on PATH (Debian: apt-get install "
                                 "texlive-latex-base texlive-latex-recommended); the structure checks above still run")

PREAMBLE = r"""\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage{amsmath,amssymb,amsthm}
\newtheorem{theorem}{Theorem}
\newtheorem{remark}{Remark}
\begin{document}
"""


def _compile(tmp_path, body: str, bib: str | None = None) -> str:
    """pdflatex (and bibtex, given a .bib) in batch mode; returns the log. Fails on any LaTeX error."""
    tex = PREAMBLE + body + ("\n\\bibliographystyle{plain}\n\\bibliography{refs}\n" if bib else "") + "\n\\end{document}\n"
    (tmp_path / "doc.tex").write_text(tex)
    if bib:
        (tmp_path / "refs.bib").write_text(bib)
    run = lambda *cmd: subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)  # noqa: E731
    passes = [("pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex")]
    if bib:
        passes += [("bibtex", "doc"), passes[0], passes[0]]
    for cmd in passes:
        out = run(*cmd)
        if cmd[0] == "pdflatex":
            assert out.returncode == 0, out.stdout[-3000:]
        else:
            assert "error message" not in out.stdout, out.stdout  # bibtex: warnings allowed, errors not
    assert (tmp_path / "doc.pdf").stat().st_size > 0
    return (tmp_path / "doc.log").read_text(errors="replace")


@needs_latex
def test_the_cited_latex_compiles_with_its_bibtex(tmp_path):
    """The issue's example, and a stated non-theorem whose note carries a measured failure rate."""
    certs = tmp_path / "certs"
    write_certificate(run_theorem(get("tian2018.thm5.bn-projection"), budget=SMALL), certs)
    rank = "tian2018.thm7.random-weights-full-rank"
    write_certificate(run_theorem(get(rank), faces=("numeric",), budget=SMALL), certs)
    snippet = cite("tian2018.thm5.bn-projection", "latex", certs) + "\n" + cite(rank, "latex", certs)
    assert r"\begin{remark}" in snippet and "Measured: the claim fails on" in snippet
    log = _compile(tmp_path, snippet, bib=cite("tian2018.thm5.bn-projection", "bibtex", certs))
    assert not re.search(r"Citation `[^']*'.*undefined", log), log[-2000:]  # both \cite keys resolved by bibtex
    assert "Warning--" not in (tmp_path / "doc.blg").read_text()  # classic bibtex knows every entry type


PDFTOTEXT = shutil.which("pdftotext")


@needs_latex
@pytest.mark.skipif(PDFTOTEXT is None, reason="no pdftotext on PATH (Debian: apt-get install poppler-utils)")
def test_the_cited_text_prints_as_written(tmp_path):
    """What the PDF shows is what the certificate says: "|r| <= ..." in the footnote prints as
    those characters (OT1's text fonts would print ¡, ¿ and — for <, > and |)."""
    certs = tmp_path / "certs"
    write_certificate(run_theorem(get("patel2016.switch-relu"), faces=("symbolic", "numeric"), budget=SMALL), certs)
    _compile(tmp_path, cite("patel2016.switch-relu", "latex", certs))
    text = subprocess.run([PDFTOTEXT, "-layout", "doc.pdf", "-"], cwd=tmp_path, capture_output=True,
                          text=True).stdout
    flat = " ".join(text.split())
    assert "|r| <= " in flat and " * scale" in flat and "seed 0" in flat, flat[-1500:]
    assert not set("¡¿—") & set(flat)


@needs_latex
def test_every_catalogue_statement_compiles(tmp_path):
    from verify.registry import catalogue

    body = "\n".join(f"\\begin{{{'theorem' if t.expect == 'true' else 'remark'}}}[{t.id}]\n{t.statement}\n"
                     f"\\end{{{'theorem' if t.expect == 'true' else 'remark'}}}" for t in catalogue())
    _compile(tmp_path, body)


def test_every_catalogue_theorem_cites_its_source():
    from verify.registry import catalogue
    from verify.render.cite import _bibkey

    keys = {t.id: _bibkey(t.bibtex) for t in catalogue()}
    assert all(keys.values()), [i for i, k in keys.items() if not k]
    assert {keys["tian2018.thm9.update-separable"], keys["patel2016.paths-sum"], keys["koo.backprop.max-routing"]} == {
        "tian2018theoretical", "patel2016probabilistic", "koo_backprop"}
