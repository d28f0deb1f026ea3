"""Finding theorems: the built-in catalogue, installed plug-in catalogues, and users' files.

A theorem module is any module whose top-level names include :class:`verify.Theorem` objects.
The built-in catalogue is every module of the ``theorems`` package; other packages can add
modules through the ``dlverify.theorems`` entry-point group; a user's own ``.py`` file is loaded
by path. Ids must be unique across all of them.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import pkgutil
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from verify.errors import TheoremError, UsageError, VerifyError
from verify.spec import Theorem

if TYPE_CHECKING:
    from verify.records.counterexample import Counterexample


def theorems_in(module: ModuleType, origin: str) -> list[Theorem]:
    found: dict[str, Theorem] = {}
    for value in vars(module).values():
        if isinstance(value, Theorem) and value.id not in found:
            object.__setattr__(value, "module", origin)
            found[value.id] = value
    return list(found.values())


@functools.lru_cache(maxsize=1)
def catalogue() -> tuple[Theorem, ...]:
    """Every theorem of the built-in catalogue and of installed plug-in catalogues."""
    import theorems

    modules = [importlib.import_module(m.name) for m in pkgutil.walk_packages(theorems.__path__, "theorems.")
               if not m.ispkg]
    for ep in entry_points(group="dlverify.theorems"):
        try:
            modules.append(ep.load())
        except Exception as exc:  # noqa: BLE001 - report a broken plug-in in one line
            raise TheoremError(f"theorem plug-in {ep.name!r} failed to load: {type(exc).__name__}: {exc}") from None
    result: dict[str, Theorem] = {}
    for module in modules:
        for thm in theorems_in(module, module.__name__):
            if thm.id in result:
                raise TheoremError(f"duplicate theorem id {thm.id!r} in {module.__name__} and {result[thm.id].module}")
            result[thm.id] = thm
    return tuple(result.values())


def load_file(path: str | Path) -> list[Theorem]:
    """Import a user's theorem file and return the theorems it defines."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    if path.suffix != ".py":
        raise UsageError(f"{path} is not a Python file")
    name = f"dlverify_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except VerifyError as exc:
        raise TheoremError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a user's file may raise anything
        raise TheoremError(f"{path} failed to import: {type(exc).__name__}: {exc}") from None
    found = theorems_in(module, str(path))
    if not found:
        raise TheoremError(f"{path} defines no theorem (no top-level verify.Theorem objects)")
    return found


def get(theorem_id: str) -> Theorem:
    for thm in catalogue():
        if thm.id == theorem_id:
            return thm
    ids = [t.id for t in catalogue()]
    close = difflib.get_close_matches(theorem_id, ids, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `verify list` shows the catalogue"
    raise UsageError(f"unknown theorem id {theorem_id!r}{hint}")


def select(refs: list[str]) -> list[Theorem]:
    """Theorems named by ids, id prefixes (``patel2016`` selects every ``patel2016.*``) or
    ``.py`` files; the whole catalogue when empty."""
    if not refs:
        return list(catalogue())
    chosen: list[Theorem] = []
    for ref in refs:
        if ref.endswith(".py") or Path(ref).is_file():
            chosen.extend(load_file(ref))
            continue
        exact = [t for t in catalogue() if t.id == ref]
        chosen.extend(exact or [t for t in catalogue() if t.id.startswith(ref + ".")] or [get(ref)])
    seen: set[str] = set()
    return [t for t in chosen if not (t.id in seen or seen.add(t.id))]


def resolve(ref: str, theorem_id: str | None = None) -> Theorem:
    """One theorem: by id, or from a file (picking ``theorem_id`` if the file defines several)."""
    if ref.endswith(".py"):
        found = load_file(ref)
        if theorem_id is None and len(found) == 1:
            return found[0]
        for thm in found:
            if thm.id == theorem_id:
                return thm
        raise UsageError(f"{ref} defines {', '.join(t.id for t in found)}; none is {theorem_id!r}")
    return get(ref)


def theorem_of(record: "Counterexample") -> Theorem:
    """The theorem a counterexample record names: from its user file, or the catalogue."""
    return resolve(record.source_file or record.theorem_id, theorem_id=record.theorem_id)


def current_statement_hash(cert: dict) -> str:
    """The statement hash of the theorem a certificate names, as its code stands now. A theorem
    that cannot be found (a deleted or broken user file, an id no longer in the catalogue) is an
    error: nothing is cited on a guess."""
    t = cert["theorem"]
    module = str(t.get("module", ""))
    try:
        return resolve(module if module.endswith(".py") else t["id"], theorem_id=t["id"]).statement_hash()
    except VerifyError as exc:
        raise VerifyError(f"cannot check that the certificate of {t['id']} is current: {exc}") from None
