"""Instances checked per second for P1 (patel2016.switch-relu) at D = 8, in one run:

* batched: the engine's path, one jit(vmap) call per batch of instances drawn from a JAX key,
  each read before the next is started, and again one batch ahead, as a claim's top-up reads them;
* per-example: a Hypothesis ``@given`` loop over the same property, one instance per example
  (the property compiled once with jit, so the loop measures Hypothesis + dispatch, not tracing).

Prints the rates and their ratios. Usage: python benchmarks/bench_p1_batched_vs_given.py [--D 8]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from verify.engine.evaluate import batch_evaluator, single_evaluator
from verify.registry import get
from verify.values import Structure


def batched_rate(thm, s: Structure, batch: int, seconds: float, ahead: bool = False) -> float:
    """Instances per second, each batch read before the next is started, or (``ahead``) as a claim's
    top-up reads them: each started before the one before it is read, so that JAX computes it while
    Python checks the other."""
    run = batch_evaluator(thm.property, thm.sample, thm.assumptions, thm.tolerance)
    run(s, 0, batch)  # compile
    n, seed, t0 = 0, 1, time.perf_counter()
    pending = run.start(s, seed, batch)
    while time.perf_counter() - t0 < seconds:
        seed += 1
        upcoming = run.start(s, seed, batch) if ahead else None
        out = jax.device_get(pending)
        assert (out["ratio"] <= 1).all()
        n += batch
        pending = upcoming if ahead else run.start(s, seed, batch)
    jax.device_get(pending)
    return n / (time.perf_counter() - t0)


def given_rate(thm, s: Structure, examples: int) -> float:
    one = single_evaluator(thm.property, thm.assumptions, thm.tolerance)
    vec = arrays(np.float64, s.D, elements=st.floats(-10, 10, allow_nan=False))
    one(s, {"z": np.ones(s.D), "u": np.ones(s.D)})  # compile

    @settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(z=vec, u=vec)
    def check(z, u):
        assert one(s, {"z": z, "u": u})["ratio"] <= 1

    t0 = time.perf_counter()
    check()
    return examples / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--D", type=int, default=8)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--seconds", type=float, default=3.0, help="time spent on the batched path")
    p.add_argument("--examples", type=int, default=500, help="examples for the @given loop")
    args = p.parse_args()
    thm = get("patel2016.switch-relu")
    s = Structure({"D": args.D})
    batched = batched_rate(thm, s, args.batch, args.seconds)
    pipelined = batched_rate(thm, s, args.batch, args.seconds, ahead=True)
    per_example = given_rate(thm, s, args.examples)
    print(f"P1 switch-relu, D = {args.D}")
    print(f"  batched jit(vmap), batch {args.batch}: {batched:12,.0f} instances/s")
    print(f"  the same, one batch ahead (top-up): {pipelined:12,.0f} instances/s")
    print(f"  Hypothesis @given, one per example: {per_example:12,.0f} instances/s")
    print(f"  ratio batched / per-example:        {batched / per_example:12,.0f}x")
    print(f"  ratio one batch ahead / per-example:{pipelined / per_example:12,.0f}x")


if __name__ == "__main__":
    main()
