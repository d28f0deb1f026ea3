"""The small scope of a theorem: every structure up to a size bound, searched before anything else.

Random structures miss the small ones (a search of ten batches once never drew depth 3, or n = 2).
So every search first gives one batch to each structure of the theorem's *small scope*: the
structures it declares (``Theorem(scope=[...])``), or else those the engine derives from its
Hypothesis strategy. The derivation reads the strategy's own description (``fixed_dictionaries``
of ``integers``, ``sampled_from``, ``booleans``, ``just``, ``lists`` and ``.map(tuple)``), ranks
every value by simplicity (smaller integers, earlier elements, shorter lists first) and takes
every structure whose total rank is at most a bound, the largest bound that keeps the scope within
``limit`` structures. A strategy it cannot read has no derived scope (the search says so).
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable

#: at most this many structures in a derived small scope
LIMIT = 64
#: a list strategy contributes lists of at most min_size + this many elements
LIST_EXTRA = 2


class Unreadable(Exception):
    """A strategy whose values cannot be listed."""


def _unwrap(strategy: Any) -> Any:
    while hasattr(strategy, "wrapped_strategy"):
        strategy = strategy.wrapped_strategy
    return strategy


def ranked_values(strategy: Any, cap: int = 64) -> list[Any]:
    """The values ``strategy`` can draw, simplest first (at most ``cap`` of them)."""
    s = _unwrap(strategy)
    name = type(s).__name__
    if name == "IntegersStrategy":
        lo, hi = s.start, s.end
        if lo is None or hi is None:
            raise Unreadable("an unbounded integer strategy")
        order = sorted(range(lo, hi + 1), key=lambda v: (abs(v), v < 0))
        return order[:cap]
    if name in ("SampledFromStrategy", "JustStrategy"):
        values = list(s.elements)
        if getattr(s, "_transformations", ()):
            raise Unreadable("a transformed sampled_from")
        return values[:cap]
    if name == "BooleansStrategy":
        return [False, True]
    if name == "MappedStrategy":
        inner = ranked_values(s.mapped_strategy, cap)
        return [s.pack(v) for v in inner]
    if name == "ListStrategy":
        elements = ranked_values(s.element_strategy, cap)
        lo = s.min_size or 0
        hi = min(s.max_size if s.max_size is not None else lo + LIST_EXTRA, lo + LIST_EXTRA)
        # a list's rank: one per element beyond the shortest, plus its elements' ranks
        ranked = []
        for n in range(lo, hi + 1):
            for idx in itertools.product(range(len(elements)), repeat=n):
                ranked.append((n - lo + sum(idx), n, idx))
                if len(ranked) > 50_000:
                    break
        ranked.sort()
        return [[elements[i] for i in idx] for _, _, idx in ranked[:cap]]
    if name == "FixedDictStrategy":
        if s.optional:
            raise Unreadable("optional keys")
        keys = list(s.mapping)
        per_key = [ranked_values(s.mapping[k], cap) for k in keys]
        return [dict(zip(keys, combo)) for combo in _by_rank(per_key, cap)]
    raise Unreadable(f"a {name}")


def _by_rank(choices: list[list[Any]], cap: int) -> Iterable[tuple[Any, ...]]:
    """Tuples of one choice per position, in order of total rank, cut at a whole rank level."""
    if not choices:
        yield ()
        return
    if cap <= 0:
        return
    levels: dict[int, list[tuple[int, ...]]] = {}
    for idx in itertools.product(*[range(len(c)) for c in choices]):
        levels.setdefault(sum(idx), []).append(idx)
        if sum(len(v) for v in levels.values()) > 50_000:
            break
    taken = 0
    for rank in sorted(levels):
        level = levels[rank]
        if taken + len(level) > cap and taken:
            return  # the whole next level does not fit: stop at the last complete one
        for idx in level:
            yield tuple(c[i] for c, i in zip(choices, idx))
        taken += len(level)


def small_scope(theorem: Any, limit: int = LIMIT) -> tuple[list[dict[str, Any]], str]:
    """The structures every search covers first, and how they were obtained."""
    declared = getattr(theorem, "scope", None)
    if declared:
        return [dict(s) for s in declared], "declared by the theorem"
    try:
        structures = ranked_values(theorem.structure, limit)
    except Unreadable as exc:
        return [], f"not derived ({exc} in the structure strategy; declare Theorem(scope=...))"
    if not all(isinstance(s, dict) for s in structures):
        return [], "not derived (the strategy does not draw mappings)"
    return structures, f"every structure up to a size bound ({len(structures)}), derived from the strategy"
