"""JSON certificates: what one run established about one theorem, and how to reproduce it.

The engine builds a certificate (:meth:`verify.engine.runner.TheoremReport.certificate`); this
module is the one place that writes certificate files and reads them back, and the one place
that names the format.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import VerifyError

FORMAT = "dlverify-certificate/2"
DEFAULT_DIR = ".dlverify/certificates"
_LIBRARIES = ("dlverify", "jax", "jaxlib", "numpy", "sympy", "hypothesis", "mpmath", "scipy")


#: decades of |r| / tolerance bound in the residual histogram; "0" counts exact zeros
HISTOGRAM_DECADES = range(-18, 3)


def add_to_histogram(hist: dict[str, int], ratios: np.ndarray) -> None:
    """Count ratios by decade: key "k" holds 10^k <= ratio < 10^(k+1) (clipped to the range)."""
    zero = ratios == 0
    if zero.any():
        hist["0"] = hist.get("0", 0) + int(zero.sum())
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
    return Path(directory) / f"{theorem_id}.json"


def write_certificate(cert: Any, directory: str | Path) -> Path:
    """Write a certificate (a dict, or a report with ``.certificate()``) as ``DIR/ID.json``."""
    if hasattr(cert, "certificate"):
        cert = cert.certificate()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = path_for(cert["theorem"]["id"], directory)
    path.write_text(json.dumps(cert, indent=2, default=str) + "\n")
    return path


def read_certificate(path: str | Path) -> tuple[dict[str, Any], str]:
    """The certificate in ``path`` and the SHA-256 of the file; a file that is not a certificate
    is a :class:`~verify.errors.VerifyError` naming it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise VerifyError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        cert = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VerifyError(f"{path} is not a certificate ({exc})") from None
    if not isinstance(cert, dict) or cert.get("format") != FORMAT:
        raise VerifyError(f"{path} is not a dlverify certificate (expected format {FORMAT})")
    return cert, hashlib.sha256(raw).hexdigest()


def certificate_of(theorem_id: str, directory: str | Path = DEFAULT_DIR) -> tuple[dict[str, Any], str]:
    """The certificate of ``theorem_id`` in ``directory`` and the SHA-256 of its file."""
    path = path_for(theorem_id, directory)
    if not path.is_file():
        raise VerifyError(f"no certificate for {theorem_id} in {directory}: run `verify run {theorem_id}` first")
    return read_certificate(path)


def load_certificates(directory: str | Path) -> list[dict[str, Any]]:
    """Every certificate in ``directory``, in file-name order (files that are not certificates are skipped)."""
    out = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            out.append(read_certificate(path)[0])
        except VerifyError:
            continue
    return out
