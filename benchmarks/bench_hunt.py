"""Hunt throughput: instances per second for P1 (patel2016.switch-relu) and a teacher-model theorem
with 1 and 2 local workers (and a Ray cluster with ``--ray``), the per-task overhead, and from
those an estimate for N machines.

Each configuration runs a warm-up hunt (which compiles every structure's program in each worker:
the pool of the measured hunt is a new one, so the compilation cache on disk is what carries
over), then one hunt of ``--budget`` instances. The per-task overhead is the time per task of a
hunt whose tasks are one batch of 64 instances (nearly no work), minus that work; the driver's own
cost per task is what the hunt records (``hunt.run.driver_seconds_per_task``).

Usage: python benchmarks/bench_hunt.py [--budget 20000000] [--batch 65536] [--task-batches 8]
       [--teacher ID] [--teacher-batch 4096] [--teacher-only] [--ray ADDRESS]
"""

from __future__ import annotations

import argparse
import time

from verify.hunt import hunt, reference
from verify.registry import get


def measure(thm, budget: int, batch: int, task_batches: int, **where) -> dict:
    hunt(thm, reference(thm), instances=batch * 20, batch=batch, task_batches=1, seed=99, **where)  # warm
    t0 = time.perf_counter()
    res = hunt(thm, reference(thm), instances=budget, batch=batch, task_batches=task_batches, **where)
    seconds = time.perf_counter() - t0
    return {"rate": res.search.drawn / seconds, "seconds": seconds, "tasks": res.hunt["tasks"],
            "driver": res.hunt["run"]["driver_seconds_per_task"], "verdict": res.verdict}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=20_000_000)
    ap.add_argument("--batch", type=int, default=1 << 16)
    ap.add_argument("--task-batches", type=int, default=8)
    ap.add_argument("--teacher", default="tian2018.thm1.marginalised-gradient")
    ap.add_argument("--teacher-batch", type=int, default=4096,
                    help="its batch (4096): at 65536 one of its structures needs about 75 GB")
    ap.add_argument("--teacher-only", action="store_true", help="measure the teacher theorem alone")
    ap.add_argument("--ray", metavar="ADDRESS", help="also measure on this Ray cluster")
    args = ap.parse_args()
    wheres = {"1 process": {"workers": 1}, "2 workers": {"workers": 2}}
    if args.ray:
        wheres["ray"] = {"ray": args.ray}
    rates = {}
    tid0 = "patel2016.switch-relu"
    for tid in ((args.teacher,) if args.teacher_only else (tid0, args.teacher)):
        thm = get(tid)
        budget, batch = (args.budget, args.batch) if tid == tid0 else (args.budget // 20, args.teacher_batch)
        for name, where in wheres.items():
            m = measure(thm, budget, batch, args.task_batches, **where)
            rates[tid, name] = m["rate"]
            print(f"{tid:40s} {name:10s}: {m['rate']:12,.0f} instances/s ({budget:,} in {m['seconds']:.1f} s, "
                  f"{m['tasks']} tasks, {m['verdict']}; driver {m['driver'] * 1e3:.2f} ms a task)", flush=True)
        print(f"{'':40s} speed-up with 2 workers: {rates[tid, '2 workers'] / rates[tid, '1 process']:.2f}")
    if args.teacher_only:
        return
    thm = get("patel2016.switch-relu")
    per_task, driver = {}, {}
    for name, where in wheres.items():
        hunt(thm, reference(thm), instances=64 * 20, batch=64, task_batches=1, seed=98, **where)  # warm
        n = 200
        t0 = time.perf_counter()
        res = hunt(thm, reference(thm), instances=n * 64, batch=64, task_batches=1, **where)
        per_task[name] = (time.perf_counter() - t0) / n - 64 / rates[tid0, "1 process"]  # less the work itself
        driver[name] = res.hunt["run"]["driver_seconds_per_task"]
        print(f"per-task overhead, {name}: {per_task[name] * 1e3:.2f} ms of wall time a task "
              f"(the driver's share {driver[name] * 1e3:.2f} ms)")
    task = args.batch * args.task_batches
    two = rates[tid0, "2 workers"]
    seconds = 2 * task / two  # a task's time on one of the 2 workers
    d = max(driver.values())
    print(f"estimate for P1: one machine like this (2 cores) runs {two:,.0f} instances/s; a task of {task:,} "
          f"instances keeps a worker busy {seconds:.1f} s against {2 * per_task['2 workers'] * 1e3:.1f} ms of "
          f"overhead, "
          f"so N such machines run about N x {two:,.0f}/s. The driver spends at most {d * 1e3:.2f} ms on a task: "
          f"it becomes the bottleneck past {seconds / d:,.0f} busy workers ({seconds / d / 2:,.0f} machines), "
          f"about {task / d:,.0f} instances/s; larger --task-batches push that further.")


if __name__ == "__main__":
    main()
