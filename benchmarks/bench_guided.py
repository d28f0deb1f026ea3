"""How often a rare violation is found, with and without the guided climb, at one instance budget.

Two false claims of our own whose violations occupy a known fraction of the sampler's mass: on
x uniform in (0, 1]^2, "x0 + x1 <= 2 - c" fails exactly on the corner triangle x0 + x1 > 2 - c,
of area c^2 / 2; c is set so that the fraction is 1e-3 and 1e-5. Each claim is searched at
``--seeds`` seeds (default 20) with the same budget of ``--examples`` batches of ``--batch``
instances, once with random batches only (``Budget(guided=0)``) and once with the last fifth of
the batches given to the guided climb (``Budget(guided=0.2)``). Prints, per claim and mode, the
fraction of seeds at which the claim was refuted, and what one search cost.

Usage: python benchmarks/bench_guided.py [--seeds 20] [--examples 20] [--batch 64]
"""

from __future__ import annotations

import argparse
import math
import time

from hypothesis import strategies as st

from verify import Theorem, Tolerance, at_most
from verify.engine.search import Budget, search


def corner_claim(mass: float) -> Theorem:
    c = math.sqrt(2.0 * mass)  # the triangle x0 + x1 > 2 - c has area c^2 / 2 = mass
    return Theorem(
        id=f"bench.corner-{mass:g}", title=f"x0 + x1 <= 2 - c (false on a fraction {mass:g})",
        source="benchmark", statement=r"$x_0 + x_1 \le 2 - c$", expect="false",
        structure=st.fixed_dictionaries({"n": st.just(2)}),
        sample=lambda rng, s: {"x": rng.uniform(s.n)},
        property=lambda s, x: at_most(x["x"][0] + x["x"][1], 2.0 - c, 2.0),
        tolerance=Tolerance(0.0, 1e-12, "a sum of two numbers in (0, 1]: rounding is below 1e-15"),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--examples", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    print(f"budget: {args.examples} batches x {args.batch} instances = {args.examples * args.batch} per search; "
          f"{args.seeds} seeds")
    print(f"{'violating mass':>15} {'mode':>16} {'refuted':>9} {'s/search':>9}  P(random hit at this budget)")
    for mass in (1e-3, 1e-5):
        thm = corner_claim(mass)
        p_random = 1.0 - (1.0 - mass) ** (args.examples * args.batch)
        for mode, guided in (("random only", 0.0), ("random + guided", 0.2)):
            budget = Budget(examples=args.examples, batch=args.batch, guided=guided)
            hits, t0 = 0, time.perf_counter()
            for seed in range(args.seeds):
                verdict = search(thm, budget=budget, seed=seed).verdict
                if verdict not in ("refuted", "confirmed"):
                    raise SystemExit(f"the search at seed {seed} ended {verdict!r}")
                hits += verdict == "refuted"
            per = (time.perf_counter() - t0) / args.seeds
            print(f"{mass:>15g} {mode:>16} {hits:>4}/{args.seeds:<4} {per:>9.2f}  {p_random:.3f}")


if __name__ == "__main__":
    main()
