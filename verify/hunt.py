"""Long counterexample hunts: one variant of one theorem, cut into tasks, on local processes or Ray.

A hunt spends ``instances`` on one variant (the claim, ``mutant:NAME`` or ``ablate:NAME``). The
work is planned in advance as tasks, each a (structure, range of batch numbers) over the
theorem's small scope in turn; a task ships the theorem's reference (a catalogue id or a file
path), the structure and its batch numbers, never arrays, and returns counts and the first
failing instance it met (batch number and index). Batch ``b`` of structure ``s`` is drawn from
``mix(seed, "hunt", variant, s, b)``, so what every task computes is fixed by the seed alone.

Results are merged in task order: the counterexample is the first failure of the lowest-numbered
task that failed, whatever the number of workers or the order they finish in. When a task fails,
every later task not yet started is cancelled (``ray.cancel`` on Ray); earlier ones still run,
so the same seed always gives the same counterexample. That instance is then shrunk, judged at
50 digits and certified on the driver exactly as in a local run.

With ``state`` (a directory), each finished task is recorded atomically as it arrives; a hunt
started again with the same plan (theorem, statement, variant, seed, budget) skips the tasks
already done, so a stopped hunt resumes where it stopped. Ray is optional (``pip install
'dlverify[ray]'``); ``workers`` local processes use the same task model without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

FORMAT = "dlverify-hunt/1"


@dataclass(frozen=True)
class Task:
    number: int
    structure: dict[str, Any]
    first: int  # batch numbers first .. first + batches - 1
    batches: int


@dataclass
class HuntResult:
    """What a hunt established; ``verdict`` as a search's (confirmed | refuted | vacuous | error)."""

    theorem: str
    variant: str
    verdict: str
    instances: int = 0
    satisfied: int = 0
    tasks: int = 0
    tasks_done: int = 0
    resumed: int = 0
    seconds: float = 0.0
    max_ratio: float = 0.0
    counterexample: Any = None
    failing_task: int | None = None
    note: str = ""
    structures: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "theorem": self.theorem, "variant": self.variant, "verdict": self.verdict,
                "instances_drawn": self.instances, "instances_satisfying_assumptions": self.satisfied,
                "tasks": self.tasks, "tasks_done": self.tasks_done, "tasks_resumed": self.resumed,
                "largest_residual_over_tolerance": self.max_ratio, "failing_task": self.failing_task,
                "counterexample": self.counterexample.as_dict() if self.counterexample is not None else None,
                "structures": self.structures, "seconds": round(self.seconds, 3), "note": self.note}


def plan(theorem: Any, instances: int, batch: int, task_batches: int) -> list[Task]:
    """The tasks of a hunt: the budget's batches spread over the small scope, cut into tasks."""
    from verify.engine.scope import small_scope

    scope, _ = small_scope(theorem)
    if not scope:
        raise ValueError(f"{theorem.id} has no small scope to hunt over: declare Theorem(scope=[...])")
    total = max(1, -(-instances // batch))
    per = [total // len(scope) + (1 if k < total % len(scope) else 0) for k in range(len(scope))]
    tasks: list[Task] = []
    for s, n in zip(scope, per):
        for first in range(0, n, task_batches):
            tasks.append(Task(len(tasks), s, first, min(task_batches, n - first)))
    return tasks


# ---------------------------------------------------------------- the task (runs in a worker)

_STORES: dict[tuple[str, str], Any] = {}


def _property(theorem: Any, variant: str) -> Any:
    """The property a variant searches: a mutant's own, else the claim's (an ablation drops an
    assumption, not the claim)."""
    kind, _, name = variant.partition(":")
    return theorem.mutant(name).property if kind == "mutant" else theorem.property


def _store(ref: str, variant: str, batch: int) -> tuple[Any, Any, int]:
    from verify.engine.search import BatchStore
    from verify.registry import resolve

    key = (ref, variant)
    if key not in _STORES:
        theorem_id, _, where = ref.partition("@")
        thm = resolve(where, theorem_id) if where else resolve(theorem_id)
        _STORES[key] = (thm, BatchStore(thm, {variant: _property(thm, variant)}, batch))
    thm, store = _STORES[key]
    return thm, store, 0


def run_task(ref: str, variant: str, seed: int, batch: int, task: Task) -> dict[str, Any]:
    """Evaluate one task's batches; stop at its first failing instance."""
    from verify.config import float64
    from verify.engine.search import mix
    from verify.values import Structure

    with float64():
        thm, store, v = _store(ref, variant, batch)
        names = [a.name for a in thm.assumptions]
        drop = variant.split(":", 1)[1] if variant.startswith("ablate:") else None
        enforce = [i for i, n in enumerate(names) if n != drop]
        s = Structure(task.structure)
        out = {"task": task.number, "drawn": 0, "satisfied": 0, "best": 0.0, "failure": None}
        for b in range(task.first, task.first + task.batches):
            key = mix(seed, "hunt", variant, s.as_json(), b)
            res = store.evaluate(s, store.pools(s, key))
            holds = res["holds"]
            ok = holds[:, enforce].all(axis=1) if enforce else np.ones(holds.shape[0], bool)
            ratio = res["ratio"][v]
            bad = ok & ~(ratio <= 1.0)
            if drop is not None:
                bad &= ~holds[:, names.index(drop)]
            out["drawn"] += len(ok)
            out["satisfied"] += int(ok.sum())
            good = ok & np.isfinite(ratio)
            if good.any():
                out["best"] = max(out["best"], float(ratio[good].max()))
            if bad.any():
                out["failure"] = {"batch": b, "key_seed": key, "index": int(np.argmax(bad))}
                break
    return out


# ---------------------------------------------------------------- state on disk


def _plan_id(theorem: Any, variant: str, seed: int, instances: int, batch: int, task_batches: int) -> str:
    text = json.dumps([theorem.id, theorem.statement_hash(), variant, seed, instances, batch, task_batches])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _load_state(state: Path, plan_id: str) -> dict[int, dict[str, Any]]:
    path = state / f"{plan_id}.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return {}  # a damaged state file: start again (nothing is trusted that cannot be read)
    if data.get("format") != FORMAT or data.get("plan") != plan_id:
        return {}
    return {int(r["task"]): r for r in data.get("done", [])}


def _save_state(state: Path, plan_id: str, done: dict[int, dict[str, Any]]) -> None:
    from verify.records.io import write_json

    state.mkdir(parents=True, exist_ok=True)
    write_json(state / f"{plan_id}.json", {"format": FORMAT, "plan": plan_id,
                                           "done": [done[k] for k in sorted(done)]})


# ---------------------------------------------------------------- executors


class _Local:
    """``workers`` local processes (spawned: JAX is not fork-safe), or this process for 1."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = None
        if workers > 1:
            import multiprocessing as mp

            self.pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))

    def submit(self, *args: Any) -> Any:
        if self.pool is None:
            return _Lazy(args)
        return self.pool.submit(run_task, *args)

    def wait(self, pending: list[Any]) -> tuple[list[Any], list[Any]]:
        if self.pool is None:  # in this process: one task at a time, in task order
            return pending[:1], pending[1:]
        done, rest = wait(pending, return_when=FIRST_COMPLETED)
        return list(done), list(rest)

    @staticmethod
    def result(f: Any) -> dict[str, Any]:
        return f.result()

    @staticmethod
    def cancel(f: Any) -> None:
        f.cancel()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class _Lazy:
    """A task run in this process when its result is asked for (so a cancelled one never runs)."""

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args

    def result(self) -> dict[str, Any]:
        return run_task(*self.args)

    def cancel(self) -> None:
        pass


class _Ray:
    """Tasks on a Ray cluster (``address``: ``auto``, ``local`` or ``ray://HOST:PORT``)."""

    def __init__(self, address: str) -> None:
        try:
            import ray
        except ImportError:
            from verify.errors import UsageError

            raise UsageError("--ray needs Ray: pip install 'dlverify[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=None if address == "local" else address, include_dashboard=False,
                     log_to_driver=False, ignore_reinit_error=True)
        self.remote = ray.remote(run_task)

    def submit(self, *args: Any) -> Any:
        return self.remote.remote(*args)

    def wait(self, pending: list[Any]) -> tuple[list[Any], list[Any]]:
        done, rest = self.ray.wait(pending, num_returns=1)
        return list(done), list(rest)

    def result(self, ref: Any) -> dict[str, Any]:
        return self.ray.get(ref)

    def cancel(self, ref: Any) -> None:
        self.ray.cancel(ref)

    def close(self) -> None:
        pass


def _executor(workers: int, ray: str | None) -> Any:
    return _Ray(ray) if ray else _Local(workers)


# ---------------------------------------------------------------- the driver


def hunt(theorem: Any, ref: str, *, variant: str = "claim", instances: int = 10**6, batch: int = 4096,
         task_batches: int = 16, seed: int = 0, workers: int = 1, ray: str | None = None,
         state: str | Path | None = None, progress: Callable[[dict[str, Any]], None] | None = None,
         shrink_budget: Any = None) -> HuntResult:
    """Hunt ``variant`` of ``theorem`` (``ref``: how a worker finds it, ``ID`` or ``ID@FILE``)."""
    from verify.config import float64
    from verify.engine.search import Budget
    from verify.engine.shrink import minimise
    from verify.values import Structure

    t0 = time.perf_counter()
    tasks = plan(theorem, instances, batch, task_batches)
    pid = _plan_id(theorem, variant, seed, instances, batch, task_batches)
    state_dir = Path(state) if state is not None else None
    done = _load_state(state_dir, pid) if state_dir else {}
    result = HuntResult(theorem.id, variant, "confirmed", tasks=len(tasks), resumed=len(done))
    failing = min((k for k, r in done.items() if r["failure"]), default=None)
    todo = [t for t in tasks if t.number not in done and (failing is None or t.number < failing)]
    ex = _executor(workers, ray)
    in_flight: dict[Any, Task] = {}
    queue: Iterator[Task] = iter(todo)
    limit = max(1, workers if not ray else 64) * 2
    try:
        def fill() -> None:
            while len(in_flight) < limit:
                t = next(queue, None)
                if t is None:
                    return
                if failing is not None and t.number > failing:
                    continue
                in_flight[ex.submit(ref, variant, seed, batch, t)] = t
        fill()
        while in_flight:
            finished, _ = ex.wait(list(in_flight))
            for f in finished:
                if f not in in_flight:  # cancelled by an earlier task's failure in this round
                    continue
                t = in_flight.pop(f)
                r = ex.result(f)
                done[t.number] = r
                if r["failure"] is not None and (failing is None or t.number < failing):
                    failing = t.number
                    for g, u in list(in_flight.items()):  # later tasks cannot change the answer
                        if u.number > failing:
                            ex.cancel(g)
                            in_flight.pop(g)
                if state_dir:
                    _save_state(state_dir, pid, done)
                if progress:
                    drawn = sum(d["drawn"] for d in done.values())
                    rate = drawn / max(time.perf_counter() - t0, 1e-9)
                    left = sum(u.batches for u in tasks if u.number not in done) * batch
                    progress({"tasks_done": len(done), "tasks": len(tasks), "instances": drawn,
                              "per_second": rate, "eta_s": left / rate if rate > 0 and failing is None else 0.0})
            fill()
    finally:
        ex.close()
    considered = [done[k] for k in sorted(done) if failing is None or k <= failing]
    result.tasks_done = len(done)
    result.instances = sum(r["drawn"] for r in considered)
    result.satisfied = sum(r["satisfied"] for r in considered)
    result.max_ratio = max((r["best"] for r in considered), default=0.0)
    per: dict[str, dict[str, Any]] = {}
    for k in sorted(done):
        if failing is not None and k > failing:
            continue
        s = tasks[k].structure
        row = per.setdefault(json.dumps(s, sort_keys=True), {"structure": s, "drawn": 0, "meeting_assumptions": 0})
        row["drawn"] += done[k]["drawn"]
        row["meeting_assumptions"] += done[k]["satisfied"]
    result.structures = list(per.values())
    if failing is not None:
        f = done[failing]["failure"]
        names = [a.name for a in theorem.assumptions]
        drop = variant.split(":", 1)[1] if variant.startswith("ablate:") else None
        enforce = [i for i, n in enumerate(names) if n != drop]
        prop = _property(theorem, variant)
        s = Structure(tasks[failing].structure)
        with float64():
            cx = minimise(theorem, prop, variant, enforce, s, f["key_seed"], f["index"],
                          shrink_budget or Budget(examples=1, batch=batch), s, seed)
        cx.shrink["found_by"] = f"hunt task {failing}, batch {f['batch']}"
        result.counterexample, result.failing_task = cx, failing
        result.verdict = "refuted" if cx.refutes else "error"
        if not cx.refutes:
            result.note = "the float64 violation is not reproduced at 50 digits (rounding)"
    elif result.satisfied == 0:
        result.verdict = "vacuous"
        result.note = "no drawn instance met the enforced assumptions"
    result.seconds = time.perf_counter() - t0
    return result


def reference(theorem: Any) -> str:
    """How a worker finds the theorem: its id, and for a user file ``ID@ABSOLUTE_PATH``."""
    module = getattr(theorem, "module", "")
    return f"{theorem.id}@{os.path.abspath(module)}" if module.endswith(".py") else theorem.id
