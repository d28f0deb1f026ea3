"""Counterexamples as replayable files.

A counterexample file is JSON: the theorem (id, and the user file it came from if any), the
variant that failed (``claim``, ``mutant:NAME`` or ``ablate:NAME``), the assumptions that were
enforced, the structure, the instance's arrays (floats written with ``repr``, which round-trips
float64 exactly), its float64 and 50-digit residuals, the seeds that produced it, and how much
shrinking reduced it. ``verify replay FILE`` re-evaluates it from the file alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import VerifyError

FORMAT = "dlverify-counterexample/1"


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
    real: bool
    seed: int
    key_seed: int
    index: int
    shrink: dict[str, Any] = field(default_factory=dict)
    source_file: str = ""
    assumptions_held: dict[str, bool] = field(default_factory=dict)
    path: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "theorem": self.theorem_id,
            "source_file": self.source_file,
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
            "real_violation": self.real,
            "seed": self.seed,
            "key_seed": self.key_seed,
            "index_in_batch": self.index,
            "shrink": self.shrink,
            "assumptions_held": self.assumptions_held,
            "file": self.path,
        }

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        body = self.as_dict()
        body.pop("file")
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:10]
        variant = self.variant.replace(":", "-")
        path = directory / f"{self.theorem_id}--{variant}--{digest}.json"
        self.path = str(path)
        path.write_text(json.dumps(body, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Counterexample":
        try:
            d = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise VerifyError(f"no such counterexample file: {path}") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise VerifyError(f"{path} is not a counterexample file ({exc})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise VerifyError(f"{path} is not a dlverify counterexample file (expected format {FORMAT})")
        try:
            instance = {
                k: np.asarray(v["values"], dtype=v["dtype"]).reshape(v["shape"]) for k, v in d["instance"].items()
            }
            return cls(
                theorem_id=d["theorem"], variant=d["variant"], enforced=list(d["enforced_assumptions"]),
                structure=d["structure"], instance=instance, residual=d["residual_float64"],
                ratio=d["residual_over_tolerance_float64"], finite=d["finite"],
                highprec_residual=d["residual_50_digits"], highprec_ratio=d["residual_over_tolerance_50_digits"],
                real=d["real_violation"], seed=d["seed"], key_seed=d["key_seed"], index=d["index_in_batch"],
                shrink=d.get("shrink", {}), source_file=d.get("source_file", ""), path=str(path),
                assumptions_held=d.get("assumptions_held", {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VerifyError(f"{path}: malformed counterexample file ({exc})") from None

    def replay_command(self) -> str:
        return f"verify replay {self.path}" if self.path else "verify replay FILE"


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
        }


def replay(path: str | Path) -> Replay:
    """Re-evaluate a counterexample file: float64 and 50 digits, on the current theorem code."""
    from verify.numeric import Structure, judge
    from verify.registry import resolve

    cx = Counterexample.load(path)
    theorem = resolve(cx.source_file or cx.theorem_id, theorem_id=cx.theorem_id)
    kind, _, name = cx.variant.partition(":")
    if kind == "mutant":
        prop = theorem.mutant(name).property
    elif kind in ("claim", "ablate"):
        prop = theorem.property
    else:
        raise VerifyError(f"{path}: unknown variant {cx.variant!r}")
    names = [a.name for a in theorem.assumptions]
    missing = [n for n in cx.enforced if n not in names]
    if missing:
        raise VerifyError(f"{path}: theorem {theorem.id} no longer has assumptions {missing}")
    enforce = [names.index(n) for n in cx.enforced]
    s = Structure(cx.structure)
    verdict = judge(prop, theorem.assumptions, theorem.tolerance, s, cx.instance, enforce)
    f64 = verdict["f64"]
    return Replay(
        counterexample=cx, residual=float(f64["absres"]), ratio=float(f64["ratio"]), finite=bool(f64["finite"]),
        highprec_residual=verdict["highprec_residual"], highprec_ratio=verdict["highprec_ratio"],
        assumptions_hold=verdict["holds"], reproduced=verdict["holds"] and (not verdict["finite"] or verdict["exceeds"]),
    )
