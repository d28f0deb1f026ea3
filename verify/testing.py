"""Assertions for users' own test suites: run a theorem's faces and fail with a readable message."""

from __future__ import annotations

from pathlib import Path

from verify.config import in_float64
from verify.engine.runner import FACES, TheoremReport, run_theorem
from verify.engine.search import Budget
from verify.registry import get
from verify.spec import Theorem


def failure_message(report: TheoremReport) -> str:
    lines = [f"{report.theorem.id}: " + "; ".join(report.problems)]
    searches = [("claim", report.numeric)] + [(f"mutant {m.name}", m.numeric) for m in report.mutants if not m.refuted]
    for label, r in searches:
        cx = r.counterexample if r is not None else None
        if cx is None or (label == "claim" and report.theorem.expect == "false"):
            continue
        lines.append(f"{label}: counterexample at {cx.structure}")
        lines += [f"    {k} = {v.tolist()}" for k, v in cx.instance.items()]
        lines.append(f"    |residual| = {cx.residual:.6g} (float64), {cx.highprec_residual} (50 digits)")
        lines.append(f"    replay: {cx.replay_command()}")
    return "\n".join(lines)


@in_float64
def assert_theorem(
    theorem: Theorem | str,
    *,
    faces: tuple[str, ...] = ("symbolic", "numeric", "mutants"),
    budget: Budget = Budget(),
    seed: int = 0,
    out_dir: str | Path = ".dlverify/counterexamples",
) -> TheoremReport:
    """Run ``theorem`` (an object or a catalogue id); raise ``AssertionError`` naming the
    shrunk counterexample and its replay command if anything did not come out as expected."""
    thm = get(theorem) if isinstance(theorem, str) else theorem
    unknown = set(faces) - set(FACES)
    if unknown:
        raise ValueError(f"unknown faces {sorted(unknown)}; choose from {FACES}")
    report = run_theorem(thm, faces=faces, budget=budget, seed=seed, out_dir=out_dir)
    if not report.ok:
        raise AssertionError(failure_message(report))
    return report
