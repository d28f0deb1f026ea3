"""Start-up and single-theorem times of the command line, in one run (median of ``--repeat``).

* ``verify --help`` and ``verify list``: neither imports JAX nor SymPy (the catalogue index);
* ``python -c "import jax, sympy"``: the floor a command that evaluates pays before any work;
* ``verify check patel2016.switch-relu`` twice: the first fills the XLA cache, the second is warm.

Usage: python benchmarks/bench_cli.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time


def timed(cmd: list[str], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=False, capture_output=True)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    verify = [sys.executable, "-m", "verify"]
    with tempfile.TemporaryDirectory() as d:
        check = [*verify, "check", "patel2016.switch-relu", "-q", "--out", f"{d}/cx", "--certificates", f"{d}/c"]
        rows = [
            ("verify --help", timed([*verify, "--help"], args.repeat)),
            ("verify list", timed([*verify, "list"], args.repeat)),
            ("import jax, sympy", timed([sys.executable, "-c", "import jax, sympy"], args.repeat)),
            ("verify check patel2016.switch-relu (first)", timed(check, 1)),
            ("verify check patel2016.switch-relu (warm)", timed(check, args.repeat)),
        ]
    for name, seconds in rows:
        print(f"{name:45s} {seconds:7.2f} s")
    print(f"{'list / import floor':45s} {rows[1][1] / rows[2][1]:7.2f}")


if __name__ == "__main__":
    main()
