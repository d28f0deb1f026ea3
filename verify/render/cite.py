"""Citing a verified statement: LaTeX, BibTeX or Markdown, read from a run's certificate.

Everything said about what was established comes from the certificate that ``verify run``
wrote, never from constants, and the certificate must match the theorem as it stands now (its
statement hash). A claim that did not come out as expected in that run is refused, and so is a
certificate that did not check the claim at all (only mutants or ablations, say a hunt of a mutant).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from verify.errors import NotVerified, UsageError, VerifyError
from verify.records.trust import sentence
from verify.records.certificate import certificate_of, path_for
from verify.records.io import number

FORMATS = ("latex", "bibtex", "markdown")

#: ``@misc``, which classic BibTeX styles define (``@software`` is biblatex's; classic bibtex warns)
PACKAGE_BIBTEX = """@misc{dlverify,
  title        = {dlverify: theorems of deep-learning theory checked symbolically, numerically and by counterexample search},
  author       = {{dlverify maintainers}},
  year         = {2026},
  howpublished = {https://github.com/dlverify/dlverify},
  note         = {Version VERSION. Certificates: JSON, reproducible from their seeds}
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


_LATEX_TEXT = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
               "~": r"\textasciitilde{}", "^": r"\^{}", "$": r"\$",
               # not in OT1's text fonts (they print as ¡ ¿ —): named, so any font encoding shows them
               "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def _latex_text(s: str) -> str:
    """Plain text as LaTeX text that prints as exactly that text (in OT1 and T1 alike)."""
    return "".join(_LATEX_TEXT.get(ch, ch) for ch in s)


def provenance(cert: dict[str, Any], digest: str, name: str) -> str:
    """When and how the certificate was made, with what, and how a reader can check it."""
    b, libs, t = cert.get("budget", {}), cert.get("libraries", {}), cert["theorem"]
    batches = b.get("examples") or "scope-sized"
    versions = ", ".join(f"{k} {v}" for k, v in libs.items() if k != "dlverify")
    where = (f"theorem file SHA-256 {t['module_sha256']}" if t.get("module_sha256")
             else f"catalogue module {t.get('module', '?')} of dlverify {libs.get('dlverify', '?')}")
    hunt = cert.get("hunt")
    if hunt:  # `verify hunt`: one face, and what it spent
        return (f"Hunt {cert.get('created', '?')}, seed {cert.get('seed', '?')}, {hunt['instances_spent']:,} instances "
                f"in {hunt['tasks_counted']} of {hunt['tasks']} tasks of {hunt['task_batches']} batches of "
                f"{hunt['batch']}; {hunt['not_checked']}; {versions}; {where}; statement SHA-256 "
                f"{t['statement_sha256']}. Certificate {name} (SHA-256 {digest}): `verify hunt {t['id']} --variant "
                f"{hunt['variant']} --budget {hunt['instances_requested']} --batch {hunt['batch']} --task-batches "
                f"{hunt['task_batches']} --seed {cert.get('seed', 0)}` remakes it.")
    return (f"Run {cert.get('created', '?')}, seed {cert.get('seed', '?')}, {batches} batches of "
            f"{b.get('batch', '?')} instances per search; {versions}; {where}; statement SHA-256 "
            f"{t['statement_sha256']}. Certificate {name} (SHA-256 {digest}): `verify run {t['id']} --seed "
            f"{cert.get('seed', 0)}` remakes it.")


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
    if not {"symbolic", "numeric"} & set(cert.get("faces", [])):
        what = f"a hunt of {cert['hunt']['variant']}" if cert.get("hunt") else f"faces {', '.join(cert['faces'])}"
        raise NotVerified(f"the certificate of {theorem_id} records {what} only, not the claim: it is not cited "
                          f"as verified (run `verify run {theorem_id}` or hunt the claim)")
    if not cert["ok"]:
        raise NotVerified(f"{theorem_id} did not verify in the run that wrote its certificate "
                          f"({'; '.join(cert['problems'])}): it is not cited as verified")
    version = cert["libraries"].get("dlverify", "?")
    facts = established(cert)
    made = provenance(cert, digest, path_for(theorem_id, directory).name)
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
        lines += [f"- {made}"]
        return "\n".join(lines) + "\n"
    kind = "theorem" if t["expect"] == "true" else "remark"
    cite_paper = f"~\\cite{{{paper_key}}}" if paper_key else ""
    body = [
        "% needs \\usepackage[T1]{fontenc}, \\usepackage{amsmath,amssymb,amsthm} and",
        "% \\newtheorem{theorem}{Theorem}, \\newtheorem{remark}{Remark}",
        f"\\begin{{{kind}}}[{_latex_text(t['title'])}{cite_paper}]\\label{{dlverify:{t['id']}}}",
        t["statement"],
    ]
    if assumptions:
        body.append("Assumptions: " + "; ".join(f"\\texttt{{{_latex_text(n)}}}: {_latex_text(d)}"
                                                 for n, d in assumptions) + ".")
    note = " ".join(_latex_text(f) for f in facts)
    body.append(f"\\footnote{{Checked with dlverify {_latex_text(version)}~\\cite{{dlverify}}. {note} "
                f"{_latex_text(made)}}}")
    body.append(f"\\end{{{kind}}}")
    return "\n".join(body) + "\n"
