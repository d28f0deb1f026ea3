"""MkDocs hooks: fill the catalogue and the CLI reference from the code, so they cannot drift."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path


def _catalogue() -> str:
    from verify.registry import catalogue

    certs = Path(".dlverify/certificates")
    out = []
    for t in catalogue():
        cert_path = certs / f"{t.id}.json"
        verdict = "not run here"
        if cert_path.is_file():
            cert = json.loads(cert_path.read_text())
            if cert["theorem"]["statement_sha256"] == t.statement_hash():
                sym = (cert.get("symbolic") or {}).get("verdict", "-")
                num = (cert.get("numeric") or {}).get("verdict", "-")
                verdict = f"{'ok' if cert['ok'] else 'FAILED'} (symbolic {sym}, numeric {num})"
        out.append(f"## `{t.id}`\n\n**{t.title}** ({'theorem' if t.expect == 'true' else 'stated non-theorem'})\n")
        out.append(f"{t.statement}\n")
        out.append(f"- Source: {t.source}")
        assumptions = "; ".join(f"`{a.name}`: {a.description}" for a in t.assumptions) or "none"
        out.append(f"- Assumptions: {assumptions}")
        out.append(f"- Mutants: {', '.join(f'`{m.name}`' for m in t.mutants) or 'none'}")
        out.append(f"- Uses: {', '.join(f'`{u}`' for u in t.uses) or 'nothing'}")
        out.append(f"- Tolerance: {t.tolerance.reason}")
        out.append(f"- Last verdict: {verdict}\n")
    return "\n".join(out)


def _cli_help() -> str:
    from verify.cli import build_parser

    parser = build_parser()
    sections = ["```text\n" + parser.format_help() + "```"]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        sections.append(f"## `verify {name}`\n\n```text\n{p.format_help()}```")
    return "\n\n".join(sections)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 - MkDocs hook signature
    with contextlib.redirect_stdout(io.StringIO()):
        if "<!-- catalogue -->" in markdown:
            markdown = markdown.replace("<!-- catalogue -->", _catalogue())
        if "<!-- cli-help -->" in markdown:
            markdown = markdown.replace("<!-- cli-help -->", _cli_help())
    return markdown
