"""Long counterexample hunts: one variant of one theorem, cut into tasks, on local processes or Ray.

A hunt spends a budget of instances on one variant (the claim, ``mutant:NAME`` or
``ablate:NAME``). The work is planned in advance as tasks, each a (structure, range of batch
numbers) over the theorem's small scope, the structures taken in turn; a task ships the theorem's
reference (a catalogue id or a file path), the structure and its batch numbers, never arrays,
and returns counts, a histogram, its instance closest to failing and the first failing instance
it met (batch number and index). Batch ``b`` of structure ``s`` is drawn from
``mix(seed, "hunt", variant, s, b)``, so what every task computes is fixed by the seed alone. A
worker keeps its compiled programs across tasks.

Results are merged in task order: the counterexample is the first failure of the lowest-numbered
task that failed, whatever the number of workers or the order they finish in, and the counts are
those of the tasks up to it. When a task fails, every later task is cancelled (``ray.cancel`` on
Ray) or, if it already finished, left out; earlier ones still run, so the same seed always gives
the same counterexample. That instance is then shrunk, judged at 50 digits and certified on the
driver exactly as in a local run.

The result is a certificate (:mod:`verify.records.certificate`) of one face: ``numeric`` for the
claim, ``mutants`` for a mutant, ``ablate`` for an ablation, with ``ok`` as ``verify check``,
``mutants`` or ``ablate`` would set it, and a ``hunt`` section stating the budget actually spent.
Nothing else is claimed: a hunt checks no derivation, no other mutant or ablation.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

FORMAT = "dlverify-hunt-state/2"
#: instances per batch and batches per task by default: big batches amortise the call overhead
BATCH = 1 << 16
TASK_BATCHES = 8
#: what a hunt's certificate does not establish (stated in it)
NOT_CHECKED = ("a hunt searches one variant numerically: no derivation, exact decision, failure rate, "
               "other mutant or other ablation was checked")


@dataclass(frozen=True)
class Task:
    number: int
    structure: dict[str, Any]
    first: int  # batch numbers first .. first + batches - 1
    batches: int


def plan(theorem: Any, instances: int, batch: int, task_batches: int) -> list[Task]:
    """The tasks of a hunt: ceil(instances / batch) batches spread evenly over the small scope,
    cut into tasks of ``task_batches``, the structures taken in turn (so a hunt stopped early has
    covered every structure)."""
    from verify.engine.scope import small_scope

    scope, _ = small_scope(theorem)
    if not scope:
        raise ValueError(f"{theorem.id} has no small scope to hunt over: declare Theorem(scope=[...])")
    total = max(1, -(-instances // batch))
    per = [total // len(scope) + (1 if k < total % len(scope) else 0) for k in range(len(scope))]
    chunks = [[(s, first, min(task_batches, n - first)) for first in range(0, n, task_batches)]
              for s, n in zip(scope, per)]
    tasks: list[Task] = []
    for row in range(max(len(c) for c in chunks)):
        for c in chunks:
            if row < len(c):
                tasks.append(Task(len(tasks), *c[row]))
    return tasks


# ---------------------------------------------------------------- the task (runs in a worker)

_STORES: dict[tuple[str, str, int], Any] = {}


def _property(theorem: Any, variant: str) -> Any:
    """The property a variant searches: a mutant's own, else the claim's (an ablation drops an
    assumption, not the claim)."""
    kind, _, name = variant.partition(":")
    return theorem.mutant(name).property if kind == "mutant" else theorem.property


def _dropped(variant: str) -> str | None:
    return variant.split(":", 1)[1] if variant.startswith("ablate:") else None


def _store(ref: str, variant: str, batch: int) -> tuple[Any, Any]:
    """The theorem and its batch store in this worker, made once and kept (with the compiled
    programs) for every later task of the hunt."""
    from verify.engine.search import BatchStore
    from verify.registry import resolve

    key = (ref, variant, batch)
    if key not in _STORES:
        theorem_id, _, where = ref.partition("@")
        thm = resolve(where, theorem_id) if where else resolve(theorem_id)
        _STORES[key] = (thm, BatchStore(thm, {variant: _property(thm, variant)}, batch))
    return _STORES[key]


def run_task(ref: str, variant: str, seed: int, batch: int, task: Task) -> dict[str, Any]:
    """Evaluate one task's batches and count them as a search does; stop after the batch with
    its first failing instance. A property that breaks makes the task's ``error``."""
    from verify.config import float64
    from verify.engine.search import mix
    from verify.records.certificate import add_to_histogram
    from verify.values import Structure

    t0 = time.perf_counter()
    with float64():
        thm, store = _store(ref, variant, batch)
        names = [a.name for a in thm.assumptions]
        drop = _dropped(variant)
        enforce = [i for i, n in enumerate(names) if n != drop]
        s = Structure(task.structure)
        out: dict[str, Any] = {"task": task.number, "batches": 0, "drawn": 0, "satisfied": 0, "nontrivial": 0,
                               "failing": 0, "per_assumption": [0] * len(names),
                               "per_regime": [0] * len(thm.trivial), "dropped_violated": 0, "histogram": {},
                               "best": 0.0, "max_residual": 0.0, "closest": None, "failure": None, "error": None}
        try:
            for b in range(task.first, task.first + task.batches):
                key = mix(seed, "hunt", variant, s.as_json(), b)
                res = store.evaluate(s, store.pools(s, key))
                if variant in res.get("errors", {}):
                    raise RuntimeError(res["errors"][variant])
                holds, ratio, absres = res["holds"], res["ratio"][0], res["absres"][0]
                ok = holds[:, enforce].all(axis=1) if enforce else np.ones(holds.shape[0], bool)
                bad = ok & ~(ratio <= 1.0)
                if drop is not None:  # a witness for the dropped assumption must violate it
                    bad &= ~holds[:, names.index(drop)]
                    out["dropped_violated"] += int((ok & ~holds[:, names.index(drop)]).sum())
                nontrivial = ok & ~res["trivial"].any(axis=1) if res["trivial"].size else ok
                out["batches"] += 1
                out["drawn"] += len(ok)
                out["satisfied"] += int(ok.sum())
                out["nontrivial"] += int(nontrivial.sum())
                out["failing"] += int(bad.sum())
                for i in range(len(names)):
                    out["per_assumption"][i] += int(holds[:, i].sum())
                for i in range(len(thm.trivial)):
                    out["per_regime"][i] += int((ok & res["trivial"][:, i]).sum())
                good = ok & np.isfinite(ratio)
                add_to_histogram(out["histogram"], ratio[good])
                if good.any():
                    i = int(np.argmax(np.where(good, ratio, -np.inf)))
                    if out["closest"] is None or ratio[i] > out["closest"]["ratio"]:
                        out["closest"] = {"batch": b, "index": i, "ratio": float(ratio[i])}
                    out["best"] = max(out["best"], float(ratio[i]))
                    out["max_residual"] = max(out["max_residual"], float(absres[good].max()))
                if bad.any():
                    out["failure"] = {"batch": b, "key_seed": key, "index": int(np.argmax(bad))}
                    break
        except Exception as exc:  # noqa: BLE001 - a user's property or sampler broke: the hunt's error
            from verify.records.io import stable_text

            out["error"] = stable_text(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
            if "RESOURCE_EXHAUSTED" in out["error"]:
                out["error"] += f" (at {batch} instances a batch: hunt with a smaller --batch)"
    out["seconds"] = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------- state on disk


def _plan_id(theorem: Any, variant: str, seed: int, instances: int, batch: int, task_batches: int) -> str:
    """The plan's name: the theorem's statement and its code (a state file written by other code is
    never resumed: its counts are not this code's), the variant, the seed and the budget's cut."""
    from verify.engine.programs import code_identity

    text = json.dumps([FORMAT, theorem.id, theorem.statement_hash(), code_identity(theorem), variant, seed, instances,
                       batch, task_batches])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _state_file(state: Path, plan_id: str) -> Path:
    return state / f"hunt-{plan_id}.jsonl"


def _load_state(state: Path, plan_id: str, about: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The tasks already done under this plan: the state file is one JSON line naming the plan,
    then one line per finished task, appended as it arrives. A line cut short by a stop (the last
    one) is dropped and cut off the file; a file of another plan or format is not read."""
    path = _state_file(state, plan_id)
    if not path.is_file():
        return {}
    raw = path.read_bytes()
    keep = raw[: raw.rfind(b"\n") + 1]
    if len(keep) != len(raw):
        with open(path, "r+b") as fh:  # an interrupted append: the task is simply run again
            fh.truncate(len(keep))
    lines = keep.decode("utf-8", "replace").splitlines()
    try:
        head = json.loads(lines[0]) if lines else {}
    except ValueError:
        head = {}
    if head != {"format": FORMAT, "plan": plan_id, "hunt": about}:
        return {}
    done: dict[int, dict[str, Any]] = {}
    for line in lines[1:]:
        try:
            r = json.loads(line)
        except ValueError:
            continue  # a damaged line: that task runs again (nothing is trusted that cannot be read)
        done[int(r["task"])] = r
    return done


class _State:
    """Appends each finished task to the state file (flushed and synced: a stop loses at most
    the task being written)."""

    def __init__(self, state: Path, plan_id: str, about: dict[str, Any], fresh: bool) -> None:
        state.mkdir(parents=True, exist_ok=True)
        path = _state_file(state, plan_id)
        self.fh = open(path, "w" if fresh else "a", encoding="utf-8")
        if fresh:
            self.add({"format": FORMAT, "plan": plan_id, "hunt": about})

    def add(self, record: dict[str, Any]) -> None:
        self.fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


# ---------------------------------------------------------------- executors


class _Local:
    """``workers`` local processes (spawned: JAX is not fork-safe), or this process for 1."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = None
        if workers > 1:
            import multiprocessing as mp

            self.pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))

    @property
    def slots(self) -> int:
        return 2 * self.workers

    def describe(self) -> dict[str, Any]:
        return {"executor": "process" if self.pool is None else "local-workers", "workers": self.workers}

    def submit(self, *args: Any) -> Any:
        if self.pool is None:
            return _Lazy(args)
        return self.pool.submit(run_task, *args)

    def wait(self, pending: list[Any]) -> list[Any]:
        if self.pool is None:  # in this process: one task at a time, in task order
            return pending[:1]
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        return list(done)

    @staticmethod
    def result(f: Any) -> dict[str, Any]:
        return f.result()

    @staticmethod
    def cancel(f: Any) -> None:
        f.cancel()

    def close(self, abort: bool) -> None:
        if self.pool is None:
            return
        if abort:  # an interrupt or an error: stop the workers now, not after their tasks
            for p in list((getattr(self.pool, "_processes", None) or {}).values()):
                p.terminate()
            self.pool.shutdown(wait=False, cancel_futures=True)
        else:
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
        import signal
        import threading

        self.ray, self.address = ray, address
        if not ray.is_initialized():
            # ray.init replaces the SIGTERM and SIGINT handlers (with one that calls sys.exit): keep
            # the caller's, so that a stopped hunt stops as any command does (its state is on disk)
            main = threading.current_thread() is threading.main_thread()
            kept = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)} if main else {}
            ray.init(address=None if address == "local" else address, include_dashboard=False,
                     log_to_driver=False, ignore_reinit_error=True)
            for sig, handler in kept.items():
                if handler is not None:
                    signal.signal(sig, handler)
        self.remote = ray.remote(run_task)
        self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))

    @property
    def slots(self) -> int:
        return 2 * self.cpus

    def describe(self) -> dict[str, Any]:
        return {"executor": "ray", "workers": self.cpus, "ray_address": self.address}

    def submit(self, *args: Any) -> Any:
        return self.remote.remote(*args)

    def wait(self, pending: list[Any]) -> list[Any]:
        done, _ = self.ray.wait(pending, num_returns=1)
        return list(done)

    def result(self, ref: Any) -> dict[str, Any]:
        return self.ray.get(ref)

    def cancel(self, ref: Any) -> None:
        self.ray.cancel(ref)

    def close(self, abort: bool) -> None:
        pass


def _executor(workers: int, ray: str | None) -> Any:
    return _Ray(ray) if ray else _Local(workers)


# ---------------------------------------------------------------- the result


@dataclass
class HuntResult:
    """What a hunt established: ``report`` (one face, as ``verify check``/``mutants``/``ablate``
    would make it), ``search`` (that face's search) and the certificate's ``hunt`` section."""

    report: Any
    search: Any
    hunt: dict[str, Any]

    @property
    def verdict(self) -> str:
        return self.search.verdict

    @property
    def counterexample(self) -> Any:
        return self.search.counterexample

    @property
    def ok(self) -> bool:
        return self.report.ok

    def certificate(self) -> dict[str, Any]:
        return self.report.certificate() | {"hunt": self.hunt}


#: the parts of a hunt's certificate that depend on how, when and where it was run, not on its plan:
#: when it was made, timings, ``hunt.run`` (executor, workers, resumed tasks) and the path a
#: counterexample was saved at (``--out``; the file's name, a hash of its content, is the same)
RUN_DEPENDENT = ("created", "seconds", "run", "file")


def comparable(cert: dict[str, Any]) -> dict[str, Any]:
    """``cert`` without :data:`RUN_DEPENDENT`: two hunts of the same plan (theorem, variant, seed,
    budget, batch, task size) must give equal ``comparable`` certificates."""
    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in RUN_DEPENDENT}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return strip(cert)


# ---------------------------------------------------------------- the driver


def hunt(theorem: Any, ref: str, *, variant: str = "claim", instances: int = 10**6, batch: int = BATCH,
         task_batches: int = TASK_BATCHES, seed: int = 0, workers: int = 1, ray: str | None = None,
         state: str | Path | None = None, progress: Callable[[dict[str, Any]], None] | None = None) -> HuntResult:
    """Hunt ``variant`` of ``theorem`` (``ref``: how a worker finds it, ``ID`` or ``ID@FILE``)."""
    from verify.config import float64, numeric_settings
    from verify.engine.runner import AblationResult, MutantResult, TheoremReport
    from verify.engine.scope import small_scope
    from verify.engine.search import Budget, SearchResult, judge
    from verify.engine.shrink import minimise
    from verify.values import Structure

    t0 = time.perf_counter()
    batch = min(batch, instances)
    tasks = plan(theorem, instances, batch, task_batches)
    pid = _plan_id(theorem, variant, seed, instances, batch, task_batches)
    about = {"theorem": theorem.id, "variant": variant, "seed": seed, "instances": instances, "batch": batch,
             "task_batches": task_batches}
    state_dir = Path(state) if state is not None else None
    done = _load_state(state_dir, pid, about) if state_dir else {}
    resumed = len(done)
    stop = min((k for k, r in done.items() if r["failure"] or r["error"]), default=None)
    todo = [t for t in tasks if t.number not in done and (stop is None or t.number < stop)]
    log = _State(state_dir, pid, about, fresh=not done) if state_dir else None
    ex = _executor(workers, ray)
    in_flight: dict[Any, Task] = {}
    queue: Iterator[Task] = iter(todo)
    fresh = 0  # instances drawn by this invocation (for the rate)
    drawn = sum(r["drawn"] for r in done.values())
    left = sum(t.batches for t in todo) * batch  # instances still to draw (if nothing fails)
    discarded = 0
    driver = 0.0  # seconds this process spent handling results (what bounds a large cluster)
    aborted = True
    try:
        def fill() -> None:
            while len(in_flight) < ex.slots:
                t = next(queue, None)
                if t is None:
                    return
                if stop is None or t.number < stop:
                    in_flight[ex.submit(ref, variant, seed, batch, t)] = t

        fill()
        while in_flight:
            for f in ex.wait(list(in_flight)):
                if f not in in_flight:  # cancelled by an earlier task's failure in this round
                    continue
                t1 = time.perf_counter()
                t = in_flight.pop(f)
                r = ex.result(f)
                fresh += r["drawn"]
                left -= t.batches * batch
                if stop is not None and t.number > stop:
                    discarded += 1  # finished before the failure was known: it cannot change the answer
                    continue
                done[t.number] = r
                drawn += r["drawn"]
                if r["failure"] is not None or r["error"] is not None:
                    stop = t.number
                    for g, u in list(in_flight.items()):  # later tasks cannot change the answer
                        if u.number > stop:
                            ex.cancel(g)
                            in_flight.pop(g)
                            discarded += 1
                if log:
                    log.add(r)
                # in this process the task itself ran inside ex.result: that is work, not the driver's
                driver += time.perf_counter() - t1 - (r["seconds"] if isinstance(f, _Lazy) else 0.0)
                if progress:
                    rate = fresh / max(time.perf_counter() - t0, 1e-9)
                    progress({"tasks_done": len(done), "tasks": len(tasks), "instances": drawn, "per_second": rate,
                              "eta_s": left / rate if rate > 0 and stop is None else 0.0})
            t1 = time.perf_counter()
            fill()
            driver += time.perf_counter() - t1
        aborted = False
    finally:
        ex.close(abort=aborted)
        if log:
            log.close()
    handled = len(done) - resumed + discarded

    # ------------------------------------------------------------ merge, in task order
    counted = [done[k] for k in sorted(done) if stop is None or k <= stop]
    names = [a.name for a in theorem.assumptions]
    drop = _dropped(variant)
    enforce = [i for i, n in enumerate(names) if n != drop]
    total_batches = sum(t.batches for t in tasks)
    budget = Budget(examples=total_batches, batch=batch, guided=0.0)
    res = SearchResult("confirmed", variant, [names[i] for i in enforce], seed=seed, budget=budget.as_dict())
    # a hunt draws batches and shrinks a failure; it runs no explicit example and keeps no database
    res.phases = ["generate", "shrink"]
    res.explicit = {"examples": len(theorem.examples), "ran": 0, "failing": 0}
    res.per_assumption = {n: sum(r["per_assumption"][i] for r in counted) for i, n in enumerate(names)}
    res.per_regime = {g.name: sum(r["per_regime"][i] for r in counted) for i, g in enumerate(theorem.trivial)}
    if drop is not None:
        res.dropped_violated = sum(r["dropped_violated"] for r in counted)
    closest = None
    for r in counted:
        t = tasks[r["task"]]
        res.batches += r["batches"]
        res.drawn += r["drawn"]
        res.satisfied += r["satisfied"]
        res.nontrivial += r["nontrivial"]
        res.max_ratio = max(res.max_ratio, r["best"])
        res.max_residual = max(res.max_residual, r["max_residual"])
        for k, n in r["histogram"].items():
            res.histogram[k] = res.histogram.get(k, 0) + n
        row = next((x for x in res.structures if x["structure"] == t.structure), None)
        if row is None:
            row = {"structure": t.structure, "drawn": 0, "meeting_assumptions": 0, "nontrivial": 0, "failing": 0,
                   "best_ratio": 0.0}
            res.structures.append(row)
        row["drawn"] += r["drawn"]
        row["meeting_assumptions"] += r["satisfied"]
        row["nontrivial"] += r["nontrivial"]
        row["failing"] += r["failing"]
        row["best_ratio"] = max(row["best_ratio"], r["best"])
        if r["closest"] is not None and (closest is None or r["closest"]["ratio"] > closest["ratio"]):
            closest = {"structure": t.structure, "task": t.number} | r["closest"]
    res.histogram = dict(sorted(res.histogram.items(), key=lambda kv: -999 if kv[0] == "zero" else int(kv[0])))
    scope, how = small_scope(theorem)
    res.coverage = {"how": how, "structures": len(scope), "covered": len(res.structures)}
    failed = done.get(stop) if stop is not None else None
    with float64():
        settings = numeric_settings()
        if failed is not None and failed["error"] is not None:
            res.verdict, res.note = "error", failed["error"]
        else:
            if failed is not None:
                f = failed["failure"]
                s = Structure(tasks[stop].structure)
                cx = minimise(theorem, _property(theorem, variant), variant, enforce, s, f["key_seed"], f["index"],
                              Budget(examples=1, batch=batch), s, seed)
                # the structure is not shrunk (the task's is kept, as planned), only the values
                cx.shrink |= {"found_by": f"hunt task {stop}, batch {f['batch']}", "structure_batches": 0,
                              "structure_budget": 0, "stopped_early": bool(cx.shrink.get("values_stopped_early"))}
                res.counterexample = cx
            judge(res, theorem, "claim" if drop is not None else variant, drop)
    res.seconds = time.perf_counter() - t0

    kind, _, name = variant.partition(":")
    face = {"claim": "numeric", "mutant": "mutants", "ablate": "ablate"}[kind]
    report = TheoremReport(theorem, (face,), seed, budget, numeric_settings=settings)
    if kind == "claim":
        report.numeric = res
    elif kind == "mutant":
        report.mutants = [MutantResult(name, theorem.mutant(name).description, res)]
    else:
        report.ablations = [AblationResult(name, res)]
    section = {
        "variant": variant,
        "instances_requested": instances,
        "instances_spent": res.drawn,
        "batch": batch,
        "task_batches": task_batches,
        "tasks": len(tasks),
        "tasks_counted": len(counted),
        "stopped_at_task": stop,
        "closest": closest,
        "not_checked": NOT_CHECKED,
        "run": ex.describe() | {"tasks_resumed": resumed, "tasks_discarded": discarded,
                                "seconds": round(res.seconds, 3),
                                "instances_per_second": round(fresh / max(res.seconds, 1e-9), 1),
                                "driver_seconds_per_task": round(driver / max(handled, 1), 6)},
    }
    return HuntResult(report, res, section)


def reference(theorem: Any) -> str:
    """How a worker finds the theorem: its id, and for a user file ``ID@ABSOLUTE_PATH``."""
    module = getattr(theorem, "module", "")
    return f"{theorem.id}@{os.path.abspath(module)}" if module.endswith(".py") else theorem.id
