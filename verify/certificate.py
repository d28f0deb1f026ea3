"""JSON certificates: what one run established about one theorem, and how to reproduce it."""

from __future__ import annotations

import datetime as _dt
import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jax

from verify.runner import TheoremReport

FORMAT = "dlverify-certificate/1"
_LIBRARIES = ("dlverify", "jax", "jaxlib", "numpy", "sympy", "hypothesis", "mpmath", "scipy")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "not installed"
    return out


def numeric_settings() -> dict[str, Any]:
    return {
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
        "dtype": "float64",
        "jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision or "default (float64: exact IEEE)"),
        "platform": jax.default_backend(),
        "highprec_digits": 50,
    }


def certificate(report: TheoremReport) -> dict[str, Any]:
    t = report.theorem
    return {
        "format": FORMAT,
        "theorem": {
            "id": t.id,
            "title": t.title,
            "source": t.source,
            "statement": t.statement,
            "statement_sha256": t.statement_hash(),
            "expect": t.expect,
            "assumptions": [{"name": a.name, "description": a.description, "tolerance": a.reason}
                            for a in t.assumptions],
            "tolerance": {"atol": t.tolerance.atol, "rtol": t.tolerance.rtol, "reason": t.tolerance.reason},
            "conventions": t.conventions,
            "bibtex": t.bibtex,
            "uses": list(t.uses),
            "module": t.module,
        },
        "ok": report.ok,
        "problems": report.problems,
        "faces": list(report.faces),
        "seed": report.seed,
        "budget": report.budget.as_dict(),
        "symbolic": report.symbolic.as_dict() if report.symbolic else None,
        "numeric": report.numeric.as_dict() if report.numeric else None,
        "mutants": [m.as_dict() for m in report.mutants],
        "ablations": [a.as_dict() for a in report.ablations],
        "failure_rates": report.rates,
        "libraries": library_versions(),
        "numeric_settings": numeric_settings(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_certificate(report: TheoremReport, directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{report.theorem.id}.json"
    path.write_text(json.dumps(certificate(report), indent=2, default=str) + "\n")
    return path
