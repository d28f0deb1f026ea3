"""The search face: explicit examples and saved failures, every small structure, then Hypothesis,
then a guided climb.

A search first runs the theorem's explicit examples (``Theorem.examples``) and, when it is given
an example database, the failures it saved there before (Hypothesis's ``explicit`` and ``reuse``
phases); a failing one is the counterexample. Then it spends its budget of batches
(``Budget.examples`` batches of ``Budget.batch`` instances) in three phases:

1. **Coverage**: one batch for each structure of the theorem's small scope
   (:mod:`verify.engine.scope`), smallest first, so no small structure is left out by chance.
2. **Random**: Hypothesis draws the structure (sizes, shapes, choices) and a 32-bit seed for each
   remaining batch; the sampler turns the seed, mixed with the search's own seed, into the batch.
   When a batch holds an instance that meets the enforced assumptions and violates the tolerance,
   Hypothesis shrinks the structure and the seed to the smallest batch that still fails.
3. **Guided**: if nothing failed, a cross-entropy climb over the sampler's uniforms, from the
   instances closest to failing (highest ``|r| / tolerance``), within the enforced assumptions:
   rare violations the random batches pass by.
4. **Top-up** (a claim's search, when nothing failed): further batches over the structures where
   the assumptions held, in turn, until ``Budget.meeting`` instances met them (100,000 for a
   budget sized to the theorem), at most ``Budget.topup_batches`` and ``Budget.topup_work`` (XLA's
   estimate of the batches' work, so a heavy claim gets fewer): the batches above are sized to
   cover the small scope, not to test the claim on many instances.

A failing instance is then shrunk value by value and judged in float64 and at 50 digits (see
:mod:`verify.engine.shrink`). Every batch of every phase depends on ``seed``.

Batches are evaluated by one compiled program per structure for every variant of the theorem
(:class:`BatchStore`): the claim, each mutant and each ablation read the same batches, so a batch
is computed once per run whatever the number of variants, and variants searched with the same
seed share it. A structure's programs are compiled quickly, and optimised once its batches come to
:data:`OPTIMISE_AFTER` of XLA's estimate of their work (:meth:`BatchStore.evaluate`).

A claim expected true is ``confirmed`` only when enough of the instances meeting its assumptions
lie outside every trivial regime the theorem names (``Theorem.trivial``); below
``Theorem.min_nontrivial`` the verdict is ``thin``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping

import jax
import numpy as np
from hypothesis import Phase, Verbosity, given
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from verify.config import in_float64
from verify.engine.evaluate import fused_evaluator, instance_shapes, pools_of
from verify.engine.scope import small_scope
from verify.engine.settings import Conventions, quiet_settings
from verify.engine.shrink import minimise
from verify.errors import TheoremError
from verify.records.certificate import add_to_histogram
from verify.records.counterexample import Counterexample
from verify.records.io import stable_text
from verify.spec import Property, Theorem
from verify.values import Structure


@dataclass(frozen=True)
class Budget:
    """How hard to search: ``examples`` batches of ``batch`` instances each.

    ``examples=None`` (the default) sizes the search to the theorem: one batch for every structure
    of its small scope, a quarter as many again for random structures (at least 4), and never
    fewer than :data:`MIN_EXAMPLES` batches in all (see :meth:`resolved`). The first batches cover
    the small scope; ``guided`` is the fraction of the batches kept for the guided climb when
    nothing failed (0 turns it off). Shrinking is budgeted in evaluations, never in seconds, so a
    search gives the same counterexample on a cold and a warm compilation cache: Hypothesis may
    evaluate at most ``shrink_batches`` new batches while it shrinks the structure and seed, and
    the value shrinker at most ``shrink_examples`` single instances.
    """

    examples: int | None = None
    batch: int = 512
    shrink_examples: int = 200
    shrink_batches: int = 64
    guided: float = 0.2
    #: instances meeting the assumptions that a claim's search reaches when nothing failed, by
    #: further batches over the structures where they were met (``topup_batches`` at most);
    #: None: :data:`MEETING_TARGET` for a search sized to the theorem (``examples`` None), else 0
    meeting: int | None = None
    #: enough batches of 512 for a claim whose assumptions hold on a twentieth of its instances
    #: (the catalogue's rarest holds on about a quarter: tian2018.thm9.update-separable)
    topup_batches: int = 4096
    #: the most work the top-up may spend, in XLA's estimate of its batches (floating-point
    #: operations plus bytes accessed): a claim whose batch is heavy gets fewer top-up batches.
    #: The teacher models' programs run about 1e10 of it a second on one core (the smallest
    #: programs about 2e9, but they reach ``topup_batches`` first), so this is some 25 to 35 s of
    #: a heavy claim's top-up at most (tian2018.thm4.matrix-form: about 35 s);
    #: tian2018.thm2.reformulation reaches 100,000 in about 17 s, where 2.5e9 stopped it at 2,893
    topup_work: float = 2.5e11

    def __post_init__(self) -> None:
        if (self.examples is not None and self.examples < 1) or self.batch < 1:
            raise TheoremError("budget: examples and batch must be positive")
        if self.shrink_examples < 0 or self.shrink_batches < 0:
            raise TheoremError("budget: shrink budgets must be non-negative")
        if not 0.0 <= self.guided < 1.0:
            raise TheoremError("budget: guided is a fraction in [0, 1)")
        if (self.meeting is not None and self.meeting < 0) or self.topup_batches < 0 or not self.topup_work >= 0:
            raise TheoremError("budget: meeting, topup_batches and topup_work must be non-negative")

    def resolved(self, scope: int) -> Budget:
        """This budget with ``examples`` and ``meeting`` made explicit for a small scope of
        ``scope`` structures."""
        meeting = self.meeting if self.meeting is not None else MEETING_TARGET if self.examples is None else 0
        examples = self.examples if self.examples is not None else max(MIN_EXAMPLES, scope + max(4, scope // 4))
        return replace(self, examples=examples, meeting=meeting)

    @property
    def instances(self) -> int:
        return (self.examples or MIN_EXAMPLES) * self.batch

    @property
    def guided_batches(self) -> int:
        """Batches kept for the guided climb: none on budgets under 20 batches (too few to climb)."""
        examples = self.examples or MIN_EXAMPLES
        return int(examples * self.guided) if examples >= 20 else 0

    def as_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, "batch": self.batch, "instances": self.instances,
                "shrink_batches": self.shrink_batches, "shrink_examples": self.shrink_examples,
                "guided": self.guided, "meeting": self.meeting, "topup_batches": self.topup_batches,
                "topup_work": self.topup_work}


#: the fewest batches an automatically sized search spends
MIN_EXAMPLES = 10

#: XLA's estimate of work (floating-point operations plus bytes accessed) that the batches of one
#: structure come to before they are evaluated by optimised programs in place of quick ones
#: (:data:`verify.engine.programs.QUICK_OPTIONS`): about a second of them on one core (five of the
#: catalogue's programs ran 3e9 to 2.3e10 of it a second optimised, about 1e10 for most, and took
#: 1.4 to 2 times as long quick), which is about what optimising costs again in compilation. So a
#: structure searched with a batch or a few (most of them) is compiled once, quickly, and one whose
#: batches are heavy or many (a teacher model's top-up) runs optimised after its first seconds.
#: Deterministic: it depends on the batches before, never on a cache or the clock
OPTIMISE_AFTER = 1e10

#: instances meeting its assumptions that the search of a claim reaches by default (see
#: :attr:`Budget.meeting`): the batches of the budget are sized to cover the small scope, and a
#: claim whose assumptions hold on few of them would otherwise be tested on a few thousand
MEETING_TARGET = 100_000


def mix(seed: int, *parts: Any) -> int:
    """A 32-bit batch seed from the search's seed and the parts that name the batch."""
    # stable text: a structure holding a function names it without its memory address, so the
    # seed is the same in every process
    h = hashlib.sha256(":".join(stable_text(str(p)) for p in (seed, *parts)).encode()).digest()
    return int.from_bytes(h[:4], "little")


class BatchStore:
    """The batches of one theorem, evaluated once for every variant (the claim and its mutants).

    ``props`` maps variant names (``"claim"``, ``"mutant:NAME"``) to properties; ``get(s, key)``
    returns the fused program's outputs for the batch ``(s, key)``, computing them on first use.
    A variant whose property breaks when traced makes the fused program fail; the store then
    evaluates that structure variant by variant, and the broken variant's error is raised when
    it is asked for.
    """

    def __init__(self, theorem: Theorem, props: Mapping[str, Property], batch: int) -> None:
        self.theorem, self.batch = theorem, batch
        self.names = list(props)
        self.props = tuple(props.values())
        self._cache: dict[tuple[Structure, int], dict[str, Any]] = {}
        self._fused = fused_evaluator(self.props, theorem.sample, theorem.assumptions, theorem.trivial,
                                      theorem.tolerance)
        self.evaluated = 0
        self._examples: list[tuple[Structure, dict[str, np.ndarray]]] | None = None
        #: XLA's estimate of the work of the batches evaluated so far, per structure
        self.work: dict[Structure, float] = {}

    def examples(self) -> list[tuple[Structure, dict[str, np.ndarray]]]:
        """The theorem's explicit examples, checked against its sampler (once for every variant)."""
        if self._examples is None:
            self._examples = [example_instance(self.theorem, e.structure, e.values, f"example {k}")
                              for k, e in enumerate(self.theorem.examples)]
        return self._examples

    def on_instances(self, s: Structure, xs: dict[str, np.ndarray]) -> dict[str, Any]:
        """The same outputs as :meth:`get` for given instances (explicit examples, saved failures)."""
        try:
            return self._fused.on_instances(s, xs)
        except Exception:  # noqa: BLE001 - one variant's property broke: evaluate them one by one
            return self._one_by_one(s, xs, given=True)

    def index(self, variant: str) -> int:
        return self.names.index(variant)

    def pools(self, s: Structure, key: int) -> Any:
        return pools_of(self.theorem.sample, s, key, self.batch)

    def get(self, s: Structure, key: int) -> dict[str, Any]:
        hit = self._cache.get((s, key))
        if hit is None:
            hit = self.evaluate(s, self.pools(s, key))
            self._cache[(s, key)] = hit
            self.evaluated += 1
        return hit

    def cost(self, s: Structure, pools: Any) -> float | None:
        """XLA's estimate of the work of one batch at ``s`` (None when it gives none)."""
        try:
            return self._fused.cost(s, pools)
        except Exception:  # noqa: BLE001 - the fused program breaks here: no estimate
            return None

    def evaluate(self, s: Structure, pools: Any) -> dict[str, Any]:
        """The outputs for the batch ``pools`` draws at ``s``: by the quick programs until the batches
        evaluated at ``s`` come to :data:`OPTIMISE_AFTER` of XLA's estimate of their work, then by the
        optimised ones (see :data:`verify.engine.programs.QUICK_OPTIONS`)."""
        return self.finish(self.start(s, pools))

    def start(self, s: Structure, pools: Any) -> tuple:
        """Begin :meth:`evaluate`: the batch is computed while Python goes on, and :meth:`finish`
        gives its outputs (or :meth:`cancel` forgets it). The work is counted here, so batches
        started in turn choose their programs as :meth:`evaluate` in turn would."""
        optimise = self.work.get(s, 0.0) >= OPTIMISE_AFTER
        try:
            pending = self._fused.start(s, pools, optimise)
        except Exception:  # noqa: BLE001 - one variant's property broke: evaluated one by one in finish
            pending = None
        cost = self.cost(s, pools)
        self.work[s] = self.work.get(s, 0.0) + (cost or 0.0)
        return s, pools, optimise, cost, pending

    def finish(self, started: tuple) -> dict[str, Any]:
        s, pools, optimise, _, pending = started
        if pending is not None:
            try:
                return jax.device_get(pending)
            except Exception:  # noqa: BLE001 - it broke while running: evaluate the variants one by one
                pass
        return self._one_by_one(s, pools, optimise=optimise)

    def cancel(self, started: tuple) -> None:
        """Forget a started batch that will not be read: its work no longer counts."""
        s, _, _, cost, _ = started
        self.work[s] -= cost or 0.0

    def _one_by_one(self, s: Structure, pools: Any, given: bool = False, optimise: bool = False) -> dict[str, Any]:
        rows, holds, trivial, errors, first = [], None, None, {}, None
        n = next(iter(pools.values())).shape[0] if given else pools.shape[0]
        for name, prop in zip(self.names, self.props):
            try:
                fused = fused_evaluator((prop,), self.theorem.sample, self.theorem.assumptions, self.theorem.trivial,
                                        self.theorem.tolerance)
                out = fused.on_instances(s, pools) if given else fused(s, pools, optimise)
            except Exception as exc:  # noqa: BLE001 - reported when this variant is searched
                errors[name] = stable_text(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
                first = first or exc
                rows.append((np.full(n, np.inf), np.full(n, np.inf), np.zeros(n, bool), np.full(n, np.inf)))
                continue
            holds, trivial = out["holds"], out["trivial"]
            rows.append((out["ratio"][0], out["absres"][0], out["finite"][0], out["score"][0]))
        if holds is None:  # every variant broke (the sampler or an assumption, or each property): as it broke
            raise first
        return {"ratio": np.stack([r[0] for r in rows]), "absres": np.stack([r[1] for r in rows]),
                "finite": np.stack([r[2] for r in rows]), "score": np.stack([r[3] for r in rows]), "holds": holds, "trivial": trivial, "errors": errors}


@dataclass
class SearchResult:
    """What one search established. ``verdict``: confirmed | thin | refuted | vacuous | error."""

    verdict: str
    variant: str
    enforced: list[str]
    drawn: int = 0
    satisfied: int = 0
    nontrivial: int = 0
    batches: int = 0
    max_residual: float = 0.0
    max_ratio: float = 0.0
    seed: int = 0
    seconds: float = 0.0
    budget: dict[str, Any] = field(default_factory=dict)
    per_assumption: dict[str, int] = field(default_factory=dict)
    per_regime: dict[str, int] = field(default_factory=dict)
    histogram: dict[str, int] = field(default_factory=dict)
    dropped_violated: int | None = None
    counterexample: Counterexample | None = None
    note: str = ""
    #: per structure searched, in the order first searched: instances drawn, meeting the enforced
    #: assumptions, outside every trivial regime among those, and failing
    structures: list[dict[str, Any]] = field(default_factory=list)
    #: the small scope: how it was obtained, how many structures, how many got their batch
    coverage: dict[str, Any] = field(default_factory=dict)
    #: the guided climb: batches spent, the largest |r| / tolerance before and after, what it found
    guided: dict[str, Any] = field(default_factory=dict)
    #: the top-up of a claim's search to ``Budget.meeting`` instances meeting the assumptions:
    #: the target, the batches spent, whether it was reached, XLA's estimate of their work
    #: (empty when it did not run)
    topup: dict[str, Any] = field(default_factory=dict)
    #: the Hypothesis phases the search ran with (see :class:`verify.engine.settings.Conventions`)
    phases: list[str] = field(default_factory=list)
    #: the theorem's explicit examples: how many it has, how many ran, how many failed
    explicit: dict[str, int] = field(default_factory=dict)
    #: the example database: failures saved for this search, replayed, failing again, deleted, saved now
    database: dict[str, Any] = field(default_factory=dict)

    @property
    def margin(self) -> float:
        """Distance to the tolerance, as a fraction of it: 1 - worst |r| / bound."""
        return 1.0 - self.max_ratio

    def as_dict(self) -> dict[str, Any]:
        d = {
            "verdict": self.verdict,
            "variant": self.variant,
            "enforced_assumptions": self.enforced,
            "instances_drawn": self.drawn,
            "instances_satisfying_assumptions": self.satisfied,
            "instances_nontrivial": self.nontrivial,
            "batches": self.batches,
            "largest_residual": self.max_residual,
            "largest_residual_over_tolerance": self.max_ratio,
            "margin_to_tolerance": self.margin,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "budget": self.budget,
            "instances_satisfying_each_assumption": self.per_assumption,
            "instances_in_each_trivial_regime": self.per_regime,
            "residual_over_tolerance_histogram": self.histogram,
            "structures": self.structures,
            "coverage": self.coverage,
            "guided": self.guided,
            "topup": self.topup,
            "phases": self.phases,
            "explicit_examples": self.explicit,
            "example_database": self.database,
        }
        if self.dropped_violated is not None:
            d["instances_violating_dropped_assumption"] = self.dropped_violated
        if self.counterexample is not None:
            d["counterexample"] = self.counterexample.as_dict()
        if self.note:
            d["note"] = self.note
        return d


def example_instance(theorem: Theorem, structure: Mapping[str, Any], values: Mapping[str, Any],
                     what: str) -> tuple[Structure, dict[str, np.ndarray]]:
    """An explicit instance as a batch of one, checked against the theorem: the structure's keys are
    its strategy's (when its small scope names them), the arrays are those the sampler draws at that
    structure, with its shapes, and their values cast to its dtypes without loss of kind."""
    where = f"theorem {theorem.id}: {what}"
    scope, _ = small_scope(theorem)
    if scope and set(structure) != set(scope[0]):
        raise TheoremError(f"{where}: structure keys {sorted(structure)} are not the strategy's {sorted(scope[0])}")
    s = Structure(structure)
    try:
        shapes = instance_shapes(theorem.sample, s)
    except Exception as exc:  # noqa: BLE001 - the user's sampler at the user's structure
        raise TheoremError(f"{where}: the sampler cannot draw at {dict(structure)}: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
    if set(values) != set(shapes):
        raise TheoremError(f"{where}: values name {sorted(values)}, the sampler draws {sorted(shapes)}")
    x = {}
    for k, (shape, dtype) in shapes.items():
        given = np.asarray(values[k])
        if given.dtype == object or not np.can_cast(given.dtype, dtype, "same_kind"):
            raise TheoremError(f"{where}: {k} holds {given.dtype} values, the sampler draws {dtype}")
        if given.shape != shape:
            raise TheoremError(f"{where}: {k} has shape {given.shape}, the sampler draws {shape}")
        x[k] = given.astype(dtype)[None]
    return s, x


def database_key(theorem: Theorem, variant: str, drop: str | None) -> bytes:
    """The example-database key of one search: the theorem, what it claims, the variant searched."""
    payload = json.dumps([theorem.id, theorem.statement_hash(), variant, drop])
    return b"dlverify:" + hashlib.sha256(payload.encode()).hexdigest().encode()


def _encode(structure: Mapping[str, Any], instance: Mapping[str, np.ndarray]) -> bytes | None:
    """A failure as the database keeps it (JSON; float64 values round-trip exactly), or None when
    its structure is not JSON."""
    try:
        return json.dumps({"structure": structure, "values": {k: np.asarray(v).tolist() for k, v in instance.items()}},
                          sort_keys=True).encode()
    except (TypeError, ValueError):
        return None


def _skey(structure: Mapping[str, Any]) -> str:
    return stable_text(json.dumps(structure, sort_keys=True, default=repr))


def _count_structure(rows: list[dict[str, Any]], s: Structure, drawn: int, meeting: int, nontrivial: int,
                     failing: int, best: float) -> None:
    key = s.as_json()
    for row in rows:
        if row["structure"] == key:
            break
    else:
        row = {"structure": key, "drawn": 0, "meeting_assumptions": 0, "nontrivial": 0, "failing": 0,
               "best_ratio": 0.0}
        rows.append(row)
    row["drawn"] += drawn
    row["meeting_assumptions"] += meeting
    row["nontrivial"] += nontrivial
    row["failing"] += failing
    row["best_ratio"] = max(row["best_ratio"], best)


class _Violation(Exception):
    """Raised inside the Hypothesis test body when a batch holds a failing instance."""


class _Stop(Exception):
    """The budget of batches is spent."""


@in_float64
def search(
    theorem: Theorem,
    *,
    prop: Property | None = None,
    variant: str = "claim",
    drop: str | None = None,
    budget: Budget = Budget(),
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    store: BatchStore | None = None,
    conventions: Conventions = Conventions(),
) -> SearchResult:
    """Search for an instance that meets every assumption (but ``drop``) and fails the variant.

    ``store`` holds the theorem's batches across its variants (the runner passes one); without it
    the search evaluates ``prop`` (default: the claim's property) on its own. ``conventions``:
    the Hypothesis phases, verbosity and example database it honours (default: the command
    line's, every phase but ``reuse``, quiet, no database)."""
    if store is None or variant not in store.names:
        store = BatchStore(theorem, {variant: prop or theorem.property}, budget.batch)
    prop = store.props[store.index(variant)]
    v = store.index(variant)
    names = [a.name for a in theorem.assumptions]
    if drop is not None:
        theorem.assumption(drop)  # raises a clear error for an unknown name
    enforce = [i for i, n in enumerate(names) if n != drop]
    drop_idx = names.index(drop) if drop is not None else None

    scope, how = small_scope(theorem)
    budget = budget.resolved(len(scope))
    result = SearchResult("confirmed", variant, [names[i] for i in enforce], seed=seed, budget=budget.as_dict())
    result.phases = [p.name for p in conventions.phases]
    result.per_assumption = {n: 0 for n in names}
    result.per_regime = {r.name: 0 for r in theorem.trivial}
    if drop_idx is not None:
        result.dropped_violated = 0
    t0 = time.perf_counter()
    state = {"phase": "coverage", "shrink_batches": 0, "refused": 0, "spent": 0}
    failing: list[tuple[Structure, int, int]] = []
    closest: dict[str, float] = {}
    conv, db = conventions, conventions.database
    label = f"{theorem.id} {variant}" + (f" without {drop}" if drop else "")
    # explicit examples are checked before anything runs: a malformed one is the theorem's error
    explicit = store.examples() if conv.has(Phase.explicit) else []
    result.explicit = {"examples": len(theorem.examples), "ran": 0, "failing": 0}
    dbkey = database_key(theorem, variant, drop) if db is not None else None
    if db is not None:
        result.database = {"replayed": 0, "failing": 0, "deleted": 0, "saved": False}
    given_failure: tuple[Structure, dict[str, np.ndarray], str] | None = None

    def masks(out: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if variant in out.get("errors", {}):
            raise TheoremError(out["errors"][variant])
        holds = out["holds"]
        ok = holds[:, enforce].all(axis=1) if enforce else np.ones(holds.shape[0], bool)
        ratio = out["ratio"][v]
        bad = ok & ~(ratio <= 1.0)
        if drop_idx is not None:  # a witness for the dropped assumption must violate it
            bad &= ~holds[:, drop_idx]
        nontrivial = ok & ~out["trivial"].any(axis=1) if out["trivial"].size else ok
        return ok, bad, nontrivial

    def account(s: Structure, out: dict[str, Any], ok: np.ndarray, bad: np.ndarray, nontrivial: np.ndarray,
                batch: bool = True) -> None:
        holds, ratio, absres = out["holds"], out["ratio"][v], out["absres"][v]
        result.batches += int(batch)
        result.drawn += len(ok)
        result.satisfied += int(ok.sum())
        result.nontrivial += int(nontrivial.sum())
        for i, n in enumerate(names):
            result.per_assumption[n] += int(holds[:, i].sum())
        for i, r in enumerate(theorem.trivial):
            result.per_regime[r.name] += int((ok & out["trivial"][:, i]).sum())
        if drop_idx is not None:
            result.dropped_violated += int((ok & ~holds[:, drop_idx]).sum())
        good = ok & np.isfinite(ratio)
        best = float(ratio[good].max()) if good.any() else 0.0
        _count_structure(result.structures, s, len(ok), int(ok.sum()), int(nontrivial.sum()), int(bad.sum()), best)
        score = out["score"][v]
        if good.any():  # how close this structure came to failing, signed (for the guided climb)
            name = _skey(s.as_json())
            closest[name] = max(closest.get(name, -np.inf), float(score[good].max()))
        add_to_histogram(result.histogram, ratio[good])
        if good.any():
            result.max_ratio = max(result.max_ratio, float(ratio[good].max()))
            result.max_residual = max(result.max_residual, float(absres[good].max()))
        if progress:
            progress(len(ok))

    def worst(ratio: np.ndarray, bad: np.ndarray) -> int:
        return int(np.argmax(np.where(bad, np.nan_to_num(ratio, posinf=1e308), -1.0)))

    def fails_given(s: Structure, x: dict[str, np.ndarray]) -> bool:
        """Run one given instance (a batch of one): counted as drawn, never as a batch."""
        out = store.on_instances(s, x)
        ok, bad, nontrivial = masks(out)
        account(s, out, ok, bad, nontrivial, batch=False)
        return bool(bad[0])

    try:
        # ---------------------------------------------------------------- 0. explicit, then reuse
        for s, x in explicit:
            result.explicit["ran"] += 1
            if fails_given(s, x):
                result.explicit["failing"] += 1
                given_failure = (s, {n: a[0] for n, a in x.items()}, "explicit example")
                break
        if explicit:
            conv.say(f"{label}: explicit phase: {result.explicit['ran']} of {len(explicit)} examples ran, "
                     f"{result.explicit['failing']} failing")
        if given_failure is None and db is not None and conv.has(Phase.reuse):
            for blob in list(db.fetch(dbkey)):
                try:
                    saved = json.loads(blob)
                    s, x = example_instance(theorem, saved["structure"], saved["values"], "a saved failure")
                except (TheoremError, ValueError, KeyError, TypeError):  # stale: the sampler changed
                    db.delete(dbkey, blob)
                    result.database["deleted"] += 1
                    continue
                result.database["replayed"] += 1
                if fails_given(s, x):
                    result.database["failing"] += 1
                    given_failure = (s, {n: a[0] for n, a in x.items()}, "example database")
                    break
                db.delete(dbkey, blob)  # no longer fails (as Hypothesis drops such entries)
                result.database["deleted"] += 1
            conv.say(f"{label}: reuse phase: {result.database['replayed']} saved failures replayed, "
                     f"{result.database['failing']} failing")
        generate = given_failure is None and conv.has(Phase.generate)
        target = generate and conv.has(Phase.target)
        # ---------------------------------------------------------------- 1. coverage
        # the whole small scope when the budget leaves at least a quarter of it (and 4 batches)
        # beyond; otherwise half the budget, spread evenly over the scope from its smallest
        # structure to its largest, and random structures get the other half
        if not generate:
            chosen = []
        elif not scope or budget.examples >= len(scope) + max(4, len(scope) // 4):
            chosen = scope
        else:
            room = budget.examples // 2
            picks = sorted({round(k * (len(scope) - 1) / max(room - 1, 1)) for k in range(room)}) if room else []
            chosen = [scope[k] for k in picks]
        covered = 0
        for structure in chosen:
            s = Structure(structure)
            key = mix(seed, "coverage", s.as_json())
            out = store.get(s, key)
            ok, bad, nontrivial = masks(out)
            account(s, out, ok, bad, nontrivial)
            covered += 1
            if bad.any():
                failing.append((s, key, worst(out["ratio"][v], bad)))
                conv.say(f"{label}: failing batch at {s.as_json()} (coverage)", Verbosity.debug)
                break
        result.coverage = {"how": how, "structures": len(scope), "covered": covered}
        if generate:
            conv.say(f"{label}: coverage: {covered} of {len(scope)} structures of the small scope"
                     + (", failing" if failing else ""))

        # ---------------------------------------------------------------- 2. random, by Hypothesis
        remaining = budget.examples - covered - (budget.guided_batches if not failing and target else 0)
        known_failing: set[tuple[Structure, int]] = set()

        def random_phase(batches: int, salt: int) -> None:
            state["phase"], state["spent"] = "random", 0

            def check_batch(structure: dict[str, Any], key_seed: int) -> None:
                s = Structure(structure)
                key = mix(seed, salt, key_seed)
                shrinking = state["phase"] == "shrink"
                if shrinking and (s, key) not in known_failing:
                    if state["shrink_batches"] >= budget.shrink_batches:
                        state["refused"] += 1
                        return  # the shrink budget is spent: report what we have (deterministic)
                    state["shrink_batches"] += 1
                if not shrinking and state["spent"] >= batches:
                    return  # Hypothesis drew more examples than the budget: they are not evaluated
                out = store.get(s, key)
                ok, bad, nontrivial = masks(out)
                if not shrinking:
                    state["spent"] += 1
                    account(s, out, ok, bad, nontrivial)
                if bad.any():
                    state["phase"] = "shrink"
                    known_failing.add((s, key))
                    failing.append((s, key, worst(out["ratio"][v], bad)))
                    conv.say(f"{label}: failing batch at {s.as_json()} ({state['phase']})", Verbosity.debug)
                    raise _Violation

            test = given(structure=theorem.structure, key_seed=st.integers(0, 2**32 - 1))(check_batch)
            test = hypothesis_seed(mix(seed, salt))(quiet_settings(batches, conv.has(Phase.shrink))(test))
            try:
                test()
            except _Violation:
                pass
            conv.say(f"{label}: generate phase: {state['spent']} random batches"
                     + (f", failing; {state['shrink_batches']} shrink batches" if failing else ""))

        if generate and not failing and remaining > 0:
            random_phase(remaining, 0)

        # ---------------------------------------------------------------- 3. guided
        guided_found = None
        if target and not failing and budget.guided_batches > 0:
            if result.satisfied > 0:
                guided_found = _guided(theorem, store, v, result, masks, budget, seed, progress, account, closest)
                conv.say(f"{label}: target phase (guided climb): {result.guided.get('batches', 0)} batches"
                         + (", failing" if guided_found else ""))
            else:  # nothing to climb from: the batches kept for the climb are random ones
                random_phase(budget.guided_batches, 1)

        # ---------------------------------------------------------------- 4. top-up
        # a claim's search, when nothing failed, goes on over the structures where its assumptions
        # were met, in turn, until budget.meeting instances met them (within topup_batches and
        # topup_work)
        if (generate and not failing and guided_found is None and variant == "claim" and drop is None
                and result.satisfied < budget.meeting):
            state["phase"] = "top-up"
            found = _topup(store, result, budget, seed, masks, account, lambda out, bad: worst(out["ratio"][v], bad))
            if found is not None:
                failing.append(found)
            conv.say(f"{label}: top-up: {result.topup['batches']} batches, {result.satisfied:,} instances meeting the "
                     f"assumptions (target {budget.meeting:,})" + (", failing" if found else ""))
    except Exception as exc:  # noqa: BLE001 - a user's property or sampler broke
        result.verdict, result.note = "error", stable_text(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        result.seconds = time.perf_counter() - t0
        return result

    x0 = provenance = None
    if given_failure is not None:
        s, x0, found = given_failure
        first_s = s
        provenance = {"key_seed": -1, "index": -1}
    elif failing:
        s, key, idx = failing[-1]  # Hypothesis replays the minimal failing example last
        first_s = failing[0][0]
        provenance = {"key_seed": key, "index": idx}
    elif guided_found is not None:
        s, x0, first_s = guided_found
        provenance = {"key_seed": -1, "index": -1}
    if provenance is not None:
        result.counterexample = minimise(theorem, prop, variant, enforce, s, provenance["key_seed"],
                                         provenance["index"], budget, first_s, seed, x0=x0,
                                         shrink=conv.has(Phase.shrink))
        cx = result.counterexample
        if given_failure is not None:
            cx.shrink["found_by"] = found
        else:
            cx.shrink["found_by"] = "guided climb" if x0 is not None else state["phase"] if state["phase"] != "shrink" \
                else "random batches"
        cx.shrink["structure_batches"] = state["shrink_batches"]
        cx.shrink["structure_budget"] = budget.shrink_batches
        cx.shrink["stopped_early"] = bool(state["refused"]) or bool(cx.shrink.get("values_stopped_early"))
        conv.say(f"{label}: shrink phase: {cx.shrink['method']}, {state['shrink_batches']} structure batches, "
                 f"{cx.shrink['value_evaluations']} value evaluations" if conv.has(Phase.shrink)
                 else f"{label}: shrink phase off: the counterexample is reported as found")
        if db is not None:  # the shrunk failure, replayed first by the next search (reuse phase)
            blob = _encode(cx.structure, cx.instance)
            if blob is not None:
                db.save(dbkey, blob)
                result.database["saved"] = True
    judge(result, theorem, variant, drop)
    result.seconds = time.perf_counter() - t0
    return result


def judge(result: SearchResult, theorem: Theorem, variant: str, drop: str | None) -> None:
    """Set the verdict (and its note) of a finished search from its counts and its shrunk
    counterexample, if any: the one rule for a search here and for a hunt (:mod:`verify.hunt`)."""
    cx = result.counterexample
    if cx is not None:
        if not cx.finite and drop is not None and not cx.assumptions_held.get(drop, True):
            # without the dropped assumption the claim is not even defined (0/0, log 0, ...):
            # that shows the assumption necessary, and the witness says why
            result.verdict = "refuted"
            result.note = f"the claim is undefined (non-finite) without {drop}"
        elif not cx.finite:
            result.verdict = "error"
            result.note = "non-finite residual (NaN/inf) on an instance meeting the assumptions"
        elif cx.refutes:
            result.verdict = "refuted"
            if not cx.real:
                result.note = f"established in float64 only: {cx.established_note}"
        else:
            result.verdict = "error"
            result.note = (
                "float64 violation not reproduced at 50 digits: the tolerance is tighter than "
                "the rounding of this property"
            )
    elif result.satisfied == 0:
        result.verdict = "vacuous"
        result.note = "no drawn instance satisfied the enforced assumptions: nothing was tested"
    elif theorem.trivial and variant == "claim" and drop is None and result.nontrivial < theorem.min_nontrivial:
        result.verdict = "thin"
        busiest = max(result.per_regime, key=result.per_regime.get)
        result.note = (f"only {result.nontrivial} instances meeting the assumptions lie outside every trivial regime "
                       f"(needed {theorem.min_nontrivial}); {result.per_regime[busiest]} were {busiest}")

#: the guided climb: a population of the batch size, this fraction kept as elites each generation
ELITE = 0.1


def _topup(store: BatchStore, result: SearchResult, budget: Budget, seed: int, masks: Any, account: Any,
           worst: Any) -> tuple[Structure, int, int] | None:
    """Further batches over the structures where the claim's assumptions were met, in turn, until
    ``budget.meeting`` instances met them, within ``budget.topup_batches`` batches and
    ``budget.topup_work`` of XLA's estimate of their work; records ``result.topup``. Returns the
    failing batch (structure, key, index of its worst instance) if one fails.

    Each batch is started before the one before it is read, so that JAX computes it while Python
    counts the other: patel2016.switch-relu's search (182 of its 196 batches of 512 in the top-up)
    took 0.34 to 0.38 s in place of 0.43 to 0.47 s, koo.backprop.quadratic-form's 0.49 to 0.53 s in
    place of 0.67 to 0.70 s (2 cores, warm). The batch started after the last one read is
    cancelled: what is counted is what reading the batches one at a time counts."""
    rows = [Structure(r["structure"]) for r in result.structures if r["meeting_assumptions"] > 0]

    def planned() -> Iterator[tuple[Structure, int, Any, float | None]]:
        work = 0.0
        for spent in range(budget.topup_batches if rows else 0):
            s = rows[spent % len(rows)]
            key = mix(seed, "top-up", s.as_json(), spent // len(rows))
            pools = store.pools(s, key)
            cost = store.cost(s, pools)
            if cost is not None and work + cost > budget.topup_work:
                return
            work += cost or 0.0
            yield s, key, pools, cost

    spent, work, known, found = 0, 0.0, True, None
    plan = planned()
    upcoming = next(plan, None) if result.satisfied < budget.meeting else None
    started = store.start(upcoming[0], upcoming[2]) if upcoming else None
    while upcoming is not None:
        (s, key, _, cost), now = upcoming, started
        upcoming = next(plan, None)
        started = store.start(upcoming[0], upcoming[2]) if upcoming else None
        out = store.finish(now)  # not kept: no other variant reads it
        store.evaluated += 1
        spent += 1
        known = known and cost is not None
        work += cost or 0.0
        ok, bad, nontrivial = masks(out)
        account(s, out, ok, bad, nontrivial)
        if bad.any():
            found = (s, key, worst(out, bad))
            break
        if result.satisfied >= budget.meeting:
            break
    if started is not None:
        store.cancel(started)
    result.topup = {"target": budget.meeting, "batches": spent, "reached": result.satisfied >= budget.meeting,
                    "work": work if known else None}
    return found


def _guided(theorem: Theorem, store: BatchStore, v: int, result: SearchResult, masks: Any, budget: Budget,
            seed: int, progress: Any, account: Any,
            closest: dict[str, float]) -> tuple[Structure, dict[str, np.ndarray], Structure] | None:
    """A cross-entropy climb of |r| / tolerance (the signed slack for an inequality) over the
    sampler's uniforms, from the best instances of the searched structures that came closest
    (``closest``: structure -> best score), within the enforced assumptions. Returns (structure, the failing
    instance, the structure it started from) when it finds a violation."""
    import jax.numpy as jnp

    rows = [r for r in result.structures if r["meeting_assumptions"] > 0]
    if not rows:
        return None
    before = result.max_ratio
    rng = np.random.default_rng(mix(seed, "guided"))
    spent = 0
    per_structure = max(1, budget.guided_batches // min(len(rows), 4))
    # climb on the structures whose best instances came closest (by the searched batches)
    tried = sorted(rows, key=lambda r: -closest.get(_skey(r["structure"]), -np.inf))[:4]
    found = None
    for row in tried:
        s = Structure(row["structure"])
        key = mix(seed, "guided", s.as_json())
        pools = np.asarray(store.pools(s, key))
        n, width = pools.shape
        for generation in range(per_structure):
            if spent >= budget.guided_batches:
                break
            out = store.evaluate(s, jnp.asarray(pools))
            spent += 1
            ok, bad, nontrivial = masks(out)
            account(s, out, ok, bad, nontrivial)
            # rank by the score (signed slack for an inequality): the ratio is flat where it holds
            ratio = np.where(ok, np.nan_to_num(out["score"][v], posinf=1e308), -np.inf)
            if bad.any():
                i = int(np.argmax(np.where(bad, ratio, -np.inf)))
                x = {k: np.asarray(val)[0] for k, val in _instances(theorem, s, pools[i:i + 1]).items()}
                found = (s, x, s)
                break
            k = max(1, int(ELITE * n))
            elite = pools[np.argsort(-ratio)[:k]]
            if not np.isfinite(ratio).any():
                break
            # resample around the elites: each child perturbs one elite, with a shrinking step
            step = 0.25 * 0.7 ** generation
            parents = elite[rng.integers(0, k, size=n)]
            children = parents + step * rng.standard_normal(parents.shape)
            pools = np.clip(np.where(rng.random(parents.shape) < 0.5, children, parents), 1e-12, 1.0)
            pools[:k] = elite  # elitism: the best so far stay in the population
        if found:
            break
    result.guided = {"batches": spent, "best_ratio_before": before, "best_ratio_after": result.max_ratio,
                     "found": found is not None}
    return found


def _instances(theorem: Theorem, s: Structure, pools: np.ndarray) -> dict[str, np.ndarray]:
    import jax

    from verify.backends import backend
    from verify.engine.evaluate import _sample_all

    with backend("jax"):
        return jax.tree_util.tree_map(np.asarray, jax.jit(lambda p: _sample_all(theorem.sample, s, p))(pools))


