"""Running a theorem through its faces and deciding whether the run passed.

A report passes when the claim came out as expected and every mutant was refuted by at least one
face. For a theorem: its derivation (if any) reaches the claim (``proved``, or ``cross-checked``
when a link is only numeric) and the claim agrees with the property on drawn instances, and the
numeric face ``confirmed`` it; for a stated non-theorem: the numeric face refuted it and no
derivation proved it. Ablation results are findings, not pass/fail.

:meth:`TheoremReport.trust` says what was established, one row per claim, in the classes every
output uses: ``proved`` (with the scope the engine computed and the rules used), ``cross-checked``,
``tested`` (on N instances over the listed structures, with the small scope's coverage and the
non-trivial count), ``thin`` (tested, but too few instances outside the trivial regimes),
``refuted`` (with a witness), ``measured`` (a failure rate), ``assumed`` (an assumption, with what
ablation showed), and ``unconfirmed``, ``vacuous``, ``error`` where nothing was established.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from verify.config import in_float64, numeric_settings
from verify.engine.crosscheck import CrossCheck, crosscheck, narrowed
from verify.engine.decided import Decided, decide_claim, replay_model
from verify.engine import programs
from verify.engine.evaluate import release_compiled
from verify.engine.rates import failure_rate
from verify.engine.search import BatchStore, Budget, SearchResult, search
from verify.engine.settings import Conventions
from verify.records.certificate import FORMAT as CERTIFICATE_FORMAT
from verify.records.certificate import library_versions
from verify.spec import Theorem
from verify.symbolic import Scope, SymbolicResult, check_derivation

FACES = ("symbolic", "numeric", "mutants", "ablate", "exact")
#: what :func:`run_theorem` runs unless told: every face but ``exact`` (the SMT solver, which the
#: command line adds unless ``--no-exact``; it needs the symbolic face and the ``exact`` extra)
DEFAULT_FACES = ("symbolic", "numeric", "mutants", "ablate")


def _witness_scope(sym: SymbolicResult) -> Scope:
    """Where a mutant's claim is compared with its property: its proved scope, or every size."""
    return sym.scope if sym.verdict in ("proved", "cross-checked") else Scope.every()


def _checked(theorem: Theorem, role: str, derivation: Any) -> SymbolicResult:
    """``check_derivation``, kept on disk for a catalogue theorem (:func:`verify.engine.programs.kept`)."""
    return programs.kept(programs.theorem_name(theorem, role), lambda: check_derivation(derivation))


def _decided(theorem: Theorem, k: int, derivation: Any, structures: list[Any]) -> Decided:
    """``decide_claim`` at the sizes of ``structures``, kept on disk for a catalogue theorem with
    the solver's version: what z3 decided of the very claim at those sizes (the sizes it did not
    decide within its time are not tried again until the sources or the sizes change)."""
    from verify.exact import decide as exact

    name = programs.theorem_name(theorem, f"exact:{k}:{structures!r}:{exact.solver_version()}")
    if exact.z3 is None:
        name = None  # nothing to keep: the face says it was skipped
    return programs.kept(name, lambda: decide_claim(derivation, structures))


def _crosschecked(theorem: Theorem, role: str, derivation: Any, scope: Scope, *, structures: list[Any], seed: int,
                  store: BatchStore, prop: Any = None) -> CrossCheck:
    """:func:`~verify.engine.crosscheck.crosscheck`, kept on disk for a catalogue theorem under
    everything it reads: the sources (which fix the claim, the property and the scope's rules),
    the derivation's role, the scope, the seed, the batch size and the structures compared (those
    the search drew, fixed by the same). A warm run reads what the very same comparison found."""
    name = programs.theorem_name(
        theorem, f"crosscheck:{role}:{scope!r}:{seed}:{store.batch}:{[dict(s) for s in structures]!r}")
    return programs.kept(name, lambda: crosscheck(theorem, derivation, scope, prop=prop, structures=structures,
                                                  seed=seed, store=store))


def derive_seed(seed: int, *parts: str) -> int:
    """An independent, reproducible 32-bit seed for one search of one run."""
    h = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(h[:4], "little")


@dataclass
class ClaimResult:
    """One derivation's verdict, and whether its claim is the statement the property tests."""

    symbolic: SymbolicResult
    crosscheck: CrossCheck | None = None
    #: the claim decided exactly at explicit sizes (z3), when it agrees with the property
    decided: Decided | None = None

    @property
    def verdict(self) -> str:
        """The symbolic verdict as established: a claim that disagrees with the property, or that was
        never compared with it, proves nothing about the theorem."""
        v = self.symbolic.verdict
        if v in ("proved", "cross-checked") and (self.crosscheck is None or self.crosscheck.status != "agrees"):
            return "unconfirmed"
        return v

    @property
    def gap(self) -> str:
        if self.crosscheck is not None and self.crosscheck.status != "agrees":
            return self.crosscheck.detail
        return self.symbolic.gap

    def as_dict(self) -> dict[str, Any]:
        d = self.symbolic.as_dict()
        d["established"] = self.verdict
        d["crosscheck"] = self.crosscheck.as_dict() if self.crosscheck is not None else None
        d["decided"] = self.decided.as_dict() if self.decided is not None else None
        return d


@dataclass
class SymbolicFace:
    """Every claim a theorem's derivations state; ``verdict`` is the weakest of them."""

    claims: list[ClaimResult] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        vs = [c.verdict for c in self.claims]
        if not vs:
            return "none"
        for v in ("refuted", "unconfirmed", "cross-checked"):
            if v in vs:
                return v
        return "proved"

    def summary(self) -> str:
        """``proved (all sizes (D))``, or per component when there are several claims."""
        if not self.claims:
            return "-"
        def one(c: ClaimResult) -> str:
            text = f"{c.verdict} ({c.symbolic.scope})" if c.verdict in ("proved", "cross-checked") else c.verdict
            if c.decided is not None and c.decided.status == "decided":
                text += f", decided at {len(c.decided.sizes)} size{'s' if len(c.decided.sizes) != 1 else ''}"
            elif c.decided is not None and c.decided.status == "refuted":
                text += ", refuted exactly"
            return text
        if len(self.claims) == 1:
            return one(self.claims[0])
        return "; ".join(f"{c.symbolic.component}: {one(c)}" for c in self.claims)


@dataclass
class MutantResult:
    name: str
    description: str
    numeric: SearchResult
    symbolic: SymbolicResult | None = None
    crosscheck: CrossCheck | None = None

    @property
    def refuted_symbolically(self) -> bool:
        """An exact witness against the mutant's claim, and that claim is the mutant's property."""
        return (self.symbolic is not None and self.symbolic.verdict == "refuted"
                and self.crosscheck is not None and self.crosscheck.status == "agrees")

    @property
    def refuted(self) -> bool:
        return self.numeric.verdict == "refuted" or self.refuted_symbolically

    def as_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "description": self.description, "refuted": self.refuted,
             "numeric": self.numeric.as_dict()}
        if self.symbolic is not None:
            d["symbolic"] = self.symbolic.as_dict()
        if self.crosscheck is not None:
            d["crosscheck"] = self.crosscheck.as_dict()
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
    symbolic: SymbolicFace | None = None
    numeric: SearchResult | None = None
    mutants: list[MutantResult] = field(default_factory=list)
    ablations: list[AblationResult] = field(default_factory=list)
    rates: list[dict[str, Any]] = field(default_factory=list)
    numeric_settings: dict[str, Any] = field(default_factory=dict)
    batches_evaluated: int = 0

    @property
    def problems(self) -> list[str]:
        out: list[str] = []
        expect_true = self.theorem.expect == "true"
        for c in self.symbolic.claims if self.symbolic is not None else ():
            v, name = c.verdict, c.symbolic.component or "the claim"
            if c.crosscheck is not None and c.crosscheck.status == "disagrees":
                out.append(f"symbolic ({name}): {c.crosscheck.detail}")
            elif expect_true and v not in ("proved", "cross-checked"):
                out.append(f"symbolic ({name}): {v}" + (f": {c.gap}" if c.gap else ""))
            if not expect_true and v in ("proved", "cross-checked"):
                out.append(f"symbolic ({name}): a stated non-theorem was proved")
            dec = c.decided
            if expect_true and dec is not None and dec.status == "refuted":
                out.append(f"exact ({name}): the solver found the claim false at {dec.counterexample['size']}")
            if not expect_true and dec is not None and dec.status == "decided":
                out.append(f"exact ({name}): a stated non-theorem was decided valid at {dec.sizes}")
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

    def trust(self) -> list[dict[str, Any]]:
        """What this run established, one row per claim (see the module docstring)."""
        rows: list[dict[str, Any]] = []
        for c in self.symbolic.claims if self.symbolic is not None else ():
            sym, cc = c.symbolic, c.crosscheck
            row: dict[str, Any] = {"claim": sym.claim, "face": "symbolic", "class": c.verdict,
                                   "component": sym.component}
            if c.verdict in ("proved", "cross-checked"):
                row |= {"scope": str(sym.scope), "all_sizes": sym.scope.all_sizes, "rules": sym.rules,
                        "links": len(sym.steps)}
            if c.verdict == "refuted" and sym.witness:
                row["witness"] = sym.witness
            if c.gap and c.verdict not in ("proved", "cross-checked"):
                row["gap"] = c.gap
            if cc is not None:
                row |= {"crosscheck": cc.status, "compared_instances": cc.compared,
                        "compared_structures": len(cc.structures)}
            rows.append(row)
            dec = c.decided
            if dec is not None and dec.status in ("decided", "refuted"):
                rows.append({"claim": sym.claim, "face": "exact", "component": sym.component,
                             "class": dec.status, "sizes": dec.sizes, "solver": dec.solver,
                             "counterexample": dec.counterexample, "note": dec.note})
        num = self.numeric
        if num is not None:
            klass = {"confirmed": "tested"}.get(num.verdict, num.verdict)
            row = {"claim": "the statement (every component of the property)", "face": "numeric", "class": klass,
                   "instances": num.satisfied, "drawn": num.drawn,
                   "structures": [r["structure"] for r in num.structures],
                   "per_structure": num.structures, "coverage": num.coverage}
            if self.theorem.trivial:
                row |= {"nontrivial": num.nontrivial, "regimes": [g.name for g in self.theorem.trivial],
                        "min_nontrivial": self.theorem.min_nontrivial}
            if num.note and klass not in ("tested", "refuted"):
                row["note"] = num.note
            if num.counterexample is not None and num.verdict == "refuted":
                row["witness"] = {"structure": num.counterexample.structure,
                                  "established": num.counterexample.established,
                                  "certification": num.counterexample.certification.get("status", "not tried"),
                                  "certified_by": num.counterexample.certification.get("method", "")}
            rows.append(row)
        for r in self.rates:
            rows.append({"claim": f"failure rate at {r['structure']}", "face": "numeric", "class": "measured",
                         "rate": r["rate"], "interval95": r["interval95"], "instances": r["meeting_assumptions"]})
        ablated = {a.assumption: a.verdict for a in self.ablations}
        for a in self.theorem.assumptions:
            rows.append({"claim": f"assumption {a.name}: {a.description}", "face": "assumption", "class": "assumed",
                         "ablation": ablated.get(a.name, "not run")})
        return rows

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
            "symbolic": {"verdict": self.symbolic.verdict, "summary": self.symbolic.summary(),
                         "claims": [c.as_dict() for c in self.symbolic.claims]} if self.symbolic else None,
            "trust": self.trust(),
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
    faces: tuple[str, ...] = DEFAULT_FACES,
    budget: Budget = Budget(),
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: Callable[[str, int], None] | None = None,
    conventions: Conventions = Conventions(),
) -> TheoremReport:
    """Run the requested faces of one theorem. ``progress(label, instances)`` reports work;
    ``conventions`` are the Hypothesis conventions every search honours (phases, verbosity,
    example database; the pytest plugin passes the active settings profile's)."""
    report = TheoremReport(theorem, faces, seed, budget, numeric_settings=numeric_settings())

    # one store of batches for every variant: the claim, each mutant and each ablation read the
    # same batches (one search seed for the theorem), so a batch is evaluated once
    props = {"claim": theorem.property} | {f"mutant:{m.name}": m.property for m in theorem.mutants}
    store = BatchStore(theorem, props, budget.batch)
    search_seed = derive_seed(seed, theorem.id)

    def do_search(variant: str, **kw: Any) -> SearchResult:
        tick = (lambda n: progress(variant, n)) if progress else None
        res = search(theorem, variant="claim" if variant.startswith("ablate:") else variant,
                     budget=budget, seed=search_seed, progress=tick, store=store,
                     conventions=conventions, **kw)
        res.variant = variant
        if res.counterexample is not None:
            res.counterexample.variant = variant
            if out_dir is not None:
                res.counterexample.save(Path(out_dir))
        return res

    try:
        if "symbolic" in faces:
            report.symbolic = SymbolicFace([ClaimResult(_checked(theorem, f"derivation:{k}", d))
                                            for k, d in enumerate(theorem.derivations)])
        if "numeric" in faces:
            report.numeric = do_search("claim")
            for k, s in enumerate(theorem.rates_on):
                report.rates.append(failure_rate(theorem, s, instances=budget.instances, batch=budget.batch,
                                                 seed=derive_seed(seed, theorem.id, f"rate:{k}")))
                if progress:
                    progress("failure rate", budget.instances)
        if report.symbolic is not None:
            structures = [r["structure"] for r in report.numeric.structures] if report.numeric else []
            for k, (d, c) in enumerate(zip(theorem.derivations, report.symbolic.claims)):
                c.crosscheck = _crosschecked(theorem, f"derivation:{k}", d, _witness_scope(c.symbolic),
                                             structures=structures,
                                             seed=derive_seed(seed, theorem.id, f"crosscheck:{k}"), store=store)
                c.symbolic.scope = narrowed(c.symbolic.scope, d, c.crosscheck)
                if "exact" in faces and c.crosscheck.status == "agrees":  # only then is it the statement tested
                    c.decided = _decided(theorem, k, d, structures)
                    if c.decided.status == "refuted":  # the exact refutation, replayed on the property
                        cx = c.decided.counterexample
                        cx["numeric"] = replay_model(theorem, d, cx["structure"], cx["model"])
        if "mutants" in faces:
            for m in theorem.mutants:
                res = do_search(f"mutant:{m.name}")
                sym = cc = None
                if m.derivation is not None:
                    sym = _checked(theorem, f"mutant:{m.name}", m.derivation)
                    cc = _crosschecked(theorem, f"mutant:{m.name}", m.derivation, _witness_scope(sym), prop=m.property,
                                       structures=[r["structure"] for r in res.structures],
                                       seed=derive_seed(seed, theorem.id, f"crosscheck:{m.name}"), store=store)
                report.mutants.append(MutantResult(m.name, m.description, res, sym, cc))
        if "ablate" in faces and theorem.expect == "true":
            for a in theorem.assumptions:
                report.ablations.append(AblationResult(a.name, do_search(f"ablate:{a.name}", drop=a.name)))
        report.batches_evaluated = store.evaluated
    finally:
        release_compiled()  # a whole catalogue would otherwise exhaust the process's memory maps
    return report
