"""Citing a verified statement: LaTeX, BibTeX or Markdown, read from a run's certificate.

Everything said about what was established comes from the certificate that ``verify run``
wrote, never from constants, and the certificate must match the theorem as it stands now (its
statement hash). A claim that did not come out as expected in that run is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from verify.errors import NotVerified, UsageError, VerifyError
from verify.records.trust import sentence
from verify.records.certificate import certificate_of, path_for
from verify.records.io import number

FORMATS = ("latex", "bibtex", "markdown")

PACKAGE_BIBTEX = """@software{dlverify,
  title   = {dlverify: theorems of deep-learning theory checked symbolically, numerically and by counterexample search},
  author  = {{dlverify maintainers}},
  version = {VERSION},
  year    = {2026},
  note    = {Certificates: JSON, reproducible from their seeds}
}"""


def established(cert: dict[str, Any]) -> list[str]:
    """Plain sentences: exactly what the run established (the certificate's trust rows), then the
    mutants refuted."""
    out = [sentence(row) for row in cert.get("trust", [])]
    muts = cert.get("mutants", [])
    if muts:
        out.append(f"Mutants: {sum(m['refuted'] for m in muts)} of {len(muts)} deliberately wrong variants refuted.")
    tol = cert["theorem"]["tolerance"]
    out.append(f"Tolerance: |r| <= {number(tol['atol']):g} + {number(tol['rtol']):g} * scale ({tol['reason']}).")
    return out


def _latex_text(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("_", r"\_"),
                 ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}"), ("$", r"\$")):
        s = s.replace(a, b)
    return s


def _bibkey(bibtex: str) -> str | None:
    head = bibtex.strip().split("{", 1)
    return head[1].split(",", 1)[0].strip() if len(head) == 2 and bibtex.strip().startswith("@") else None


def cite(theorem_id: str, fmt: str, directory: str | Path,
         current_hash: Callable[[dict[str, Any], Path], str]) -> str:
    """The snippet for ``theorem_id`` from its certificate in ``directory``. ``current_hash(cert,
    path)`` gives the statement hash of the theorem as its code stands now (the caller resolves
    it, from the certificate at ``path``, and refuses when it cannot): a certificate of another
    statement is stale and is not cited."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    cert, digest = certificate_of(theorem_id, directory)
    t = cert["theorem"]
    if current_hash(cert, path_for(theorem_id, directory)) != t["statement_sha256"]:
        raise VerifyError(f"the certificate of {theorem_id} is stale: the statement changed since; run it again")
    if not cert["ok"]:
        raise NotVerified(f"{theorem_id} did not verify in the run that wrote its certificate "
                          f"({'; '.join(cert['problems'])}): it is not cited as verified")
    version = cert["libraries"].get("dlverify", "?")
    facts = established(cert)
    paper_key = _bibkey(t.get("bibtex", ""))
    if fmt == "bibtex":
        entries = [PACKAGE_BIBTEX.replace("VERSION", version)]
        if t.get("bibtex"):
            entries.append(t["bibtex"].strip())
        return "\n\n".join(entries) + "\n"
    assumptions = [(a["name"], a["description"]) for a in t["assumptions"]]
    if fmt == "markdown":
        lines = [f"**{t['title']}** (`{t['id']}`; {t['source']})", "", t["statement"], ""]
        if assumptions:
            lines += ["Assumptions: " + "; ".join(f"`{n}`: {d}" for n, d in assumptions) + ".", ""]
        lines += [f"- {f}" for f in facts]
        lines += [f"- dlverify {version}; certificate SHA-256 `{digest}`."]
        return "\n".join(lines) + "\n"
    kind = "theorem" if t["expect"] == "true" else "remark"
    cite_paper = f"~\\cite{{{paper_key}}}" if paper_key else ""
    body = [
        "% needs \\usepackage{amsmath,amsthm} and \\newtheorem{theorem}{Theorem}, \\newtheorem{remark}{Remark}",
        f"\\begin{{{kind}}}[{_latex_text(t['title'])}{cite_paper}]\\label{{dlverify:{t['id']}}}",
        t["statement"],
    ]
    if assumptions:
        body.append("Assumptions: " + "; ".join(f"\\texttt{{{_latex_text(n)}}}: {_latex_text(d)}"
                                                 for n, d in assumptions) + ".")
    note = " ".join(_latex_text(f) for f in facts)
    body.append(f"\\footnote{{Machine-checked with dlverify {_latex_text(version)}~\\cite{{dlverify}}. {note} "
                f"Certificate SHA-256: \\texttt{{{digest}}}.}}")
    body.append(f"\\end{{{kind}}}")
    return "\n".join(body) + "\n"
