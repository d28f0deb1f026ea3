"""Instances per second and arithmetic per second of the batched path, P1 against the teacher models.

The unit of arithmetic is XLA's own count of floating-point operations
(``Compiled.cost_analysis()["flops"]``) in the engine's two programs of a batch: the one that
draws its instances from its uniform pool, and the one that evaluates the property and the
assumptions on every instance. Divided by the batch size, that is flops per instance. The rate is
the engine's own path (:func:`verify.engine.evaluate.batch_evaluator`, the uniform pool
included). A theorem's rate per unit of arithmetic is its instances per second times its flops
per instance, i.e. the flops per second it sustains; the ratio to P1's says how well its
evaluation uses the machine, whatever its size. One run, same process, same batch size.

Usage: python benchmarks/bench_arithmetic.py [--batch 4096] [--seconds 2] [IDS ...]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from verify.backends import backend
from verify.config import float64
from verify.engine.evaluate import _evaluate_one, _sample_all, batch_evaluator, draw_batch
from verify.engine.scope import small_scope
from verify.registry import get
from verify.values import Structure

DEFAULT = ["patel2016.switch-relu", "tian2018.thm1.marginalised-gradient", "tian2018.thm2.reformulation",
           "tian2018.thm3.lossless-teacher", "tian2018.thm4.matrix-form"]


def measure(tid: str, batch: int, seconds: float) -> tuple[Structure, float, float]:
    thm = get(tid)
    structures = small_scope(thm)[0]
    s = Structure({"D": 8}) if tid == "patel2016.switch-relu" else Structure(structures[len(structures) // 2])

    def evaluate(xs):
        return jax.vmap(lambda x: _evaluate_one(thm.property, thm.assumptions, thm.tolerance, s, x))(xs)

    def flops_of(fn, *args):
        cost = jax.jit(fn).lower(*args).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        return float(cost.get("flops", 0.0))

    with float64(), backend("jax"):
        pools, _ = draw_batch(thm.sample, s, 0, batch)
        xs = jax.jit(lambda p: _sample_all(thm.sample, s, p))(pools)
        # the engine's two programs: the sampler, then the property and assumptions on its instances
        flops = (flops_of(lambda p: _sample_all(thm.sample, s, p), pools) + flops_of(evaluate, xs)) / batch
        run = batch_evaluator(thm.property, thm.sample, thm.assumptions, thm.tolerance)
        run(s, 0, batch)  # compiled
        n, key, t0 = 0, 1, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            run(s, key, batch)
            n, key = n + batch, key + 1
        rate = n / (time.perf_counter() - t0)
    return s, rate, flops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ids", nargs="*", default=DEFAULT)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    rows = [(tid, *measure(tid, args.batch, args.seconds)) for tid in args.ids]
    p1 = next((r for r in rows if r[0] == "patel2016.switch-relu"), rows[0])
    base = p1[2] * p1[3]
    print(f"{'theorem':42s} {'structure':34s} {'instances/s':>12s} {'flops/inst':>11s} {'Mflop/s':>9s} {'vs P1':>6s}")
    for tid, s, rate, flops in rows:
        print(f"{tid:42s} {str(dict(s))[:34]:34s} {rate:12,.0f} {flops:11,.0f} {rate * flops / 1e6:9,.0f} "
              f"{rate * flops / base if base else float('nan'):6.2f}")


if __name__ == "__main__":
    main()
