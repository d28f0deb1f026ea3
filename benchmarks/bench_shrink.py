"""What shrinking each counterexample of a theorem costs, and what it leaves, in one run.

Runs the theorems given (every face, the default budget) and prints, for each counterexample of a
mutant or an ablation: the seconds spent in the value shrinker (with the 50-digit judge and the
certification), the value evaluations out of the budget, the method, the float entries of the
instance, its non-zero entries before and after, those the block pass zeroed, and whether
shrinking stopped at its budget. Run it twice to time a warm cache (programs kept on disk).

Usage: python benchmarks/bench_shrink.py ID [ID ...]
"""

from __future__ import annotations

import argparse
import time

from verify.engine import search as search_module
from verify.engine.runner import run_theorem
from verify.registry import get


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ids", nargs="+", help="theorem ids")
    args = ap.parse_args()
    shrinks: list[tuple[float, object]] = []
    original = search_module.minimise

    def timed(*a, **kw):
        t0 = time.perf_counter()
        cx = original(*a, **kw)
        shrinks.append((time.perf_counter() - t0, cx))
        return cx

    search_module.minimise = timed
    try:
        for tid in args.ids:
            shrinks.clear()
            t0 = time.perf_counter()
            run_theorem(get(tid))
            wall = time.perf_counter() - t0
            print(f"{tid}: {wall:.1f} s, of which shrinking {sum(t for t, _ in shrinks):.1f} s "
                  f"({len(shrinks)} counterexamples)")
            for t, cx in shrinks:
                sh = cx.shrink
                entries = sum(v.size for v in cx.instance.values() if v.dtype.kind == "f")
                print(f"  {t:6.2f} s  {cx.variant:42s} {sh['value_evaluations']:4d}/{sh['value_budget']} evaluations, "
                      f"{sh['method']:10s} {entries:5d} entries, non-zero {sh['nonzero_entries_before']} -> "
                      f"{sh['nonzero_entries_after']} ({sh.get('zeroed_in_blocks', 0)} zeroed in blocks)"
                      f"{', stopped at the budget' if sh['values_stopped_early'] else ''}")
    finally:
        search_module.minimise = original


if __name__ == "__main__":
    main()
