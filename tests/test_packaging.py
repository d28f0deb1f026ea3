"""The sdist carries what its own tests need, the licence and the project URLs.

The tree is copied to a temporary directory first, so building leaves nothing (``*.egg-info``)
in the checkout. The sdist is built with ``python -m build`` when the ``build`` package is
installed, else by calling setuptools' PEP 517 hook directly; both without network
(``--no-isolation``), so the installed setuptools must meet ``[build-system] requires``.
"""

import importlib.util
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
# Directories the test suite reads (besides the packages): all their files must ship.
NEEDED_DIRS = ["tests", "docs", "notebooks", "benchmarks"]
NEEDED_FILES = ["LICENSE", "README.md", "mkdocs.yml", "pyproject.toml", "tests/conftest.py"]
JUNK = {"__pycache__", ".ipynb_checkpoints", ".dlverify", ".hypothesis", ".pytest_cache"}


def _setuptools_ok() -> str | None:
    """Why the installed setuptools cannot build this project offline, or None if it can."""
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    minimum = next((re.search(r">=\s*([\d.]+)", r).group(1) for r in wanted if r.startswith("setuptools>=")), "0")
    try:
        have = version("setuptools")
    except PackageNotFoundError:
        return "setuptools is not installed"
    as_tuple = lambda v: tuple(int(p) for p in re.findall(r"\d+", v)[:3])  # noqa: E731
    if as_tuple(have) < as_tuple(minimum):
        return f"setuptools {have} is older than the build requirement >= {minimum}"
    return None


def _copy_tree(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", ".venv", "venv", "site", "build", "dist", "*.egg-info", "*.py[cod]", *JUNK)
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> tarfile.TarFile:
    reason = _setuptools_ok()
    if reason:
        pytest.skip(f"cannot build the sdist offline: {reason}")
    tmp = tmp_path_factory.mktemp("sdist")
    src, out = _copy_tree(tmp / "src"), tmp / "out"
    if importlib.util.find_spec("build") is not None:
        cmd = [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out), str(src)]
    else:
        out.mkdir()
        cmd = [sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"]
    proc = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (archive,) = out.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        yield tar


def _names(tar: tarfile.TarFile) -> set[str]:
    return {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile() and "/" in m.name}


def test_sdist_has_what_its_tests_need(sdist):
    names = _names(sdist)
    missing = [f for f in NEEDED_FILES if f not in names]
    for d in NEEDED_DIRS:
        for path in (ROOT / d).rglob("*"):
            rel = path.relative_to(ROOT)
            if path.is_file() and not JUNK.intersection(rel.parts) and path.suffix not in {".pyc", ".pyo"}:
                if rel.as_posix() not in names:
                    missing.append(rel.as_posix())
    assert not missing, f"files the sdist's tests need are missing from it: {sorted(set(missing))}"
    assert any(n.startswith("tests/data/") for n in names) and "docs/hooks.py" in names
    junk = sorted(n for n in names if JUNK.intersection(n.split("/")) or n.endswith((".pyc", ".pyo")))
    assert not junk, f"caches shipped in the sdist: {junk}"


def test_sdist_metadata_has_licence_and_urls(sdist):
    pkg_info = next(m for m in sdist.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
    meta = sdist.extractfile(pkg_info).read().decode()
    assert re.search(r"^License-Expression: MIT$", meta, re.M), meta[:600]
    assert re.search(r"^License-File: LICENSE$", meta, re.M)
    urls = dict(re.findall(r"^Project-URL: ([^,]+), (\S+)$", meta, re.M))
    assert set(urls) >= {"Homepage", "Documentation", "Source", "Issues"}, urls
    assert all(u.startswith("https://") for u in urls.values()), urls
    licence = sdist.extractfile(next(m for m in sdist.getmembers() if m.name.endswith("/LICENSE"))).read().decode()
    assert licence.startswith("MIT License") and "dlverify maintainers" in licence
