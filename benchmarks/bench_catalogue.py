"""Where the time of a catalogue run goes, per theorem and in total, against the issue's goals.

Two measurements, in one run:

* **in process** (``--mode phases``, the default): each theorem's module is imported (start-up),
  then run as ``verify run`` runs it (every face, the default budget). The time is split into
  module import, SymPy (checking the derivations), the cross-check of claim against property,
  the exact face (z3), tracing and lowering JAX programs, XLA compilation, loading compiled
  programs from disk (or writing them there, cold), shrinking, and the rest, which is executing
  the batches and bookkeeping. JAX reports its own compile phases
  (``jax.monitoring``); the engine's phases are timed by wrapping the functions the runner calls.
* **the command** (``--mode command``): ``verify run`` over the whole catalogue as a user runs it,
  with an empty XLA cache (cold) and again with the cache it filled (warm).

Each row gives the instances meeting the assumptions in the claim's search and the rate. The
goals of the speed issue are printed with the measured figure beside each, and the baseline
figures quoted there (measured on the same 2-core machine before this work), so the ratio is
visible in one run.

Usage: python benchmarks/bench_catalogue.py [--mode phases|command|both] [--jobs N] [IDS ...]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

#: the figures the speed issue quotes for the state before it (2 cores, fresh clone)
BASELINE = {"run_cold_s": 11 * 60, "run_warm_s": 4 * 60, "check_warm_s": 6.0, "help_s": 1.2, "list_s": 3.0}
GOALS = {"run_warm_s": 60, "run_cold_s": 180, "check_warm_s": 2.0, "help_s": 1.0, "list_s": 1.0}
#: the issue's default budget: at least this many instances meeting the assumptions per claim
MIN_INSTANCES = 100_000

PHASES = ("import", "sympy", "crosscheck", "exact", "trace", "lower", "xla", "load", "shrink", "rest")


class Clock:
    """Seconds per phase, with nesting: a phase's time excludes the phases timed inside it."""

    def __init__(self) -> None:
        self.total: dict[str, float] = collections.defaultdict(float)
        self._stack: list[list[float]] = []

    @contextlib.contextmanager
    def phase(self, name: str):
        t0 = time.perf_counter()
        self._stack.append([0.0])
        try:
            yield
        finally:
            inner = self._stack.pop()[0]
            spent = time.perf_counter() - t0
            self.total[name] += spent - inner
            if self._stack:
                self._stack[-1][0] += spent

    def jax_event(self, event: str, seconds: float, **_: Any) -> None:
        name = {"/jax/core/compile/jaxpr_trace_duration": "trace",
                "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
                "/jax/core/compile/backend_compile_duration": "xla"}.get(event)
        if name is not None:
            self.total[name] += seconds
            if self._stack:  # the enclosing engine phase did not spend this itself
                self._stack[-1][0] += seconds


def wrap(clock: Clock, module: Any, attr: str, phase: str) -> Callable[[], None]:
    original = getattr(module, attr)

    def timed(*a: Any, **kw: Any) -> Any:
        with clock.phase(phase):
            return original(*a, **kw)

    setattr(module, attr, timed)
    return lambda: setattr(module, attr, original)


def phases(ids: list[str], faces: tuple[str, ...]) -> None:
    import jax.monitoring

    t0 = time.perf_counter()
    from verify import index
    from verify.engine import programs, runner, search
    from verify.engine.search import Budget
    startup = time.perf_counter() - t0

    rows = index.cached() or []
    where = {r["id"]: r["module"] for r in rows}
    ids = ids or [r["id"] for r in rows]
    clock = Clock()
    jax.monitoring.register_event_duration_secs_listener(clock.jax_event)
    undo = [wrap(clock, runner, "check_derivation", "sympy"), wrap(clock, runner, "crosscheck", "crosscheck"),
            wrap(clock, runner, "decide_claim", "exact"), wrap(clock, search, "minimise", "shrink"),
            wrap(clock, programs, "_load_or_compile", "load")]
    table = []
    try:
        from verify.registry import get

        for tid in ids:
            before = dict(clock.total)
            t_start = time.perf_counter()
            with clock.phase("import"):
                importlib.import_module(where.get(tid, "theorems"))
                thm = get(tid)
            rep = runner.run_theorem(thm, faces=faces, budget=Budget(), seed=0)
            wall = time.perf_counter() - t_start
            spent = {k: clock.total.get(k, 0.0) - before.get(k, 0.0) for k in PHASES}
            spent["rest"] = wall - sum(v for k, v in spent.items() if k != "rest")
            n = rep.numeric.satisfied if rep.numeric else 0
            claim = bool(rep.numeric) and rep.numeric.verdict in ("confirmed", "thin")
            table.append((tid, wall, spent, n, rep.ok, claim))
            print(f"{tid:52s} {wall:7.1f} s  " + " ".join(f"{k}={spent[k]:.1f}" for k in PHASES)
                  + f"  {n:>9,} inst  {'ok' if rep.ok else 'FAILED'}", flush=True)
    finally:
        for u in undo:
            u()
    total = sum(r[1] for r in table)
    split = {k: sum(r[2][k] for r in table) for k in PHASES}
    print(f"\n{len(table)} theorems in {total:.1f} s in one process (+ {startup:.1f} s start-up)")
    for k in PHASES:
        print(f"  {k:11s} {split[k]:8.1f} s  {100 * split[k] / max(total, 1e-9):5.1f} %")
    claims = [r for r in table if r[5]]  # a refuted claim's search stops at its first failing batch
    if claims:
        fewest = min(claims, key=lambda r: r[3])
        reached = sum(r[3] >= MIN_INSTANCES for r in claims)
        print(f"  confirmed claims with {MIN_INSTANCES:,} instances meeting the assumptions: {reached} of {len(claims)}; "
              f"the fewest {fewest[3]:,} ({fewest[0]})")
    print("  slowest:", ", ".join(f"{r[0]} {r[1]:.1f} s" for r in sorted(table, key=lambda r: -r[1])[:5]))


#: CPU seconds of each command timed (its processes and theirs), by goal
CPU: dict[str, float] = {}


def timed(cmd: list[str], env: dict[str, str] | None = None, goal: str | None = None) -> tuple[float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if goal:
        CPU[goal] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, proc.returncode


def fewest_instances(certificates: str) -> tuple[int, str, int, int]:
    """The fewest instances meeting the assumptions that a confirmed (or thin) claim's search had,
    its theorem, and how many such claims reached :data:`MIN_INSTANCES` of how many. A refuted
    claim (a stated non-theorem) is left out: its search stops at its first failing batch."""
    fewest, reached, claims = (sys.maxsize, ""), 0, 0
    for path in Path(certificates).glob("*.json"):
        cert = json.loads(path.read_text())
        numeric = cert.get("numeric") or {}
        if numeric.get("verdict") not in ("confirmed", "thin"):
            continue
        n = numeric["instances_satisfying_assumptions"]
        fewest = min(fewest, (n, cert.get("theorem", {}).get("id", path.stem)))
        claims += 1
        reached += n >= MIN_INSTANCES
    return (*fewest, reached, claims)


def command(jobs: int | None) -> None:
    verify = [sys.executable, "-m", "verify"]
    with tempfile.TemporaryDirectory() as d:
        env = os.environ | {"DLVERIFY_XLA_CACHE": f"{d}/xla"}
        run = [*verify, "run", "-q", "--out", f"{d}/cx", "--certificates", f"{d}/cert"]
        if jobs:
            run += ["--jobs", str(jobs)]
        check = [*verify, "check", "patel2016.switch-relu", "-q", "--out", f"{d}/cx", "--certificates", f"{d}/c1"]
        measured = {}
        measured["help_s"], _ = timed([*verify, "--help"], env, "help_s")
        measured["list_s"], _ = timed([*verify, "list"], env, "list_s")
        measured["run_cold_s"], rc_cold = timed(run, env, "run_cold_s")
        print(f"verify run, cold: {measured['run_cold_s']:.1f} s (exit {rc_cold})", flush=True)
        measured["run_warm_s"], rc_warm = timed(run, env, "run_warm_s")
        print(f"verify run, warm: {measured['run_warm_s']:.1f} s (exit {rc_warm})", flush=True)
        timed(check, env)
        measured["check_warm_s"], _ = timed(check, env, "check_warm_s")
        fewest, which, reached, claims = fewest_instances(f"{d}/cert")
    print(f"\nverify run exit codes: cold {rc_cold}, warm {rc_warm} ({os.cpu_count()} cores)")
    print(f"{'goal':32s} {'target':>9s} {'measured':>9s} {'CPU':>9s} {'baseline':>9s} {'baseline/now':>12s}")
    for k, target in GOALS.items():
        m = measured[k]
        print(f"{k:32s} {target:9.1f} {m:9.1f} {CPU.get(k, 0.0):9.1f} {BASELINE[k]:9.1f} {BASELINE[k] / m:12.2f}"
              f"  {'met' if m <= target else 'NOT met'}")
    print(f"{'instances per claim (fewest)':32s} {MIN_INSTANCES:9,d} {fewest:9,d} {'':9s} {'':9s} {'':12s}"
          f"  {'met' if fewest >= MIN_INSTANCES else 'NOT met'} ({which}; {reached} of {claims} confirmed claims "
          f"reached it)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ids", nargs="*", help="theorem ids (default: the whole catalogue)")
    ap.add_argument("--mode", choices=("phases", "command", "both"), default="phases")
    ap.add_argument("--jobs", type=int, default=None, help="--jobs for the command mode (default: verify's)")
    ap.add_argument("--exact", action="store_true", help="include the exact face in the phases mode")
    args = ap.parse_args()
    if args.mode in ("phases", "both"):
        from verify.engine.runner import DEFAULT_FACES

        phases(args.ids, DEFAULT_FACES + (("exact",) if args.exact else ()))
    if args.mode in ("command", "both"):
        command(args.jobs)


if __name__ == "__main__":
    main()
