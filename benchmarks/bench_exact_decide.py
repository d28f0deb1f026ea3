"""How large a size z3 decides in about 10 s, per claim of Patel et al.'s P1-P3 (verify.exact.claims).

For each claim family the sizes grow (one parameter at a time) until a size is not decided within
the time limit; the table lists every size tried with the solver's answer and seconds.

    python benchmarks/bench_exact_decide.py [--timeout 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from verify.exact import claims as C
from verify.exact.decide import decide, solver_version

DECIDED = ("valid", "counterexample")


def grow_1d(build, start: int, timeout: float, stop_at: int = 30):
    """Sizes start, start+1, ... until one is not decided in time."""
    rows = []
    n = start
    while n <= stop_at:
        d = decide(*build(n), timeout_s=timeout)
        rows.append((n, d))
        print(f"    {n}: {d.status} {d.seconds:.2f} s", flush=True)
        if d.status not in DECIDED:
            break
        n += 1
    return rows


def grow_2d(build, Ks, P0: int, timeout: float, stop_at: int = 12):
    """For each K, P = P0, P0+1, ... until one is not decided; stops growing K when its first P fails."""
    rows = []
    for K in Ks:
        first = True
        P = P0
        while P <= stop_at:
            d = decide(*build(K, P), timeout_s=timeout)
            rows.append(((K, P), d))
            print(f"    K={K}, P={P}: {d.status} {d.seconds:.2f} s", flush=True)
            if d.status not in DECIDED:
                break
            first = False
            P += 1
        if first:
            break
    return rows


FAMILIES = {
    "P1 switch-relu, c_i atoms (linear): D": lambda t: grow_1d(C.switch_relu, 1, t),
    "P1 switch-relu, c_i = z_i u_i (non-linear): D": lambda t: grow_1d(lambda D: C.switch_relu(D, product=True), 1, t),
    "P2 translation-maxpool, z >= 0, non-overlapping (stride P): K, P":
        lambda t: grow_2d(lambda K, P: C.translation_maxpool(K, P, P), range(1, 8), 1, t),
    "P2 translation-maxpool, z >= 0, overlapping (stride 1): K, P":
        lambda t: grow_2d(lambda K, P: C.translation_maxpool(K, P, 1), range(1, 8), 2, t),
    "P2 mutant mean_pool (refuted), stride P: K, P":
        lambda t: grow_2d(lambda K, P: C.translation_maxpool(K, P, P, pool=C.mean_pool), range(1, 6), 2, t),
    "P2 global shared shift (non-theorem, refuted): K, P":
        lambda t: grow_2d(C.global_shift_maxpool, range(2, 8), 2, t),
    "MaxPool(ReLU) = ReLU(MaxPool), stride 1: K, P":
        lambda t: grow_2d(lambda K, P: C.maxpool_relu_commute(K, P, 1), (1, 4), 1, t, stop_at=10),
    "P3 signed layer, non-overlapping (stride P): K, P":
        lambda t: grow_2d(lambda K, P: C.signed_render_layer(K, P, P), range(1, 6), 1, t),
    "P3 signed layer, overlapping (stride 1, shared switches; refuted): K, P":
        lambda t: grow_2d(lambda K, P: C.signed_render_layer(K, P, 1), range(2, 6), 2, t),
}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--only", default="", help="run the families whose name contains this")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    print(f"{solver_version()}, timeout {args.timeout:g} s per size, {os.cpu_count()} CPUs")
    table = {}
    for name, run in FAMILIES.items():
        if args.only and args.only not in name:
            continue
        print(name, flush=True)
        rows = run(args.timeout)
        table[name] = [{"size": size, "status": d.status, "seconds": round(d.seconds, 3)} for size, d in rows]
        decided = [(size, d) for size, d in rows if d.status in DECIDED]
        if decided and isinstance(decided[0][0], tuple):  # the frontier: per K, the largest P decided
            frontier: dict[int, tuple] = {}
            for (K, P), d in decided:
                frontier[K] = (P, d)
            print("  largest decided: " + "; ".join(f"K={K}: P<={P} ({d.seconds:.2f} s)"
                                                   for K, (P, d) in frontier.items()))
        elif decided:
            size, d = decided[-1]
            print(f"  largest decided: {size} ({d.status}, {d.seconds:.2f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"solver": solver_version(), "timeout_s": args.timeout, "families": table}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
