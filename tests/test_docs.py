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
