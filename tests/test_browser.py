"""The docs in a real browser: the catalogue and the formalisations render their math with the
bundled KaTeX, offline, and a screenshot shows it. Skipped when Chromium is absent."""

import re
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

import browser

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.skipif(
    browser.chromium() is None,
    reason="chromium not installed: the docs were not checked in a browser (apt-get install chromium)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with browser.serve(out) as base:
        yield base, out.parent


class _Math(HTMLParser):
    """Collects the visible text of ``p.statement`` paragraphs (KaTeX's hidden MathML copy of
    the TeX source excluded) and checks that every arithmatex element holds a rendered formula."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[set[str], int | None]] = []  # open elements: classes, index of math element
        self.statements: list[str] = []
        self.done: list[bool] = []  # per arithmatex element: does it hold a KaTeX formula?
        self.statement_math = self.errors = 0

    def _inside(self, cls: str) -> bool:
        return any(cls in classes for classes, _ in self.stack)

    @property
    def math(self) -> int:
        return len(self.done)

    @property
    def rendered(self) -> int:
        return sum(self.done)

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        index = None
        if classes & {"katex", "katex-display"}:
            owner = next((i for _, i in reversed(self.stack) if i is not None), None)
            if owner is not None:
                self.done[owner] = True
        if "arithmatex" in classes:
            index = len(self.done)
            self.done.append(False)
            self.statement_math += self._inside("statement")
        self.errors += "katex-error" in classes
        if tag == "p" and "statement" in classes:
            self.statements.append("")
        if tag not in self.VOID:
            self.stack.append((classes, index))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if self._inside("statement") and not self._inside("katex-mathml"):
            self.statements[-1] += data


def _parse(dom: str) -> _Math:
    parser = _Math()
    parser.feed(dom)
    return parser


def _external(dom: str) -> list[str]:
    """Scripts, stylesheets and fonts the page loads from anywhere but the local server."""
    refs = re.findall(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"', dom)
    return [r for r in refs if re.match(r"(https?:)?//", r) and "127.0.0.1" not in r]


def test_catalogue_statements_render_as_math(site):
    from verify.registry import catalogue

    base, _ = site
    dom = browser.render_dom(base + "catalogue/")
    page = _parse(dom)
    theorems = catalogue()
    assert len(page.statements) == len(theorems)
    formulas = sum(len(re.findall(r"\$\$.+?\$\$|\$.+?\$", t.statement, re.S)) for t in theorems)
    assert page.statement_math == formulas > 0, "every $...$ of every statement became a math element"
    assert page.rendered == page.math and page.errors == 0, (page.rendered, page.math, page.errors)
    leftovers = [s for s in page.statements if re.search(r"\$|\\[()\[\]]|\\[A-Za-z]+", s)]
    assert not leftovers, f"raw TeX left in statements: {leftovers[:3]}"
    assert not _external(dom), _external(dom)


def test_formalisations_render_and_screenshot(site):
    base, tmp = site
    dom = browser.render_dom(base + "formalisations/")
    page = _parse(dom)
    assert page.math > 100 and page.rendered == page.math and page.errors == 0, (page.rendered, page.math)
    assert dom.count('class="katex-display"') >= 10  # the display formulas
    for anchor in ("t1", "t5", "t9", "tc", "p1", "p5", "b3", "findings"):
        assert f'id="{anchor}"' in dom
    assert not _external(dom), _external(dom)

    width, height = 1280, 1600
    png = browser.screenshot(base + "formalisations/", tmp / "formalisations.png", width=width, height=height)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (width, height)
    pixels = zlib.decompress(b"".join(_chunks(data, b"IDAT")))
    # A blank or single-colour page compresses to a few kB and has a handful of byte values;
    # anti-aliased text and formulas give many grey levels.
    assert len(data) > 50_000 and len(set(pixels)) >= 64, (len(data), len(set(pixels)))


def _chunks(data: bytes, kind: bytes):
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        if data[pos + 4:pos + 8] == kind:
            yield data[pos + 8:pos + 8 + length]
        pos += 12 + length
