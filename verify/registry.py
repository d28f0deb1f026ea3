"""Finding theorems: the built-in catalogue, installed plug-in catalogues, and users' files.

A theorem module is any module whose top-level names include :class:`verify.Theorem` objects.
The built-in catalogue is every module of the ``theorems`` package; other packages can add
modules through the ``dlverify.theorems`` entry-point group; a user's own ``.py`` file is loaded
by path. Ids must be unique across all of them.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib
import importlib.util
import os
import pkgutil
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from verify.errors import TheoremError, UsageError, VerifyError
from verify.guard import user_code
from verify.spec import ID_PATTERN, MAX_ID_LENGTH, Theorem

if TYPE_CHECKING:
    from verify.records.counterexample import Counterexample


def theorems_in(module: ModuleType, origin: str, sha256: str = "") -> list[Theorem]:
    """The theorems ``module`` defines (not those it imports), each marked with where it came
    from. One id defined twice in one module is an error naming both variables."""
    found: dict[str, tuple[str, Theorem]] = {}
    for var, value in vars(module).items():
        if not isinstance(value, Theorem) or (value.defined_in and value.defined_in != module.__name__):
            continue
        if value.id in found:
            other, first = found[value.id]
            if first is value:
                continue  # one object under two names
            raise TheoremError(f"{origin} defines theorem id {value.id!r} twice (as {other} and as {var})")
        object.__setattr__(value, "module", origin)
        object.__setattr__(value, "module_sha256", sha256)
        found[value.id] = (var, value)
    from verify.engine import programs

    for _, t in found.values():
        programs.register(t)
    return [t for _, t in found.values()]


@functools.lru_cache(maxsize=None)
def _module_theorems(name: str) -> tuple[ModuleType, tuple[Theorem, ...]]:
    """One catalogue module, imported once, and the theorems it defines."""
    module = importlib.import_module(name)
    return module, tuple(theorems_in(module, module.__name__))


@functools.lru_cache(maxsize=1)
def _catalogue_modules() -> tuple[tuple[ModuleType, tuple[Theorem, ...]], ...]:
    import theorems

    loaded = [_module_theorems(m.name) for m in pkgutil.walk_packages(theorems.__path__, "theorems.")
              if not m.ispkg]
    for ep in entry_points(group="dlverify.theorems"):
        try:
            with user_code(f"theorem plug-in {ep.name!r}"):
                module = ep.load()
        except VerifyError:
            raise
        except Exception as exc:  # noqa: BLE001 - report a broken plug-in in one line
            raise TheoremError(f"theorem plug-in {ep.name!r} failed to load: {type(exc).__name__}: {exc}") from None
        loaded.append((module, tuple(theorems_in(module, module.__name__))))
    result: dict[str, Theorem] = {}
    for module, found in loaded:
        for thm in found:
            if thm.id in result:
                raise TheoremError(f"duplicate theorem id {thm.id!r} in {module.__name__} and {result[thm.id].module}")
            result[thm.id] = thm
    return tuple(loaded)


def _indexed(refs: list[str], rows: list[dict[str, Any]] | None) -> list[Theorem] | None:
    """The theorems ``refs`` name (ids or id prefixes), importing only the catalogue modules that
    hold them, by the catalogue index; ``None`` when the index cannot say (missing or stale, a
    plug-in installed, a file or an unknown name among ``refs``): the caller imports everything.
    A current index was written from the whole catalogue, so its ids are unique. ``rows``: the
    index's rows (:func:`verify.index.cached`)."""
    from verify import index

    chosen = index.select_rows(rows, refs) if rows is not None and refs else None
    if chosen is None:
        return None
    wanted = [r["id"] for r in chosen]
    by_id = {t.id: t for name in dict.fromkeys(r["module"] for r in chosen) for t in _module_theorems(name)[1]}
    if any(i not in by_id for i in wanted):  # the index and the module disagree: trust the import
        return None
    return [by_id[i] for i in wanted]


def catalogue() -> tuple[Theorem, ...]:
    """Every theorem of the built-in catalogue and of installed plug-in catalogues."""
    return tuple(t for _, found in _catalogue_modules() for t in found)


#: user files loaded in this process, by (absolute path, SHA-256 of the source)
_loaded: dict[tuple[str, str], list[Theorem]] = {}


def _catalogue_module_named_by(path: Path) -> str | None:
    """The name of the catalogue module whose source is ``path``, or None (found without importing)."""
    import theorems

    root = Path(next(iter(theorems.__path__))).resolve()
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        return None
    parts = rel.with_suffix("").parts
    return ".".join(("theorems", *parts)) if parts and parts[-1] != "__init__" else None


def load_file(path: str | Path) -> list[Theorem]:
    """Import a user's theorem file and return the theorems it defines.

    The source is read once, hashed (SHA-256, recorded with each theorem and in every record
    made from it) and those very bytes are executed, guarded (:func:`verify.guard.user_code`):
    ``sys.exit``/``os._exit`` at import are errors, and what the file prints goes to stderr. A
    theorem id the catalogue already uses is an error. Loading one file twice (same content)
    gives the same objects."""
    path = Path(path)
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    if path.suffix != ".py":
        raise UsageError(f"{path} is not a Python file")
    path = path.resolve()
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(source).hexdigest()
    if (str(path), digest) in _loaded:
        return list(_loaded[(str(path), digest)])
    module_name = _catalogue_module_named_by(path)
    if module_name is not None:  # a catalogue module named by its file is the catalogue's
        return list(_module_theorems(module_name)[1])
    name = f"dlverify_user_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{digest[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        code = compile(source, str(path), "exec", dont_inherit=True)
        with user_code(str(path)):
            exec(code, module.__dict__)  # noqa: S102 - the user's theorem file, as hashed
    except VerifyError as exc:
        sys.modules.pop(name, None)
        raise TheoremError(f"{path}: {exc}" if str(path) not in str(exc) else str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a user's file may raise anything
        sys.modules.pop(name, None)
        raise TheoremError(f"{path} failed to import: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    found = theorems_in(module, str(path), digest)
    if not found:
        raise TheoremError(f"{path} defines no theorem (no top-level verify.Theorem objects of its own)")
    from verify import index

    rows = index.cached()
    ours = {r["id"]: r["module"] for r in rows} if rows is not None else {t.id: t.module for t in catalogue()}
    for thm in found:
        if thm.id in ours:
            raise TheoremError(f"{path}: theorem id {thm.id!r} is already the catalogue's ({ours[thm.id]}); "
                               "give yours another id")
    _loaded[(str(path), digest)] = found
    return list(found)


def get(theorem_id: str) -> Theorem:
    from verify import index

    rows = index.cached()  # current, and no plug-in installed: it holds every id of the catalogue
    found = _indexed([theorem_id], rows)
    if found and found[0].id == theorem_id:
        return found[0]
    if rows is None or any(r["id"] == theorem_id for r in rows):
        for thm in catalogue():
            if thm.id == theorem_id:
                return thm
    _refuse(theorem_id, rows)


def _refuse(theorem_id: str, rows: list[dict[str, Any]] | None) -> NoReturn:
    """The error for an id that names no theorem, with the nearest ids (from the index's ``rows``,
    else from the imported catalogue)."""
    if len(theorem_id) > MAX_ID_LENGTH or not ID_PATTERN.match(theorem_id):
        raise UsageError(f"{theorem_id[:80]!r} is not a theorem id, a prefix or a .py file; "
                         "`verify list` shows the catalogue")
    ids = [r["id"] for r in rows] if rows is not None else [t.id for t in catalogue()]
    close = difflib.get_close_matches(theorem_id, ids, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `verify list` shows the catalogue"
    raise UsageError(f"unknown theorem id {theorem_id!r}{hint}")


def _place(t: Theorem) -> str:
    return t.module or t.defined_in or "?"


def unique(theorems: list[Theorem]) -> list[Theorem]:
    """``theorems`` without repeats of one object; two different theorems with one id is an
    error naming both places."""
    seen: dict[str, Theorem] = {}
    out = []
    for t in theorems:
        if t.id in seen:
            if seen[t.id] is not t:
                raise TheoremError(f"theorem id {t.id!r} is defined twice: in {_place(seen[t.id])} and in {_place(t)}")
            continue
        seen[t.id] = t
        out.append(t)
    return out


def select(refs: list[str]) -> list[Theorem]:
    """Theorems named by ids, id prefixes (``patel2016`` selects every ``patel2016.*``) or
    ``.py`` files; the whole catalogue when empty. Ids are unique across everything selected."""
    if not refs:
        return list(catalogue())
    from verify import index

    rows = index.cached()
    indexed = _indexed(refs, rows)
    if indexed is not None:
        return unique(indexed)
    chosen: list[Theorem] = []
    for ref in refs:
        if ref.endswith(".py") or os.path.isfile(ref):
            chosen.extend(load_file(ref))
            continue
        if rows is not None and index.select_rows(rows, [ref]) is None:
            _refuse(ref, rows)  # names nothing in the catalogue, whose every id the index holds
        exact = [t for t in catalogue() if t.id == ref]
        chosen.extend(exact or [t for t in catalogue() if t.id.startswith(ref + ".")] or [get(ref)])
    return unique(chosen)


def _pick(found: list[Theorem], where: str, theorem_id: str | None) -> Theorem:
    if theorem_id is None and len(found) == 1:
        return found[0]
    for thm in found:
        if thm.id == theorem_id:
            return thm
    raise UsageError(f"{where} defines {', '.join(t.id for t in found)}; none is {theorem_id!r}")


def resolve(ref: str, theorem_id: str | None = None) -> Theorem:
    """One theorem: by id, or from a file (picking ``theorem_id`` if the file defines several)."""
    if ref.endswith(".py"):
        return _pick(load_file(ref), ref, theorem_id)
    return get(ref)


def _from_record(record: str | Path, theorem_id: str, absolute: str, relative: str, sha256: str) -> Theorem:
    """The theorem a record made from a user file names, from that very file (located from the
    record, its SHA-256 checked), or a :class:`VerifyError` saying why it cannot be sure."""
    from verify.records.io import locate_source

    if not sha256:
        raise VerifyError(f"{record} does not record the SHA-256 of its theorem file {absolute or relative}: "
                          "it cannot be checked against the file; run it again")
    path = locate_source(record, absolute, relative, sha256)
    return _pick(load_file(path), str(path), theorem_id)


def theorem_of(record: "Counterexample", theorem_file: str | None = None) -> Theorem:
    """The theorem a counterexample record names: from the user file it records (found from the
    record and checked by hash), or the catalogue; ``theorem_file`` overrides the recorded file
    (``verify replay --theorem FILE``: evaluate against that file, whatever its content)."""
    if theorem_file is not None:
        return _pick(load_file(theorem_file), theorem_file, record.theorem_id)
    if not record.source_file and not record.source_relative:
        return get(record.theorem_id)
    return _from_record(record.path or record.theorem_id, record.theorem_id, record.source_file,
                        record.source_relative, record.source_sha256)


def current_statement_hash(cert: dict[str, Any], certificate: str | Path | None = None) -> str:
    """The statement hash of the theorem a certificate names, as its code stands now. A theorem
    that cannot be found (a deleted, changed or broken user file, an id no longer in the
    catalogue) is an error: nothing is cited on a guess. ``certificate`` is the certificate's
    path, from which a user file recorded relative to it is found."""
    t = cert["theorem"]
    module = str(t.get("module", ""))
    try:
        if module.endswith(".py"):
            where = certificate or module
            thm = _from_record(where, t["id"], module if os.path.isabs(module) else "",
                               str(t.get("module_relative", "")), str(t.get("module_sha256", "")))
        else:
            thm = get(t["id"])
        return thm.statement_hash()
    except VerifyError as exc:
        raise VerifyError(f"cannot check that the certificate of {t['id']} is current: {exc}") from None
