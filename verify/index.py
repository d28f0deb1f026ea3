"""A static index of the catalogue, so that ``verify list`` imports neither JAX nor SymPy.

Listing the catalogue by importing it costs seconds (every theorem module imports SymPy for its
derivations, and the engine imports JAX). The index (``theorems/index.json``) holds what ``verify
list`` shows of each theorem, with the SHA-256 of the catalogue's sources it was made from. It is
used only when that hash matches the sources as they are now and no plug-in catalogue is
installed; otherwise the catalogue is imported. A stale index is therefore never wrong, only
slow; ``python -m verify.index`` writes it anew, and the test suite checks it is current.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Iterable

FORMAT = "dlverify-index/1"


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec("theorems")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _index_path() -> Path | None:
    root = _package_dir()
    return root / "index.json" if root else None


def sources_hash() -> str:
    """SHA-256 over the catalogue's Python sources (their paths and bytes, in a fixed order)."""
    root = _package_dir()
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")) if root else ():
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def row(t: Any) -> dict[str, Any]:
    """What the index (and ``verify list --json``) records of a theorem."""
    return {"id": t.id, "title": t.title, "source": t.source, "statement": t.statement, "expect": t.expect,
            "assumptions": [a.name for a in t.assumptions], "mutants": [m.name for m in t.mutants],
            "uses": list(t.uses), "module": t.module}


def cached() -> list[dict[str, Any]] | None:
    """The indexed rows, or ``None`` when the index is missing, stale or plug-ins are installed."""
    path = _index_path()
    if path is None or not path.is_file() or any(True for _ in entry_points(group="dlverify.theorems")):
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("sources_sha256") != sources_hash():
        return None
    rows = data.get("theorems")
    return rows if isinstance(rows, list) else None


def select_rows(rows: list[dict[str, Any]], refs: Iterable[str]) -> list[dict[str, Any]] | None:
    """Rows named by ids or id prefixes, as :func:`verify.registry.select` names theorems; ``None``
    when a ref is a file or names nothing (the caller then imports, and reports it properly)."""
    refs = list(refs)
    if not refs:
        return rows
    out: list[dict[str, Any]] = []
    for ref in refs:
        if ref.endswith(".py") or Path(ref).is_file():
            return None
        found = [r for r in rows if r["id"] == ref] or [r for r in rows if r["id"].startswith(ref + ".")]
        if not found:
            return None
        out.extend(r for r in found if r not in out)
    return out


def write() -> Path:
    """Write the index from the catalogue as it is now (imports it)."""
    from verify.registry import catalogue

    path = _index_path()
    assert path is not None, "the theorems package is not importable"
    data = {"format": FORMAT, "sources_sha256": sources_hash(), "theorems": [row(t) for t in catalogue()]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
