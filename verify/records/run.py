"""The run report: what ``verify run --json`` (and ``check``, ``mutants``, ``ablate``) prints.

One object: the format, whether every theorem passed, and each theorem's certificate in the order
run (:mod:`verify.records.certificate`). Its schema is ``verify/records/schemas/run.schema.json``.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

FORMAT = "dlverify-run/1"


def run_report(certificates: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The run report of these certificates: ``ok`` when every one of them is ``ok``."""
    certs = list(certificates)
    return {"format": FORMAT, "ok": all(c["ok"] for c in certs), "theorems": certs}
