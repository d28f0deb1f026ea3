"""Running a theorem through its faces and deciding whether the run passed.

A report passes when the claim came out as expected (a theorem: symbolic ``proved`` or
``proved-to-N`` and numeric ``confirmed``; a stated non-theorem: numeric ``refuted``) and every
mutant was refuted by at least one face. Ablation results are findings, not pass/fail.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from verify.config import in_float64, numeric_settings
from verify.engine.evaluate import release_compiled
from verify.engine.rates import failure_rate
from verify.engine.search import Budget, SearchResult, search
from verify.records.certificate import FORMAT as CERTIFICATE_FORMAT
from verify.records.certificate import library_versions
from verify.spec import Theorem
from verify.symbolic import SymbolicResult, check_derivation

FACES = ("symbolic", "numeric", "mutants", "ablate")


def derive_seed(seed: int, *parts: str) -> int:
    """An independent, reproducible 32-bit seed for one search of one run."""
    h = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(h[:4], "little")


@dataclass
class MutantResult:
    name: str
    description: str
    numeric: SearchResult
    symbolic: SymbolicResult | None = None

    @property
    def refuted(self) -> bool:
        return self.numeric.verdict == "refuted" or (self.symbolic is not None and self.symbolic.verdict == "refuted")

    def as_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "description": self.description, "refuted": self.refuted,
             "numeric": self.numeric.as_dict()}
        if self.symbolic is not None:
            d["symbolic"] = self.symbolic.as_dict()
        return d


@dataclass
class AblationResult:
    assumption: str
    search: SearchResult

    @property
    def witness_violates_it(self) -> bool:
        cx = self.search.counterexample
        return cx is not None and cx.assumptions_held.get(self.assumption) is False

    @property
    def verdict(self) -> str:
        if self.search.verdict == "refuted":  # a witness only if it violates the assumption dropped
            return "necessary" if self.witness_violates_it else "not-shown-necessary"
        if self.search.verdict == "error":
            return "error"
        return "not-shown-necessary"

    def as_dict(self) -> dict[str, Any]:
        d = {"assumption": self.assumption, "verdict": self.verdict, "search": self.search.as_dict()}
        if self.search.verdict == "refuted" and not self.witness_violates_it:
            d["note"] = (f"the counterexample found meets {self.assumption}: it refutes the claim itself, "
                         f"so it is no witness that {self.assumption} is necessary")
        if self.verdict == "not-shown-necessary":
            d["budget_spent"] = {"instances": self.search.drawn,
                                 "violating_it": self.search.dropped_violated}
        return d


@dataclass
class TheoremReport:
    theorem: Theorem
    faces: tuple[str, ...]
    seed: int
    budget: Budget
    symbolic: SymbolicResult | None = None
    numeric: SearchResult | None = None
    mutants: list[MutantResult] = field(default_factory=list)
    ablations: list[AblationResult] = field(default_factory=list)
    rates: list[dict[str, Any]] = field(default_factory=list)
    numeric_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        out: list[str] = []
        expect_true = self.theorem.expect == "true"
        if self.symbolic is not None and self.symbolic.verdict != "none":
            v = self.symbolic.verdict
            if expect_true and not v.startswith("proved"):
                out.append(f"symbolic: {v}")
            if not expect_true and v.startswith("proved"):
                out.append("symbolic: a stated non-theorem was proved")
        if self.numeric is not None:
            v = self.numeric.verdict
            if expect_true and v != "confirmed":
                out.append(f"numeric: {v}" + (f" ({self.numeric.note})" if self.numeric.note else ""))
            if not expect_true and v != "refuted":
                out.append(f"numeric: a stated non-theorem was not refuted ({v})")
        for r in self.rates if expect_true else ():
            if r["failing"]:
                out.append(f"failure rate: {r['failing']} of {r['meeting_assumptions']} instances at "
                           f"{r['structure']} meeting the assumptions fail")
        for m in self.mutants:
            if not m.refuted:
                out.append(f"mutant {m.name} survived ({m.numeric.verdict})")
        for a in self.ablations:
            if a.verdict == "error":
                out.append(f"ablation of {a.assumption}: error ({a.search.note})")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems

    def certificate(self) -> dict[str, Any]:
        """The certificate record of this run (written by :mod:`verify.records.certificate`)."""
        t = self.theorem
        return {
            "format": CERTIFICATE_FORMAT,
            "theorem": {
                "id": t.id,
                "title": t.title,
                "source": t.source,
                "statement": t.statement,
                "statement_sha256": t.statement_hash(),
                "expect": t.expect,
                "assumptions": [{"name": a.name, "description": a.description, "tolerance": a.reason}
                                for a in t.assumptions],
                "tolerance": {"atol": t.tolerance.atol, "rtol": t.tolerance.rtol, "reason": t.tolerance.reason},
                "conventions": t.conventions,
                "bibtex": t.bibtex,
                "uses": list(t.uses),
                "module": t.module,
                "module_sha256": t.module_sha256,
            },
            "ok": self.ok,
            "problems": self.problems,
            "faces": list(self.faces),
            "seed": self.seed,
            "budget": self.budget.as_dict(),
            "symbolic": self.symbolic.as_dict() if self.symbolic else None,
            "numeric": self.numeric.as_dict() if self.numeric else None,
            "mutants": [m.as_dict() for m in self.mutants],
            "ablations": [a.as_dict() for a in self.ablations],
            "failure_rates": self.rates,
            "libraries": library_versions(),
            "numeric_settings": self.numeric_settings,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }


@in_float64
def run_theorem(
    theorem: Theorem,
    *,
    faces: tuple[str, ...] = FACES,
    budget: Budget = Budget(),
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> TheoremReport:
    """Run the requested faces of one theorem. ``progress(label, instances)`` reports work."""
    report = TheoremReport(theorem, faces, seed, budget, numeric_settings=numeric_settings())

    def do_search(variant: str, **kw: Any) -> SearchResult:
        tick = (lambda n: progress(variant, n)) if progress else None
        res = search(theorem, variant=variant, budget=budget, seed=derive_seed(seed, theorem.id, variant),
                     progress=tick, **kw)
        if res.counterexample is not None and out_dir is not None:
            res.counterexample.save(Path(out_dir))
        return res

    try:
        if "symbolic" in faces:
            report.symbolic = check_derivation(theorem.derivation)
        if "numeric" in faces:
            report.numeric = do_search("claim")
            for k, s in enumerate(theorem.rates_on):
                report.rates.append(failure_rate(theorem, s, instances=budget.instances, batch=budget.batch,
                                                 seed=derive_seed(seed, theorem.id, f"rate:{k}")))
                if progress:
                    progress("failure rate", budget.instances)
        if "mutants" in faces:
            for m in theorem.mutants:
                sym = check_derivation(m.derivation) if m.derivation is not None else None
                report.mutants.append(
                    MutantResult(m.name, m.description, do_search(f"mutant:{m.name}", prop=m.property), sym))
        if "ablate" in faces and theorem.expect == "true":
            for a in theorem.assumptions:
                report.ablations.append(AblationResult(a.name, do_search(f"ablate:{a.name}", drop=a.name)))
    finally:
        release_compiled()  # a whole catalogue would otherwise exhaust the process's memory maps
    return report
