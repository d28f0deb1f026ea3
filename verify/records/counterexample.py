"""Counterexamples as replayable files.

A counterexample file is strict JSON (:mod:`verify.records.io`): the theorem id and, for a
theorem from a user's file, where that file is (``theorem_file``: its absolute path, its path
relative to the record's directory, and the SHA-256 of the source that was run); the variant
that failed (``claim``, ``mutant:NAME`` or ``ablate:NAME``), the assumptions that were enforced
and whether each held, the structure, the instance's arrays (``dtype``, ``shape`` and nested
``values``; floats written with ``repr``, which round-trips float64 exactly, non-finite ones as
``"NaN"``/``"Infinity"``/``"-Infinity"``), its float64 and 50-digit residuals and what they
establish, the seeds that produced it, and how shrinking went (including whether it stopped at
its budget). ``verify replay FILE`` re-evaluates it from the file alone, from any directory.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from verify.records.io import Fields, RecordError, dumps, number, read_json, safe_name, write_json
from verify.spec import ID_PATTERN, MAX_ID_LENGTH, NAME_PATTERN

FORMAT = "dlverify-counterexample/4"
#: read as they are: /3 lacks only ``certification`` (and never has a guided witness, key_seed -1)
READABLE = (FORMAT, "dlverify-counterexample/3")
OLDER_FORMATS = ("dlverify-counterexample/1", "dlverify-counterexample/2")
ESTABLISHED = ("real", "float64 only", "rounding")
#: dtypes an instance array may have (numbers and booleans; never objects or strings)
DTYPES = ("float64", "float32", "int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool")
#: the most entries one instance may hold, all arrays together
MAX_ELEMENTS = 2**22
MAX_DIMS = 16
_VARIANT = re.compile(r"^(claim|(mutant|ablate):[a-z][a-z0-9_]*)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Counterexample:
    theorem_id: str
    variant: str
    enforced: list[str]
    structure: dict[str, Any]
    instance: dict[str, np.ndarray]
    residual: float
    ratio: float
    finite: bool
    highprec_residual: str
    highprec_ratio: str
    established: str  # "real" | "float64 only" | "rounding" (see verify.engine.evaluate.Judgement)
    seed: int
    key_seed: int
    index: int
    shrink: dict[str, Any] = field(default_factory=dict)
    source_file: str = ""  # absolute path of the user's theorem file ("" for the catalogue)
    assumptions_held: dict[str, bool] = field(default_factory=dict)
    established_note: str = ""
    path: str = ""
    source_sha256: str = ""  # SHA-256 of that file's source as it was run
    source_relative: str = ""  # that file relative to the record's directory (as read back)
    #: what exact rationals or ball arithmetic established (verify.exact.ball.Certification as a
    #: dict: status certified | not-certified | unavailable, method, ratio_lower, reason); {} if not tried
    certification: dict[str, str] = field(default_factory=dict)

    @property
    def real(self) -> bool:
        """The violation is confirmed at 50 digits."""
        return self.established == "real"

    @property
    def refutes(self) -> bool:
        """The instance shows the variant false: confirmed at 50 digits, or established in float64
        for a component that has no 50-digit form (a claim about JAX itself)."""
        return self.established in ("real", "float64 only")

    @property
    def certified(self) -> bool:
        """Exact rationals or ball arithmetic show the residual beyond tolerance with the enforced
        assumptions holding: the counterexample is proved, not only evaluated."""
        return self.certification.get("status") == "certified"

    def theorem_file(self, directory: str | Path | None = None) -> dict[str, str] | None:
        if not self.source_file:
            return None
        rel = self.source_relative
        if directory is not None:
            rel = os.path.relpath(self.source_file, Path(directory).resolve())
        return {"path": self.source_file, "relative_to_record": rel, "sha256": self.source_sha256}

    def as_dict(self, directory: str | Path | None = None) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "theorem": self.theorem_id,
            "theorem_file": self.theorem_file(directory),
            "variant": self.variant,
            "enforced_assumptions": self.enforced,
            "structure": self.structure,
            "instance": {
                k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": v.tolist()}
                for k, v in self.instance.items()
            },
            "residual_float64": self.residual,
            "residual_over_tolerance_float64": self.ratio,
            "finite": self.finite,
            "residual_50_digits": self.highprec_residual,
            "residual_over_tolerance_50_digits": self.highprec_ratio,
            "established": self.established,
            "established_note": self.established_note,
            "seed": self.seed,
            "key_seed": self.key_seed,
            "index_in_batch": self.index,
            "shrink": self.shrink,
            "assumptions_held": self.assumptions_held,
            "certification": self.certification,
            "file": self.path,
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``DIR/ID--VARIANT--HASH.json`` atomically. HASH is of the content, less where the
        theorem file lies, so one counterexample has one name whatever directory it came from."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        body = self.as_dict(directory)
        body.pop("file")
        named = dict(body, theorem_file=(body["theorem_file"] or {}).get("sha256"))
        digest = hashlib.sha256(dumps(named, indent=None, sort_keys=True).encode()).hexdigest()[:10]
        variant = self.variant.replace(":", "-")
        path = directory / safe_name(f"{self.theorem_id}--{variant}--{digest}")
        write_json(path, body)
        self.path = str(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Counterexample":
        """Read and validate a counterexample file; any problem is a
        :class:`~verify.records.io.RecordError` naming the file and the field."""
        value, _ = read_json(path, "counterexample")
        f = Fields(value, path)
        fmt = f.get("format", lambda v: True, "", default=None)
        if fmt in OLDER_FORMATS:
            raise RecordError(f"{path} was written by an older dlverify ({fmt}; this one reads {FORMAT}): "
                              "run the search again")
        if fmt not in READABLE:
            raise RecordError(f"{path} is not a dlverify counterexample file (expected format {FORMAT})")
        theorem_id = f.str("theorem", max_len=MAX_ID_LENGTH)
        if not ID_PATTERN.match(theorem_id):
            raise f.error(f"{theorem_id!r} is not a theorem id", "theorem")
        variant = f.str("variant", max_len=200)
        if not _VARIANT.match(variant):
            raise f.error(f"{variant!r} is not claim, mutant:NAME or ablate:NAME", "variant")
        enforced = f.list("enforced_assumptions", of=str, max_len=1000)
        for i, n in enumerate(enforced):
            if not NAME_PATTERN.match(n):
                raise f.error(f"{n!r} is not an assumption name", f"enforced_assumptions[{i}]")
        source = f.opt_obj("theorem_file")
        src_path = src_rel = src_sha = ""
        if source is not None:
            src_path = source.str("path", max_len=4096)
            src_rel = source.str("relative_to_record", max_len=4096)
            src_sha = source.str("sha256", max_len=64)
            if not _SHA256.match(src_sha):
                raise f.error("expected a hex SHA-256", "theorem_file.sha256")
        held = f.obj("assumptions_held", default=None)
        assumptions_held = {}
        if held is not None:
            for k in held.value:
                assumptions_held[str(k)] = held.bool(k)
        return cls(
            theorem_id=theorem_id, variant=variant, enforced=list(enforced),
            structure=f.obj("structure").value, instance=_instance(f.obj("instance")),
            residual=f.number("residual_float64"), ratio=f.number("residual_over_tolerance_float64"),
            finite=f.bool("finite"), highprec_residual=f.str("residual_50_digits", max_len=1000),
            highprec_ratio=f.str("residual_over_tolerance_50_digits", max_len=1000),
            established=f.str("established", choices=ESTABLISHED),
            established_note=f.str("established_note", max_len=10_000, default=""),
            # -1, -1: a witness of the guided climb, an explicit example or a saved failure, which no batch
            # reproduces (its values are the record)
            seed=f.int("seed", lo=0, hi=2**32 - 1), key_seed=f.int("key_seed", lo=-1, hi=2**32 - 1),
            index=f.int("index_in_batch", lo=-1), shrink=(f.obj("shrink", default=None) or Fields({}, path)).value,
            source_file=src_path, source_relative=src_rel, source_sha256=src_sha, path=str(path),
            assumptions_held=assumptions_held, certification=_certification(f),
        )

    def replay_command(self) -> str:
        return f"verify replay {self.path}" if self.path else "verify replay FILE"


def _instance(f: Fields) -> dict[str, np.ndarray]:
    """The instance's arrays, each checked: a known numeric dtype, a shape, values that fill it."""
    out: dict[str, np.ndarray] = {}
    total = 0
    if len(f.value) > 1000:
        raise f.error("more than 1,000 arrays", f.where)
    for key in f.value:
        entry = f.obj(key)
        dtype = entry.str("dtype", max_len=20, choices=DTYPES)
        shape = entry.list("shape", of=int, max_len=MAX_DIMS)
        if any(n < 0 for n in shape):
            raise entry.error(f"negative size in {shape}", entry.name("shape"))
        size = math.prod(shape)
        total += size
        if total > MAX_ELEMENTS:
            raise entry.error(f"the instance would hold more than {MAX_ELEMENTS:,} entries", entry.name("shape"))
        values = entry.get("values", lambda v: True, "")
        flat: list[Any] = []
        _flatten(values, shape, dtype, flat, entry, entry.name("values"))
        try:
            out[key] = np.array(flat, dtype=dtype).reshape(shape)
        except (OverflowError, ValueError, TypeError) as exc:
            raise entry.error(f"values do not fit {dtype} ({exc})", entry.name("values")) from None
    return out


def _flatten(values: Any, shape: list[int], dtype: str, out: list[Any], f: Fields, where: str) -> None:
    if not shape:
        kind = np.dtype(dtype).kind
        if kind == "b":
            ok = isinstance(values, bool)
        elif kind == "f":
            ok = isinstance(values, (int, float)) and not isinstance(values, bool) or values in ("NaN", "Infinity",
                                                                                                 "-Infinity")
        else:
            ok = isinstance(values, int) and not isinstance(values, bool)
        if not ok:
            raise f.error(f"expected a value of dtype {dtype}, got {type(values).__name__} {str(values)[:40]!r}", where)
        out.append(number(values) if kind == "f" else values)
        return
    if not isinstance(values, list) or len(values) != shape[0]:
        got = f"{len(values)} entries" if isinstance(values, list) else type(values).__name__
        raise f.error(f"expected {shape[0]} entries (shape {shape}), got {got}", where)
    for i, v in enumerate(values):
        _flatten(v, shape[1:], dtype, out, f, f"{where}[{i}]")


@dataclass
class Replay:
    """The outcome of re-evaluating a stored counterexample."""

    counterexample: Counterexample
    residual: float
    ratio: float
    finite: bool
    highprec_residual: str
    highprec_ratio: str
    assumptions_hold: bool
    reproduced: bool
    established: str = ""
    certification: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.counterexample.path,
            "theorem": self.counterexample.theorem_id,
            "variant": self.counterexample.variant,
            "structure": self.counterexample.structure,
            "residual_float64": self.residual,
            "residual_over_tolerance_float64": self.ratio,
            "residual_50_digits": self.highprec_residual,
            "residual_over_tolerance_50_digits": self.highprec_ratio,
            "enforced_assumptions_hold": self.assumptions_hold,
            "reproduced": self.reproduced,
            "established": self.established,
            "certification": self.certification,
        }


def _certification(f: Fields) -> dict[str, str]:
    c = f.obj("certification", default=None)
    if c is None:
        return {}
    out = {k: c.str(k, max_len=10_000, default="") for k in ("status", "method", "ratio_lower", "reason")}
    if out["status"] not in ("certified", "not-certified", "unavailable"):
        raise c.error(f"{out['status']!r} is not certified, not-certified or unavailable", "status")
    return out
