"""Writing and reading record files: atomically, as strict JSON, within limits.

Every file dlverify leaves (certificates, counterexamples, the HTML report, graph output) is
written by :func:`write_atomic`: the bytes go to a temporary file in the target's own directory
(``.NAME.XXXXXXXX.tmp``), are flushed to disk, and the temporary file is renamed over the target
(``os.replace``, atomic on POSIX). A reader therefore sees the old file or the new one, never a
0-byte or half-written one; on any failure (a full disk, an interrupt) the temporary file is
removed and the previous file is untouched. Two runs writing one directory at once each leave
complete files (the last rename wins).

**Strict JSON.** :func:`dumps` never writes the bare ``NaN``/``Infinity`` tokens that strict
parsers reject: a non-finite float is written as one of the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"`` (:data:`NON_FINITE`), and :func:`number` reads them back. Object reprs that hold
a memory address (``<function f at 0x7f...>``) are written without it, so a file's content does
not depend on the process that wrote it. Objects JSON has no type for are written as text.

**Reading.** :func:`read_json` reads a record with limits (:data:`MAX_BYTES`, nesting depth
:data:`MAX_DEPTH`), rejects binary content and non-strict JSON, and :class:`Fields` checks each
field's type; every failure is a :class:`RecordError` that names the file and the field
(``verify`` exits 2 with that line).

Output locations are checked before any work starts (:func:`prepare_directory`,
:func:`prepare_file`): an ``--out`` that is a file, lies under a file, cannot be created, is
read-only or on a full disk is refused at once, with an :class:`OutputError`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from verify.errors import VerifyError

#: how a non-finite float is written (JSON has no token for it)
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
#: the largest record file read (a counterexample or certificate is a few kB to a few MB)
MAX_BYTES = 32 * 2**20
#: the deepest nesting of lists and objects accepted in a record
MAX_DEPTH = 64
#: the longest file name most file systems accept (bytes)
NAME_MAX = 255

_ADDRESS = re.compile(r"(<[^<>]*?) at 0x[0-9a-fA-F]+>")


class RecordError(VerifyError):
    """A record file that cannot be read as what it claims to be (names the file and field)."""


class OutputError(VerifyError):
    """An output location that cannot be written."""


def stable_text(text: str) -> str:
    """``text`` without memory addresses in object reprs (``<function f at 0x7f..>`` -> ``<function f>``)."""
    return _ADDRESS.sub(r"\1>", text)


def _plain(value: Any) -> Any:
    """``value`` as plain JSON values: non-finite floats as :data:`NON_FINITE` strings, NumPy
    scalars and arrays as numbers and lists, anything else as stable text."""
    if isinstance(value, str):
        return stable_text(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if callable(value) and hasattr(value, "__qualname__"):
        return f"<{type(value).__name__} {getattr(value, '__module__', '?')}.{value.__qualname__}>"
    return stable_text(str(value))


def dumps(value: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Strict JSON text of ``value`` (see the module docstring for non-finite numbers)."""
    return json.dumps(_plain(value), indent=indent, sort_keys=sort_keys, allow_nan=False, ensure_ascii=False)


def number(value: Any) -> float:
    """A number written by :func:`dumps`: a JSON number or one of the :data:`NON_FINITE` strings."""
    if isinstance(value, str) and value in NON_FINITE:
        return NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {_kind(value)}")
    return float(value)


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------ writing


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); the directory must exist."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    if len(path.name.encode()) > NAME_MAX:
        raise OutputError(f"cannot write {path}: the file name is longer than {NAME_MAX} bytes")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:100]}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_why(exc)}") from None
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {_why(exc)}") from None
    except BaseException:  # a failed write or an interrupt: leave no temporary file behind
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_json(path: str | Path, value: Any) -> Path:
    """``value`` as strict JSON, written atomically."""
    return write_atomic(path, dumps(value) + "\n")


def safe_name(stem: str, suffix: str = ".json") -> str:
    """A file name for ``stem + suffix`` within :data:`NAME_MAX` bytes (a long stem is cut and
    ends with a hash of itself, so different stems keep different names)."""
    if len((stem + suffix).encode()) <= NAME_MAX:
        return stem + suffix
    digest = hashlib.sha256(stem.encode()).hexdigest()[:12]
    keep = stem.encode()[: NAME_MAX - len(suffix) - 14].decode(errors="ignore")
    return f"{keep}--{digest}{suffix}"


def _first_existing(path: Path) -> Path:
    p = path
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _probe(directory: Path, what: str) -> None:
    """Create, fill and remove a small file in ``directory``: read-only, permission-less and full
    file systems fail here, before any work. ``what`` names the location in the message."""
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".dlverify-probe-", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"{what}: cannot write there: {_why(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise OutputError(f"{what}: cannot write there: {_why(exc)}") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def prepare_directory(path: str | Path, what: str) -> Path:
    """Make sure ``path`` is a directory dlverify can write (creating it and its parents), or
    raise :class:`OutputError` naming ``what`` (the option, e.g. ``--out``)."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise OutputError(f"{what} {path}: not a directory (a file is in the way)")
    if not path.is_dir():
        blocker = _first_existing(path)
        if not blocker.is_dir():
            raise OutputError(f"{what} {path}: cannot be created, {blocker} is a file")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{what} {path}: cannot be created: {_why(exc)}") from None
    _probe(path, f"{what} {path}")
    return path


def prepare_file(path: str | Path, what: str) -> Path:
    """Make sure ``path`` can be written as a file: not a directory, in an existing, writable directory."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path}: is a directory, not a file")
    if len(path.name.encode()) > NAME_MAX:
        raise OutputError(f"{what} {path}: the file name is longer than {NAME_MAX} bytes")
    parent = path.parent
    if not parent.is_dir():
        blocker = _first_existing(parent)
        why = f"{blocker} is a file" if os.path.lexists(blocker) and not blocker.is_dir() else "no such directory"
        raise OutputError(f"{what} {path}: cannot write there: {why}")
    _probe(parent, f"{what} {path}")
    return path


# ------------------------------------------------------------------------------------ reading


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value``, counted up to ``limit + 1``."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def _reject_constant(token: str) -> Any:
    raise ValueError(f"bare {token} is not strict JSON")


def read_json(path: str | Path, kind: str, *, max_bytes: int = MAX_BYTES) -> tuple[Any, bytes]:
    """The JSON value in ``path`` and its bytes; a missing, huge, binary, non-strict or too deeply
    nested file is a :class:`RecordError` naming it (``kind`` says what it should be)."""
    path = Path(path)
    try:
        if not path.is_file():
            raise RecordError(f"no such {kind} file: {path}")
        size = path.stat().st_size
        if size > max_bytes:
            raise RecordError(f"{path}: not a {kind} file: {size:,} bytes, more than the {max_bytes:,} a record may hold")
        raw = path.read_bytes()
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise RecordError(f"no such {kind} file: the name is longer than {NAME_MAX} bytes") from None
        raise RecordError(f"cannot read {path}: {_why(exc)}") from None
    if not raw.strip():
        raise RecordError(f"{path}: not a {kind} file: it is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError(f"{path}: not a {kind} file: binary content (not UTF-8 text)") from None
    if "\0" in text:
        raise RecordError(f"{path}: not a {kind} file: binary content (NUL bytes)")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise RecordError(f"{path}: not a {kind} file: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise RecordError(f"{path}: not a {kind} file: not strict JSON ({exc})") from None
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise RecordError(f"{path}: not a {kind} file: nested deeper than {MAX_DEPTH} levels")
    return value, raw


class Fields:
    """Typed access to one JSON object of a record, naming the file and the field on failure::

        f = Fields(value, path)            # the whole record must be an object
        f.str("variant"); f.int("seed", lo=0); f.obj("structure"); f.list("enforced", of=str)
    """

    def __init__(self, value: Any, path: str | Path, where: str = "") -> None:
        self.path, self.where = str(path), where
        if not isinstance(value, dict):
            raise self.error(f"expected an object, got {_kind(value)}", where or "(top level)")
        self.value = value

    def error(self, message: str, field: str) -> RecordError:
        return RecordError(f"{self.path}: field {field}: {message}")

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.value

    def get(self, key: str, check: Callable[[Any], bool], want: str, **default: Any) -> Any:
        if key not in self.value:
            if "default" in default:
                return default["default"]
            raise self.error("missing", self.name(key))
        v = self.value[key]
        if not check(v):
            raise self.error(f"expected {want}, got {_kind(v)}", self.name(key))
        return v

    def str(self, key: str, *, max_len: int = 100_000, choices: Iterable[str] | None = None, **default: Any) -> str:
        v = self.get(key, lambda v: isinstance(v, str), "a string", **default)
        if len(v) > max_len:
            raise self.error(f"longer than {max_len:,} characters", self.name(key))
        if choices is not None and v not in choices:
            raise self.error(f"expected one of {', '.join(map(repr, choices))}, got {v!r}", self.name(key))
        return v

    def bool(self, key: str, **default: Any) -> bool:
        return self.get(key, lambda v: isinstance(v, bool), "true or false", **default)

    def int(self, key: str, *, lo: int | None = None, hi: int | None = None, **default: Any) -> int:
        v = self.get(key, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", **default)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.error(f"{v} is outside [{lo}, {hi}]", self.name(key))
        return v

    def number(self, key: str, **default: Any) -> float:
        if key not in self.value and "default" in default:
            return default["default"]
        return number(self.get(key, _is_number, "a number"))

    def opt_number(self, key: str) -> float | None:
        v = self.get(key, lambda v: v is None or _is_number(v), "a number or null", default=None)
        return None if v is None else number(v)

    def obj(self, key: str, **default: Any) -> "Fields":
        v = self.get(key, lambda v: isinstance(v, dict), "an object", **default)
        return v if v is None else Fields(v, self.path, self.name(key))

    def opt_obj(self, key: str) -> "Fields | None":
        v = self.get(key, lambda v: v is None or isinstance(v, dict), "an object or null", default=None)
        return None if v is None else Fields(v, self.path, self.name(key))

    def list(self, key: str, *, of: type | None = None, max_len: int = 1_000_000, **default: Any) -> list[Any]:
        v = self.get(key, lambda v: isinstance(v, list), "a list", **default)
        if len(v) > max_len:
            raise self.error(f"more than {max_len:,} entries", self.name(key))
        if of is not None:
            for i, item in enumerate(v):
                if not isinstance(item, of) or (of is int and isinstance(item, bool)):
                    raise self.error(f"expected {_kind(of())}, got {_kind(item)}", f"{self.name(key)}[{i}]")
        return v

    def objects(self, key: str, **default: Any) -> list["Fields"]:
        items = self.list(key, **default)
        return [Fields(item, self.path, f"{self.name(key)}[{i}]") for i, item in enumerate(items)]


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or (isinstance(v, str) and v in NON_FINITE)


def locate_source(record: str | Path, absolute: str, relative: str, sha256: str) -> Path:
    """The theorem file a record was made from, found from the record itself: ``relative`` (to the
    record's directory) first, then ``absolute``, and only if its SHA-256 is ``sha256``. A file
    that is missing, or whose content changed, is a :class:`RecordError`: nothing is evaluated
    on a guess."""
    record = Path(record)
    candidates = []
    if relative:
        candidates.append(Path(os.path.normpath(record.resolve().parent / relative)))
    if absolute:
        candidates.append(Path(absolute))
    changed = []
    for c in candidates:
        try:
            if c.is_file():
                if sha256_file(c) == sha256:
                    return c
                changed.append(c)
        except OSError:
            continue
    shown = absolute or relative
    if changed:
        raise RecordError(f"{record}: the theorem file {changed[0]} changed since the record was written "
                          f"(SHA-256 differs): it is not evaluated as if it were the same theorem; run it again")
    raise RecordError(f"{record}: the theorem file {shown} it was made from is missing")
