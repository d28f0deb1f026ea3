"""How many of the instances that meet a theorem's assumptions are non-trivial, for Tian (2018)
T1-T4 (theorems/tian2018/reformulation.py) on the finite teacher (verify/models/teacher.py).

Trivial regimes (predicates of :mod:`verify.models.teacher`): a lossless-equivalent teacher
(``is_lossless_equivalent``: T3 then makes T2/T4 exact for a trivial reason) and an all-open
student (``all_gates_open``: a linear network). "non-trivial" = neither. Also counted: gates that
never vary (``gates_constant``: every node open everywhere or dead), and, where the forward
identity's gate matters, ``forward_gate_exercised`` (a closed gate on a non-leaf, non-top region).
Columns: met (instances meeting every assumption), non-triv (met, not lossless-equivalent, not all
gates open), frac (non-triv / met), +gates vary (non-triv and some gate varies over the inputs),
+acts vary (non-triv and some activation varies within its region's event: not activations_measurable),
gated (met and some gate varies: the non-triviality a lossless theorem, T3/T4, can have), fwd gate
(met and forward_gate_exercised), structs non-triv (structures with at least one non-triv instance).

Every structure of a theorem's strategy is enumerated (the strategy must be a fixed_dictionaries
of sampled_from / just, or a one_of of those) and gets ``--batch`` instances per seed from the
theorem's own sampler: the numbers weight structures equally, as a search that covers every
structure does. Prints one row per theorem (and with ``--per-structure`` one per structure).

With ``--search`` it instead runs each claim's default search (the engine's own structure draws)
and counts the non-trivial instances among those meeting the assumptions.
With ``--refute ID --mutant NAME`` (or ``--drop ASSUMPTION``) it instead counts, per structure,
the instances on which that wrong variant fails: which structures can refute it, and how surely
one batch does.

Usage: python benchmarks/nontrivial_t1_t4.py [--batch 256] [--seeds 0 1] [--ids PREFIX ...] [--per-structure]
       python benchmarks/nontrivial_t1_t4.py --refute tian2018.thm4.matrix-form --mutant forward_without_gate
       python benchmarks/nontrivial_t1_t4.py --search --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import functools
import itertools
import time

import jax
import numpy as np

from verify.backends import backend
from verify.engine.evaluate import draw_batch
from verify.models import teacher as TT
from verify.registry import get
from verify.sampling import Rng
from verify.values import Structure

IDS = [
    "tian2018.thm1.marginalised-gradient",
    "tian2018.thm2.reformulation",
    "tian2018.thm2.reformulation.forward",
    "tian2018.thm2.reformulation.backward",
    "tian2018.thm2.weight-update",
    "tian2018.thm3.lossless-teacher",
    "tian2018.thm4.matrix-form",
]

PREDICATES = {
    "lossless_eq": TT.is_lossless_equivalent,
    "all_open": TT.all_gates_open,
    "const_gates": TT.gates_constant,
    "fwd_gate": TT.forward_gate_exercised,
    "measurable": TT.activations_measurable,
}


def enumerate_structures(strategy) -> list[dict]:
    """Every value of a finite strategy built from fixed_dictionaries, sampled_from, just, one_of."""
    w = getattr(strategy, "wrapped_strategy", strategy)
    name = type(w).__name__
    if name == "OneOfStrategy":
        out = []
        for sub in w.original_strategies:
            out += [v for v in enumerate_structures(sub) if v not in out]
        return out
    if name == "FixedDictStrategy":
        keys = list(w.mapping)
        values = [enumerate_structures(w.mapping[k]) for k in keys]
        return [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    if name == "SampledFromStrategy":
        return list(w.elements)
    if name == "JustStrategy":
        return [w.value]
    raise TypeError(f"cannot enumerate a {name}")


@functools.cache
def _evaluator(sample, assumptions: tuple):
    """Compiled per structure: every named assumption and every regime predicate on a batch."""

    def one(s, x):
        return {f"a:{a.name}": a.holds(s, x) for a in assumptions} | {k: f(s, x) for k, f in PREDICATES.items()}

    run = jax.jit(lambda s, pools: jax.vmap(lambda pool: one(s, sample(Rng(pool), s)))(pools), static_argnums=0)

    def call(s, seed, n):
        pools, _ = draw_batch(sample, s, seed, n)
        with backend("jax"):
            return {k: np.asarray(v) for k, v in run(s, pools).items()}

    return call


def measure(ids: list[str], batch: int, seeds: list[int]) -> dict[str, tuple[dict, list]]:
    """Per theorem: totals and per-structure counts. Theorems sharing a sampler share the draws."""
    thms = [get(i) for i in ids]
    by_sampler: dict = {}
    for t in thms:
        by_sampler.setdefault(t.sample, []).append(t)
    results = {}
    for sample, group in by_sampler.items():
        union = {a.name: a for t in group for a in t.assumptions}
        ev = _evaluator(sample, tuple(union.values()))
        structs = {i: enumerate_structures(t.structure) for i, t in ((t.id, t) for t in group)}
        every = []
        for v in structs.values():
            every += [s for s in v if s not in every]
        cache = {}
        for st in every:
            outs = [ev(Structure(st), seed, batch) for seed in seeds]
            cache[Structure(st)] = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
        for t in group:
            rows = []
            total = {"structures": 0, "drawn": 0, "met": 0, "nontrivial": 0, "nonconst": 0, "gated": 0, "acts_vary": 0, "fwd_gate": 0,
                     "structures_with_nontrivial": 0}
            for st in structs[t.id]:
                out = cache[Structure(st)]
                met = np.ones(len(out["all_open"]), bool)
                for a in t.assumptions:
                    met &= out[f"a:{a.name}"].astype(bool)
                nontriv = met & ~out["lossless_eq"] & ~out["all_open"]
                c = {"drawn": len(met), "met": int(met.sum()), "nontrivial": int(nontriv.sum()),
                     "nonconst": int((nontriv & ~out["const_gates"]).sum()),
                     "gated": int((met & ~out["const_gates"]).sum()),
                     "acts_vary": int((nontriv & ~out["measurable"]).sum()), "fwd_gate": int((met & out["fwd_gate"]).sum())}
                rows.append((st, c))
                total["structures"] += 1
                total["structures_with_nontrivial"] += int(c["nontrivial"] > 0)
                for k in c:
                    total[k] += c[k]
            results[t.id] = (total, rows)
    return results


def refutation_rates(thm_id: str, mutant: str | None, drop: str | None, batch: int, seeds: list[int]) -> list:
    """Per structure of the theorem's strategy: instances meeting the enforced assumptions and,
    of those, how many the variant (a mutant, or the claim without ``drop``) fails on."""
    from dataclasses import replace

    from verify.engine.rates import failure_rate

    thm = get(thm_id)
    variant = replace(thm, property=thm.mutant(mutant).property) if mutant else thm
    if drop:
        thm.assumption(drop)
        variant = replace(variant, assumptions=[a for a in thm.assumptions if a.name != drop])
    rows = []
    for st in enumerate_structures(thm.structure):
        met = failing = 0
        for seed in seeds:
            r = failure_rate(variant, st, instances=batch, batch=batch, seed=seed)
            met, failing = met + r["meeting_assumptions"], failing + r["failing"]
        rows.append((st, met, failing))
    return rows


def in_search(thm_id: str, seed: int, budget) -> tuple[int, int, int]:
    """What one default search of the claim sees: instances drawn, meeting the assumptions, and
    of those non-trivial. A probe assumption (every assumption holds and the instance is
    non-trivial) is added and dropped, so the search enforces exactly the theorem's assumptions
    and counts the probe per instance."""
    from dataclasses import replace

    import jax.numpy as jnp

    from verify.engine.search import search
    from verify.spec import Assumption

    thm = get(thm_id)

    def probe(s, x):
        ok = [jnp.asarray(a.holds(s, x), dtype=bool) for a in thm.assumptions] or [jnp.asarray(True)]
        return jnp.all(jnp.stack(ok)) & ~TT.is_lossless_equivalent(s, x) & ~TT.all_gates_open(s, x)

    probed = replace(thm, assumptions=[*thm.assumptions, Assumption("nontrivial_probe", "met and non-trivial", probe)])
    r = search(probed, drop="nontrivial_probe", budget=budget, seed=seed)
    return r.drawn, r.satisfied, r.per_assumption["nontrivial_probe"]


def _label(st: dict) -> str:
    tree = st["tree"]
    name = next((k for k, v in TT.LAYOUTS.items() if v == tree), f"{len(tree)} regions")
    return f"{name}/{st['teacher']}/n={st['n']}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--ids", nargs="+", default=None, help="theorem ids or prefixes (default: T1-T4)")
    p.add_argument("--per-structure", action="store_true")
    p.add_argument("--refute", metavar="ID", help="instead: per structure, how often a wrong variant of ID fails")
    p.add_argument("--mutant", help="with --refute: the mutant")
    p.add_argument("--drop", help="with --refute: the claim without this assumption")
    p.add_argument("--search", action="store_true",
                   help="instead: what a default search of each claim sees (--seeds are search seeds)")
    a = p.parse_args()
    if a.search:
        from verify.engine.search import Budget

        ids = [i for i in IDS if a.ids is None or any(i.startswith(q) for q in a.ids)]
        print("default search (Budget()): instances drawn, meeting the assumptions, non-trivial among them")
        for i in ids:
            for seed in a.seeds:
                drawn, met, nontriv = in_search(i, seed, Budget())
                print(f"{i:38s} seed {seed}: drawn {drawn:5d}  met {met:5d}  non-trivial {nontriv:5d} "
                      f"({nontriv / met if met else float('nan'):.3f})", flush=True)
        return
    if a.refute:
        rows = refutation_rates(a.refute, a.mutant, a.drop, a.batch, a.seeds)
        print(f"{a.refute} {'mutant ' + a.mutant if a.mutant else ''}{'without ' + a.drop if a.drop else ''}: "
              f"per structure, instances meeting the enforced assumptions and failing ({a.batch} per seed, seeds {a.seeds})")
        for st, met, failing in rows:
            miss = (1 - failing / met) ** a.batch if met else 1.0  # chance that one batch of --batch misses
            print(f"    {_label(st):32s} met {met:6d}  failing {failing:6d}  one batch misses with p ~ {miss:.1e}")
        refuting = sum(1 for _, met, f in rows if f)
        print(f"structures on which it fails: {refuting}/{len(rows)}")
        return
    ids = [i for i in IDS if a.ids is None or any(i.startswith(q) for q in a.ids)]
    print(f"batch {a.batch} per structure and seed, seeds {a.seeds}")
    print(f"{'theorem':38s} {'structs':>7s} {'drawn':>7s} {'met':>7s} {'non-triv':>8s} {'frac':>6s} "
          f"{'+gates vary':>11s} {'+acts vary':>10s} {'gated':>7s} {'fwd gate':>8s} {'structs non-triv':>16s}")
    t0 = time.perf_counter()
    results = measure(ids, a.batch, a.seeds)
    for i in ids:
        tot, rows = results[i]
        frac = tot["nontrivial"] / tot["met"] if tot["met"] else float("nan")
        print(f"{i:38s} {tot['structures']:7d} {tot['drawn']:7d} {tot['met']:7d} {tot['nontrivial']:8d} {frac:6.3f} "
              f"{tot['nonconst']:11d} {tot['acts_vary']:10d} {tot['gated']:7d} {tot['fwd_gate']:8d} {tot['structures_with_nontrivial']:>9d}/{tot['structures']:<6d}")
        if a.per_structure:
            for st, c in rows:
                if c["met"]:
                    print(f"    {_label(st):32s} met {c['met']:5d}  non-trivial {c['nontrivial']:5d}  gated {c['gated']:5d}  "
                          f"fwd gate {c['fwd_gate']:5d}")
    print(f"{time.perf_counter() - t0:.0f} s")

if __name__ == "__main__":
    main()
