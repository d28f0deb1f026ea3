"""The documentation builds with warnings as errors, and its tutorial theorem really verifies."""

import re
import subprocess
import sys
from pathlib import Path

from conftest import SMALL

from verify.engine.runner import run_theorem
from verify.registry import load_file

ROOT = Path(__file__).parent.parent


def test_docs_build_strict(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    catalogue = (tmp_path / "site" / "catalogue" / "index.html").read_text()
    assert "patel2016.render-layer-convnet" in catalogue and "tian2018.thm5.bn-projection" in catalogue
    assert "verify replay" in (tmp_path / "site" / "cli" / "index.html").read_text()
    _check_site(tmp_path / "site")


def _check_site(site):
    """What the strict build cannot see: math, docstrings, the API's extent, offline assets."""
    import verify
    from verify.registry import catalogue as theorems

    catalogue = (site / "catalogue" / "index.html").read_text()
    assert catalogue.count('<p class="statement">') == len(theorems())
    assert catalogue.count('class="arithmatex"') >= len(theorems())  # math left to KaTeX, not escaped
    assert 'href="../formalisations/#t5"' in catalogue and "SPEC" not in catalogue
    api = (site / "api" / "index.html").read_text()
    documented = set(re.findall(r'id="verify\.([A-Za-z_]\w*)', api))
    assert documented == set(verify.__all__), documented ^ set(verify.__all__)
    assert not re.search(r":(class|func|meth|data|mod):", api)  # Sphinx roles converted
    assert len(re.findall(r"<code>verify(\.\w+)+</code> \(private\)", api)) >= 10  # the internals, listed as such
    for page in site.rglob("*.html"):  # every script and stylesheet is local: the site renders offline
        remote = re.findall(r'<(?:script|link)\b[^>]*?(?:src|href)="((?:https?:)?//[^"]+)"', page.read_text())
        assert not remote, (page, remote)
    assert (site / "assets" / "katex" / "katex.min.js").is_file()
    assert len(list((site / "assets" / "katex" / "fonts").glob("*.woff2"))) == 20


def test_tutorial_theorem_verifies(tmp_path):
    text = (ROOT / "docs" / "write-a-theorem.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    path = tmp_path / "tutorial_theorem.py"
    path.write_text(code)
    (thm,) = load_file(path)
    report = run_theorem(thm, budget=SMALL)
    assert report.ok, report.problems
    assert report.symbolic.verdict == "proved"
    assert [a.verdict for a in report.ablations] == ["necessary"]


def test_the_write_a_theorem_examples_run_and_prove_what_the_page_says():
    """Every code block of the page runs; the theorem passes and its derivations are proved for all
    sizes, as the page says."""
    from verify.engine.runner import run_theorem
    from verify.engine.search import Budget
    from verify.symbolic import check_derivation

    page = (ROOT / "docs" / "write-a-theorem.md").read_text()
    ns: dict = {}
    for block in re.findall(r"```python\n(.*?)```", page, flags=re.S):
        exec(compile(block, "write-a-theorem.md", "exec"), ns)
    report = run_theorem(ns["relu_homogeneous"], budget=Budget(examples=4, batch=64))
    assert report.ok, report.problems
    assert report.symbolic.summary() == "proved (all sizes (n))"
    for name, scope in (("maxpool", "all sizes (K, P)"), ("transpose", "all sizes (n)"), ("relu_gap", "all sizes")):
        res = check_derivation(ns[name])
        assert res.verdict == "proved" and str(res.scope) == scope, (name, res.verdict, str(res.scope), res.gap)
