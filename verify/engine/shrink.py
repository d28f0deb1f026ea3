"""Shrinking one failing instance value by value, then judging it in float64 and at 50 digits.

Hypothesis has already shrunk the structure and the batch seed; here each float entry of the
failing instance is replaced, simplest first, from a ladder of simpler values (0, +-1, +-2, the
rounded value, one to three significant digits, the nearest power of two, fewer decimals, the
value itself), keeping only replacements under which the instance still
fails the same way.

Every evaluation counts against the value budget (``Budget.shrink_examples``). A first pass sets
whole arrays, then halves of them, to 0 (:func:`_zero_blocks`): a few evaluations do what
Hypothesis would do entry by entry, at a cost per draw that grows with the number of entries
(about 19 ms a draw at 340 entries, against 2 ms for the evaluation itself). Hypothesis then
searches the entries left for the simplest failing mix; when its first draws find none
(:data:`HOPELESS`), the rest of the budget simplifies them greedily, one entry at a time.
"""

from __future__ import annotations

import collections
import math
import random
from typing import Sequence

import numpy as np
from hypothesis import find
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample, Unsatisfiable

from verify.engine.evaluate import batch_sampler, judge, single_evaluator
from verify.engine.settings import quiet_settings
from verify.records.counterexample import Counterexample


def _ladder(v: float) -> list[float]:
    """Simpler-first replacement values for one entry, ending with the entry itself."""
    if not math.isfinite(v) or v == 0.0:  # nothing is simpler than 0
        return [v]
    out: list[float] = []
    sign = math.copysign(1.0, v)
    # simplest first, as a reader judges: 0, small integers, the rounded value, one to three
    # significant digits, the nearest power of two, then fewer decimals
    power = sign * 2.0 ** round(math.log2(abs(v))) if v else 0.0
    digits = [float(f"{v:.{n}g}") for n in (1, 2, 3)]
    for c in (0.0, sign, 2.0 * sign, float(round(v)), *digits, power, round(v, 1), round(v, 3), v):
        if c not in out and math.isfinite(c):
            out.append(c)
    out.remove(v)
    return out + [v]


#: Hypothesis's search for a failing mix stops after this many draws (or a tenth of the budget
#: left, if more) without one: the rest of the budget is the greedy pass's
HOPELESS = 10


def _zero_blocks(slots: Sequence[tuple[str, int]], choice: list[int], fails, limit: int) -> list[int]:
    """``choice`` with blocks of entries set to their simplest value (rung 0: 0), each block kept
    only if the instance still fails: every array's non-zero entries at once, then halves of the
    blocks that were refused, and so on down to single entries (as delta debugging does), at most
    ``limit`` blocks tried."""
    blocks: collections.deque[list[int]] = collections.deque()
    for name in dict.fromkeys(k for k, _ in slots):
        block = [j for j, (k, _) in enumerate(slots) if k == name and choice[j] != 0]
        if block:
            blocks.append(block)
    tried = 0
    while blocks and tried < limit:
        block = blocks.popleft()
        trial = list(choice)
        for j in block:
            trial[j] = 0
        tried += 1
        if fails(trial):
            choice = trial
        elif len(block) > 1:
            blocks += [block[: len(block) // 2], block[len(block) // 2 :]]
    return choice


class _Hopeless(BaseException):
    """Hypothesis's draws found no failing mix: stops its ``find`` (see :data:`HOPELESS`)."""


class _Spent(BaseException):
    """The value budget is spent: stops Hypothesis's ``find`` at once (a ``BaseException``, as a
    ``KeyboardInterrupt`` is, so that Hypothesis does not take it for the failure sought)."""


def minimise(theorem, prop, variant, enforce, s, key_seed, idx, budget, first_s, seed, x0=None,
             shrink=True) -> Counterexample:
    """Shrink the failing instance ``x0`` (or instance ``idx`` of the batch ``(s, key_seed)``);
    ``shrink=False`` (Hypothesis's shrink phase off) judges it as found."""
    if x0 is None:
        batch = batch_sampler(theorem.sample)(s, key_seed, budget.batch)
        x0 = {k: np.asarray(v)[idx] for k, v in batch.items()}
    single = single_evaluator(prop, theorem.assumptions, theorem.tolerance)

    finite_failure = bool(single(s, x0)["finite"])
    dropped = [i for i in range(len(theorem.assumptions)) if i not in enforce]
    spent = {"evaluations": 0, "refused": 0}

    def still_fails(x: dict[str, np.ndarray]) -> bool:
        """Still a failure of the same kind: shrinking a finite violation must not wander into a
        NaN (a probability simplified to 0, say), which would report a different problem, and an
        ablation witness must keep violating the assumption dropped."""
        out = single(s, x)
        if finite_failure and not out["finite"]:
            return False
        holds = np.asarray(out["holds"])
        meets = bool(holds[enforce].all() if enforce else True)
        violates_dropped = bool((~holds[dropped]).all()) if dropped else True
        return meets and violates_dropped and not (out["ratio"] <= 1.0)

    def fails(x: dict[str, np.ndarray]) -> bool:
        """:func:`still_fails`, at most ``budget.shrink_examples`` times: past that, every
        candidate is refused (and the counterexample says shrinking stopped early)."""
        if spent["evaluations"] >= budget.shrink_examples:
            spent["refused"] += 1
            return False
        spent["evaluations"] += 1
        return still_fails(x)

    slots = [(k, i) for k, v in x0.items() if v.dtype.kind == "f" for i in range(v.size)]
    ladders = [_ladder(float(x0[k].reshape(-1)[i])) for k, i in slots]

    def build(choice: Sequence[int]) -> dict[str, np.ndarray]:
        x = {k: v.copy() for k, v in x0.items()}
        for (k, i), lad, c in zip(slots, ladders, choice):
            x[k].reshape(-1)[i] = lad[c]
        return x

    method = "none"
    x_min = x0
    zeroed = 0
    if slots and shrink:
        start = [len(lad) - 1 for lad in ladders]  # every entry as found
        # first whole arrays, then halves of them, set to 0 (a few evaluations for what Hypothesis
        # would find entry by entry), with at most half the budget; Hypothesis then mixes the
        # simpler values of the entries left
        start = _zero_blocks(slots, start, lambda c: fails(build(c)), budget.shrink_examples // 2)
        zeroed = sum(c == 0 and len(lad) > 1 for c, lad in zip(start, ladders))
        free = [j for j, c in enumerate(start) if c != 0]

        def full(c: Sequence[int]) -> list[int]:
            out = list(start)
            for j, v in zip(free, c):
                out[j] = v
            return out

        strategy = st.tuples(*[st.integers(0, len(ladders[j]) - 1) for j in free])
        # a candidate's answer is remembered: Hypothesis replays the example it found, and a replay
        # refused because the budget ran out in between would read as a flaky test
        seen: dict[tuple[int, ...], bool] = {}
        last: list[tuple[int, ...]] = []  # the failing choice Hypothesis found last: its best so far
        hopeless = max(HOPELESS, (budget.shrink_examples - spent["evaluations"]) // 10)

        def fails_once(c: Sequence[int]) -> bool:
            if tuple(c) not in seen:
                if spent["evaluations"] >= budget.shrink_examples:
                    # nothing more can be evaluated: what Hypothesis would still try could only be
                    # refused (as fails refuses it), at the cost of a shrinker pass over every entry
                    spent["refused"] += 1
                    raise _Spent()
                if not last and len(seen) >= hopeless:
                    raise _Hopeless()  # no failing mix among its first draws: the rest goes to greedy
                seen[tuple(c)] = fails(build(full(c)))
            if seen[tuple(c)]:
                last[:] = [tuple(c)]
            return seen[tuple(c)]

        choice = None
        if free:
            try:
                choice = full(find(strategy, fails_once, settings=quiet_settings(max(1, budget.shrink_examples)),
                                   random=random.Random(seed)))
            except _Spent:
                choice = full(last[0]) if last else None
            except (_Hopeless, NoSuchExample, Unsatisfiable):
                pass
        if choice is not None:
            x_min, method = build(choice), "hypothesis"
        else:
            # Hypothesis found no failing mix of simpler values: simplify greedily from there instead
            choice = list(start)
            for j in free:
                for c in range(len(ladders[j]) - 1):
                    trial = choice[:j] + [c] + choice[j + 1 :]
                    if fails(build(trial)):
                        choice = trial
                        break
            x_min, method = build(choice), ("greedy" if free else "blocks")
        values_stopped = bool(spent["refused"])
        if not still_fails(x_min):  # never report an instance that does not fail
            x_min, method = x0, "none"
    else:
        values_stopped = False

    verdict = judge(prop, theorem.assumptions, theorem.tolerance, s, x_min, enforce)
    f64 = verdict.f64
    # what the judge established, as it established it; an instance whose enforced assumptions
    # fail at 50 digits establishes nothing
    established, note = verdict.established, verdict.note
    if not verdict.holds:
        established = "rounding"
        note = "the enforced assumptions do not all hold at 50 digits"
    names = [a.name for a in theorem.assumptions]
    certification = {}
    if established in ("real", "float64 only"):
        # the last link of float64 -> 50 digits -> ball -> exact: never certifies on doubt
        from verify.exact.ball import certify

        c = certify(prop, theorem.assumptions, theorem.tolerance, s, x_min, enforce)
        certification = {"status": c.status, "method": c.method, "ratio_lower": c.ratio_lower, "reason": c.reason}
    return Counterexample(
        theorem_id=theorem.id,
        variant=variant,
        enforced=[names[i] for i in enforce],
        structure=s.as_json(),
        instance=x_min,
        residual=float(f64["absres"]),
        ratio=float(f64["ratio"]),
        finite=bool(f64["finite"]),
        highprec_residual=verdict.highprec_residual,
        highprec_ratio=verdict.highprec_ratio,
        established=established,
        established_note=note,
        seed=seed,
        key_seed=int(key_seed),
        index=int(idx),
        shrink={
            "method": method,
            "structure_before": first_s.as_json(),
            "structure_after": s.as_json(),
            "nonzero_entries_before": int(sum(np.count_nonzero(v) for v in x0.values())),
            "nonzero_entries_after": int(sum(np.count_nonzero(v) for v in x_min.values())),
            "value_evaluations": spent["evaluations"],
            "value_budget": budget.shrink_examples,
            "values_stopped_early": values_stopped,
            "zeroed_in_blocks": int(zeroed),
        },
        source_file=theorem.module if theorem.module.endswith(".py") else "",
        source_sha256=theorem.module_sha256 if theorem.module.endswith(".py") else "",
        assumptions_held={n: bool(h) for n, h in zip(names, np.asarray(f64["holds"]).ravel())},
        certification=certification,
    )


