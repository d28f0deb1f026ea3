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

FORMAT = "dlverify-counterexample/2"


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
    source_file: str = ""
    assumptions_held: dict[str, bool] = field(default_factory=dict)
    established_note: str = ""
    path: str = ""

    @property
    def real(self) -> bool:
        """The violation is confirmed at 50 digits."""
        return self.established == "real"

    @property
    def refutes(self) -> bool:
        """The instance shows the variant false: confirmed at 50 digits, or established in float64
        for a component that has no 50-digit form (a claim about JAX itself)."""
        return self.established in ("real", "float64 only")

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
            "established": self.established,
            "established_note": self.established_note,
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
                established=d["established"], established_note=d.get("established_note", ""), seed=d["seed"], key_seed=d["key_seed"], index=d["index_in_batch"],
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
