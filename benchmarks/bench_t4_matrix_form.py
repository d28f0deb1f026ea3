"""Instances checked per second for T4 (tian2018.thm4.matrix-form) on the engine's batched path
(one jit(vmap) call per batch, as in bench_p1_batched_vs_given.py), for a lossless teacher on
the balanced pair tree (:func:`verify.models.TT.pair_tree`), n student nodes per region, at
several input sizes d (2^d inputs are enumerated per instance). Prints compile time, rate, and
the growth of the per-instance cost with d.

Usage: python benchmarks/bench_t4_matrix_form.py [--d 8 12] [--batch 64] [--seconds 3] [--n 2]
"""

from __future__ import annotations

import argparse
import time

from verify.engine.evaluate import batch_evaluator
from verify.models import teacher as TT
from verify.registry import get


def rate(thm, s, batch: int, seconds: float) -> tuple[float, float, float]:
    run = batch_evaluator(thm.property, thm.sample, thm.assumptions, thm.tolerance)
    t0 = time.perf_counter()
    out = run(s, 0, batch)  # compile (or load from the persistent cache) + first batch
    first = time.perf_counter() - t0
    worst = float(out["ratio"][out["holds"].all(axis=1)].max())
    n, seed, t0 = 0, 1, time.perf_counter()
    while True:
        out = run(s, seed, batch)
        n, seed = n + batch, seed + 1
        worst = max(worst, float(out["ratio"][out["holds"].all(axis=1)].max()))
        if time.perf_counter() - t0 >= seconds:
            break
    return n / (time.perf_counter() - t0), first, worst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d", type=int, nargs="+", default=[4, 6, 8, 10, 12])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--n", type=int, default=2)
    args = p.parse_args()
    thm = get("tian2018.thm4.matrix-form")
    print(f"T4 matrix form, lossless pair-tree teacher, n = {args.n}, batch {args.batch}")
    print(f"{'d':>3} {'inputs':>7} {'regions':>7} {'first call s':>12} {'instances/s':>12} {'us/instance':>12} "
          f"{'us/instance/input':>17} {'worst |r|/tol':>13}")
    prev = None
    for d in args.d:
        tree = TT.pair_tree(d)
        s = TT.structure(tree, "lossless", args.n)
        r, first, worst = rate(thm, s, args.batch, args.seconds)
        us = 1e6 / r
        grow = f"  x{us / prev:.1f} vs previous d" if prev else ""
        print(f"{d:>3} {2 ** d:>7} {len(tree):>7} {first:>12.2f} {r:>12,.0f} {us:>12.1f} {us / 2 ** d:>17.3f} {worst:>13.2e}{grow}")
        prev = us


if __name__ == "__main__":
    main()
