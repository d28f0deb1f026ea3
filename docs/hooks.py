"""MkDocs hooks: fill the catalogue, the CLI reference and the list of internal modules from the
code, so they cannot drift.

The catalogue shows each statement as math: the text between ``$...$`` is left to
pymdownx.arithmatex (rendered by the vendored KaTeX), everything else is escaped so that
Markdown cannot read a ``*`` or ``_`` of a statement as emphasis. Each theorem links to its
formalisation in ``formalisations.md``; a built-in theorem without one fails the strict build.
"""

from __future__ import annotations

import ast
import contextlib
import html
import importlib.util
import io
import logging
import pkgutil
import re
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.dlverify")

#: theorem id -> anchor of its formalisation in formalisations.md (first match wins)
FORMALISATION = [
    (r"tian2018\.thm(\d)\.", r"t\1"),
    (r"tian2018\.conj\.", "tc"),
    (r"patel2016\.switch-relu", "p1"),
    (r"patel2016\.(translation-maxpool|global-shift-maxpool|maxpool-relu-commute)", "p2"),
    (r"patel2016\.render-layer-convnet", "p3"),
    (r"patel2016\.prior-bias-relu", "p4"),
    (r"patel2016\.deep-maxsum-", "p5"),
    (r"patel2016\.paths-sum", "p6"),
    (r"koo\.backprop\.block-layer", "b1"),
    (r"koo\.backprop\.quadratic-form", "b2"),
    (r"koo\.backprop\.max-routing", "b3"),
    (r"koo\.backprop\.saliency-", "b4"),
]

#: the API reference's sections; together they must list ``verify.__all__`` exactly
API_GROUPS = [
    ("The theorem contract", ["Theorem", "Assumption", "Mutant", "Regime", "Example", "Tolerance", "Source", "Cited"]),
    ("Derivations: a claim and the chain that reaches it", ["Derivation", "Claim", "eq", "le", "ge", "backwards",
                                                            "Fact", "MaxOver", "MinOver"]),
    ("Justifications of a link", ["Algebra", "Cases", "MaxSum", "Monotone", "Unfold", "Lemma", "Agrees"]),
    ("Properties: arrays, residuals and instances", ["xp", "residual", "at_most", "at_least", "Residual",
                                                     "Structure", "Rng"]),
    ("Errors", ["VerifyError", "TheoremError", "UsageError"]),
]

_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}])")


def _text(s: str) -> str:
    """Plain text as Markdown that renders to exactly that text (a ``$`` never starts math)."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(s, quote=False)).replace("$", "&#36;")


_TEXT_MODE = re.compile(r"\\(texttt|emph|textit|textbf)\{([^{}]*)\}|\\([_%&#${}])|``|''|---|--|~")
_TEXT_MODE_CHARS = {"``": "\u201c", "''": "\u201d", "---": "\u2014", "--": "\u2013", "~": "\u00a0"}


def _latex_text(s: str) -> str:
    """LaTeX text-mode markup outside math as Markdown: ``\\texttt``, ``\\emph``, ``\\textit``,
    ``\\textbf``, escaped specials (``\\_``), quotes, dashes and ``~``; any other command is shown
    as written (and the browser test reports it)."""
    out, pos = [], 0
    for m in _TEXT_MODE.finditer(s):
        out.append(_text(s[pos:m.start()]))
        command, arg, char = m.group(1), m.group(2), m.group(3)
        if command == "texttt":
            literal = re.sub(r"\\([_%&#${}])", r"\1", arg)
            out.append(f"`` {literal} ``" if "`" in literal else f"`{literal}`")  # a code span shows it as is
        elif command:
            mark = "**" if command == "textbf" else "*"
            out.append(f"{mark}{_latex_text(arg)}{mark}")
        else:
            out.append(_text(char) if char else _TEXT_MODE_CHARS[m.group(0)])
        pos = m.end()
    out.append(_text(s[pos:]))
    return "".join(out)


def md_with_math(s: str, latex: bool = False) -> str:
    """``s`` as Markdown: ``$...$`` / ``$$...$$`` kept for arithmatex, the rest escaped (and, for
    LaTeX text such as a statement, its text-mode markup converted)."""
    parts = re.split(r"((?<!\\)\$\$.+?(?<!\\)\$\$|(?<!\\)\$.+?(?<!\\)\$)", s, flags=re.S)
    if any(re.search(r"(?<!\\)\$", p) for p in parts[::2]):  # an unpaired dollar: show the text as written
        return _text(s)
    plain = _latex_text if latex else _text
    return "".join(p if i % 2 else plain(p) for i, p in enumerate(parts))


def formalisation_anchor(theorem_id: str) -> str | None:
    for pattern, anchor in FORMALISATION:
        if m := re.match(pattern, theorem_id):
            return m.expand(anchor)
    return None


def _source(text: str) -> str:
    # the sources cite the formalisations by label ("SPEC T5", "SPEC B1-B4"): link those labels
    def link(m: re.Match[str]) -> str:
        first, last = m.group(1), m.group(2)
        label = f"formalisations {first}-{last}" if last else f"formalisation {first}"
        return f"[{label}](formalisations.md#{first.lower()})"

    return re.sub(r"SPEC ([TPB]\d)(?:-([TPB]\d))?", link, _text(text))


def _verdict(t, certs: Path) -> str:
    cert_path = certs / f"{t.id}.json"
    if not cert_path.is_file():
        return "not run here"
    from verify.errors import VerifyError
    from verify.records.certificate import read_certificate

    try:
        cert, _ = read_certificate(cert_path)
    except VerifyError as exc:
        return f"unreadable certificate ({exc})"
    if cert["theorem"]["statement_sha256"] != t.statement_hash():
        return "not run here (the certificate is for an earlier statement)"
    from verify.records.trust import symbolic_cell

    num = (cert.get("numeric") or {}).get("verdict", "-")
    return f"{'ok' if cert['ok'] else 'FAILED'} (symbolic {symbolic_cell(cert.get('symbolic'))}, numeric {num})"


def _catalogue() -> str:
    from verify.registry import catalogue

    certs = Path(".dlverify/certificates")
    known = {t.id for t in catalogue()}
    out = []
    for t in catalogue():
        anchor = formalisation_anchor(t.id)
        if anchor is None and t.module.startswith("theorems"):
            log.warning("theorem %s has no formalisation in formalisations.md (add it to FORMALISATION)", t.id)
        kind = "theorem" if t.expect == "true" else "stated non-theorem"
        out.append(f"## `{t.id}` {{#{t.id}}}\n\n**{md_with_math(t.title)}** ({kind})\n")
        out.append(f"{md_with_math(t.statement, latex=True)}\n{{: .statement }}\n")
        if anchor:
            out.append(f"- Formalisation: [{anchor.upper()}](formalisations.md#{anchor})")
        out.append(f"- Source: {_source(t.source)}")
        assumptions = "; ".join(f"`{a.name}`: {md_with_math(a.description)}" for a in t.assumptions) or "none"
        out.append(f"- Assumptions: {assumptions}")
        if t.conventions:
            out.append(f"- Conventions: {md_with_math(t.conventions)}")
        out.append(f"- Mutants: {', '.join(f'`{m.name}`' for m in t.mutants) or 'none'}")
        uses = ", ".join(f"[`{u}`](#{u})" if u in known else f"`{u}`" for u in t.uses)
        out.append(f"- Uses: {uses or 'nothing'}")
        tol = t.tolerance
        out.append(f"- Tolerance: atol {tol.atol:g}, rtol {tol.rtol:g}: {md_with_math(tol.reason)}")
        out.append(f"- Last verdict: {_verdict(t, certs)}\n")
    return "\n".join(out)


def _theorems_of(markdown: str) -> str:
    """Replace each ``<!-- theorems:ANCHOR -->`` of formalisations.md by links to the catalogue
    theorems whose formalisation that section is."""
    from verify.registry import catalogue

    by_anchor: dict[str, list[str]] = {}
    for t in catalogue():
        by_anchor.setdefault(formalisation_anchor(t.id) or "", []).append(t.id)

    def links(m: re.Match[str]) -> str:
        ids = by_anchor.get(m.group(1), [])
        if not ids:
            log.warning("formalisation %s has no theorem in the catalogue", m.group(1))
        return "In the catalogue: " + ", ".join(f"[`{i}`](catalogue.md#{i})" for i in ids) + "."

    return re.sub(r"<!-- theorems:(\w+) -->", links, markdown)


def _cli_help() -> str:
    from verify.cli import build_parser

    parser = build_parser()
    sections = ["```text\n" + parser.format_help() + "```"]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        sections.append(f"## `verify {name}`\n\n```text\n{p.format_help()}```")
    return "\n\n".join(sections)


def _api() -> str:
    import verify

    listed = [name for _, names in API_GROUPS for name in names]
    if sorted(listed) != sorted(verify.__all__):
        log.warning("API_GROUPS in docs/hooks.py does not list verify.__all__ exactly: missing %s, not public %s",
                    sorted(set(verify.__all__) - set(listed)), sorted(set(listed) - set(verify.__all__)))
    out = []
    for title, names in API_GROUPS:
        out.append(f"## {title}\n")
        out.extend(f"::: verify.{name}\n" for name in names)
    return "\n".join(out)


def _internal_modules() -> str:
    import verify
    from griffe_sphinx_roles import convert  # the same conversion of roles as the docstrings get

    lines = ["These modules are internal: the engine, the records, the renderers and the models the",
             "catalogue uses. They are not part of the public API; names, signatures and behaviour may",
             "change in any release. Use the names above, which `verify` re-exports.", ""]
    for info in sorted(pkgutil.walk_packages(verify.__path__, "verify."), key=lambda m: m.name):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        # read the docstring without importing the module (the pytest plugin needs pytest, say)
        origin = importlib.util.find_spec(info.name).origin
        doc = ast.get_docstring(ast.parse(Path(origin).read_text(encoding="utf-8"))) or ""
        summary = doc.strip().split("\n\n", 1)[0].replace("\n", " ")
        lines.append(f"- `{info.name}` (private): {convert(summary, set(verify.__all__))}")
    return "\n".join(lines)


#: KaTeX lives with the package (the HTML report inlines it from a wheel too); the site gets it here
KATEX = Path(__file__).resolve().parents[1] / "verify" / "render" / "katex"


def on_files(files, config):  # noqa: ANN001 - MkDocs hook signature
    """Serve the package's copy of KaTeX at ``assets/katex/`` (``extra_css``/``extra_javascript``)."""
    from mkdocs.structure.files import File

    for path in sorted(KATEX.rglob("*")):
        if path.is_file() and path.name not in ("LICENSE", "README.txt"):
            uri = f"assets/katex/{path.relative_to(KATEX).as_posix()}"
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_config(config):  # noqa: ANN001 - MkDocs hook signature
    import sys

    sys.path.insert(0, str(Path(__file__).parent))  # griffe_sphinx_roles, next to this file
    return config


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 - MkDocs hook signature
    with contextlib.redirect_stdout(io.StringIO()):
        if "<!-- catalogue -->" in markdown:
            markdown = markdown.replace("<!-- catalogue -->", _catalogue())
        if "<!-- cli-help -->" in markdown:
            markdown = markdown.replace("<!-- cli-help -->", _cli_help())
        if "<!-- theorems:" in markdown:
            markdown = _theorems_of(markdown)
        if "<!-- api -->" in markdown:
            markdown = markdown.replace("<!-- api -->", _api())
        if "<!-- internal-modules -->" in markdown:
            markdown = markdown.replace("<!-- internal-modules -->", _internal_modules())
    return markdown
