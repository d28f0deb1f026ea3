"""JSON certificates: what one run established about one theorem, and how to reproduce it.

The engine builds a certificate (:meth:`verify.engine.runner.TheoremReport.certificate`); this
module is the one place that writes certificate files and reads them back, and the one place
that names the format.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import VerifyError
from verify.records.io import Fields, RecordError, number, read_json, safe_name, write_json
from verify.spec import ID_PATTERN, MAX_ID_LENGTH

FORMAT = "dlverify-certificate/4"
#: /2 counted exact zeros and 1 <= |r|/tol < 10 under one histogram key, "0"
OLDER_FORMATS = ("dlverify-certificate/1", "dlverify-certificate/2", "dlverify-certificate/3")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_DIR = ".dlverify/certificates"
_LIBRARIES = ("dlverify", "jax", "jaxlib", "numpy", "sympy", "hypothesis", "mpmath", "scipy")


#: decades of |r| / tolerance bound in the residual histogram; "zero" counts exact zeros
HISTOGRAM_DECADES = range(-18, 3)


def add_to_histogram(hist: dict[str, int], ratios: np.ndarray) -> None:
    """Count ratios by decade: key "k" holds 10^k <= ratio < 10^(k+1) (clipped to the range), key
    "zero" the exact zeros (apart from decade "0", 1 <= ratio < 10)."""
    zero = ratios == 0
    if zero.any():
        hist["zero"] = hist.get("zero", 0) + int(zero.sum())
    lo, hi = HISTOGRAM_DECADES.start, HISTOGRAM_DECADES.stop - 1
    decades = np.clip(np.floor(np.log10(ratios[~zero])), lo, hi).astype(int)
    for k, n in zip(*np.unique(decades, return_counts=True)):
        hist[str(k)] = hist.get(str(k), 0) + int(n)


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "not installed"
    return out


def path_for(theorem_id: str, directory: str | Path = DEFAULT_DIR) -> Path:
    return Path(directory) / safe_name(theorem_id)


def write_certificate(cert: Any, directory: str | Path) -> Path:
    """Write a certificate (a dict, or a report with ``.certificate()``) as ``DIR/ID.json``,
    atomically (:func:`verify.records.io.write_atomic`). A theorem from a user's file also
    records that file relative to ``DIR`` (``theorem.module_relative``), so that ``verify cite``
    finds it from the certificate wherever it is run."""
    if hasattr(cert, "certificate"):
        cert = cert.certificate()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    module = str(cert["theorem"].get("module", ""))
    if module.endswith(".py") and os.path.isabs(module):
        cert = dict(cert, theorem=dict(cert["theorem"], module_relative=os.path.relpath(module, directory.resolve())))
    return write_json(path_for(cert["theorem"]["id"], directory), cert)


def _search(f: Fields | None) -> None:
    if f is None:
        return
    f.str("verdict", max_len=100)
    f.int("instances_drawn", lo=0, default=0)
    f.int("instances_satisfying_assumptions", lo=0, default=0)
    f.number("largest_residual", default=0.0)
    f.number("largest_residual_over_tolerance", default=0.0)
    hist = f.obj("residual_over_tolerance_histogram", default=None)
    for k in (hist.value if hist else ()):
        hist.int(k, lo=0)
    cx = f.opt_obj("counterexample")
    if cx is not None:
        cx.obj("structure")
        cx.number("residual_float64")
        cx.number("residual_over_tolerance_float64")
        cx.str("established", max_len=100)
        cx.obj("shrink", default=None)


def validate(value: Any, path: str | Path) -> dict[str, Any]:
    """``value`` (read from ``path``) checked field by field as a certificate: every field the
    readers use has its type; a problem is a :class:`~verify.records.io.RecordError` naming the
    file and the field."""
    f = Fields(value, path)
    fmt = f.get("format", lambda v: True, "", default=None)
    if fmt in OLDER_FORMATS:
        raise RecordError(f"{path} was written by an older dlverify ({fmt}; this one reads {FORMAT}): run it again")
    if fmt != FORMAT:
        raise RecordError(f"{path} is not a dlverify certificate (expected format {FORMAT})")
    t = f.obj("theorem")
    tid = t.str("id", max_len=MAX_ID_LENGTH)
    if not ID_PATTERN.match(tid):
        raise t.error(f"{tid!r} is not a theorem id", "theorem.id")
    for key in ("title", "source", "statement"):
        t.str(key)
    for key in ("conventions", "bibtex", "module", "module_sha256", "module_relative"):
        t.str(key, default="")
    if not _SHA256.match(t.str("statement_sha256", max_len=64)):
        raise t.error("expected a hex SHA-256", "theorem.statement_sha256")
    t.str("expect", choices=("true", "false"))
    for a in t.objects("assumptions"):
        a.str("name", max_len=200)
        a.str("description")
    tol = t.obj("tolerance")
    tol.number("atol")
    tol.number("rtol")
    tol.str("reason")
    t.list("uses", of=str, default=[])
    f.bool("ok")
    f.list("problems", of=str)
    f.list("faces", of=str, default=[])
    f.int("seed", lo=0)
    sym = f.opt_obj("symbolic")
    if sym is not None:
        sym.str("verdict", max_len=100)
        sym.str("summary", default="")
        for c in sym.objects("claims", default=[]):
            c.str("verdict", max_len=100)
            c.str("established", max_len=100)
            c.obj("scope")
            c.obj("rules_used", default=None)
    for row in f.objects("trust", default=[]):
        row.str("claim")
        row.str("class", max_len=100)
    _search(f.opt_obj("numeric"))
    for m in f.objects("mutants", default=[]):
        m.str("name", max_len=200)
        m.bool("refuted")
        _search(m.obj("numeric"))
    for a in f.objects("ablations", default=[]):
        a.str("assumption", max_len=200)
        a.str("verdict", max_len=100)
        _search(a.obj("search"))
    for r in f.objects("failure_rates", default=[]):
        r.obj("structure")
        r.int("instances", lo=0)
        r.int("meeting_assumptions", lo=0)
        r.int("failing", lo=0)
        r.opt_number("rate")
        interval = r.list("interval95")
        if len(interval) != 2:
            raise r.error("expected two numbers", r.name("interval95"))
        for i, v in enumerate(interval):
            try:
                number(v)
            except TypeError as exc:
                raise r.error(str(exc), f"{r.name('interval95')}[{i}]") from None
    h = f.opt_obj("hunt")  # written by `verify hunt` (verify.hunt): one face, and the budget it spent
    if h is not None:
        h.str("variant", max_len=200)
        for key in ("instances_spent", "tasks", "tasks_counted"):
            h.int(key, lo=0)
        h.str("not_checked")
        h.obj("run")
    libs = f.obj("libraries", default=None)
    for k in (libs.value if libs else ()):
        libs.str(k, max_len=200)
    return value


def read_certificate(path: str | Path) -> tuple[dict[str, Any], str]:
    """The certificate in ``path`` and the SHA-256 of the file; a file that is not a valid
    certificate is a :class:`~verify.records.io.RecordError` naming it and the field."""
    value, raw = read_json(path, "certificate")
    return validate(value, path), hashlib.sha256(raw).hexdigest()


def certificate_of(theorem_id: str, directory: str | Path = DEFAULT_DIR) -> tuple[dict[str, Any], str]:
    """The certificate of ``theorem_id`` in ``directory`` and the SHA-256 of its file."""
    if len(theorem_id) > MAX_ID_LENGTH or not ID_PATTERN.match(theorem_id):
        raise VerifyError(f"{theorem_id[:80]!r} is not a theorem id")
    path = path_for(theorem_id, directory)
    if not path.is_file():
        raise VerifyError(f"no certificate for {theorem_id} in {directory}: run `verify run {theorem_id}` first")
    cert, digest = read_certificate(path)
    if cert["theorem"]["id"] != theorem_id:
        raise RecordError(f"{path}: field theorem.id: {cert['theorem']['id']!r}, not {theorem_id!r}")
    return cert, digest


def load_certificates(directory: str | Path) -> list[dict[str, Any]]:
    """Every certificate in ``directory``, in file-name order. Nothing is skipped in silence: one
    or more files that are not valid certificates are a :class:`~verify.records.io.RecordError`
    naming each (and why)."""
    out, bad = [], []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            out.append(read_certificate(path)[0])
        except VerifyError as exc:
            bad.append(str(exc))
    if bad:
        raise RecordError(f"{len(bad)} unreadable certificate{'s' if len(bad) > 1 else ''} in {directory} "
                          f"(fix or delete {'them' if len(bad) > 1 else 'it'}): " + "; ".join(bad))
    return out
