"""Hypothesis settings for the engine's searches, and the Hypothesis conventions a search honours.

The engine drives Hypothesis itself (one Hypothesis example is one batch of instances), always
quiet, without Hypothesis's own database (whose keys name the test function, the same for every
dlverify search) and without a deadline (a batch compiles an XLA program). What a user's settings
profile says reaches a search as :class:`Conventions` instead (see :meth:`Conventions.of`): which
phases run, how much it prints, and which example database keeps its failures.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, settings

#: every phase a dlverify search has, in the order they run (Hypothesis's names)
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)


def quiet_settings(max_examples: int, shrink: bool = True) -> settings:
    return settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        derandomize=False,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink] if shrink else [Phase.generate],
        report_multiple_bugs=False,
        print_blob=False,
        backend="hypothesis",
    )


@dataclass(frozen=True)
class Conventions:
    """The Hypothesis settings a search honours (the command line's defaults unless given).

    ``phases``: ``explicit`` runs the theorem's explicit examples first; ``reuse`` replays the
    failures ``database`` keeps for this search; ``generate`` draws the batches (the small scope,
    then Hypothesis's random structures); ``target`` runs the guided climb; ``shrink`` shrinks a
    failure (structure and seed by Hypothesis, then value by value): without it the
    counterexample is reported as found. ``verbosity``: ``verbose`` and ``debug`` print a line per
    phase (``debug`` also one per failing batch) to standard output; ``quiet`` and ``normal``
    print nothing (a failure is reported by the run, whatever the verbosity). ``database``: an
    ``ExampleDatabase`` that keeps each search's shrunk counterexample, or ``None``.
    """

    phases: tuple[Phase, ...] = (Phase.explicit, Phase.generate, Phase.target, Phase.shrink)
    verbosity: Verbosity = field(default_factory=lambda: Verbosity.quiet)  # an Enum without __hash__
    database: Any = None

    @classmethod
    def of(cls, hypothesis_settings: settings) -> "Conventions":
        """The conventions of a Hypothesis settings object (``settings()``: the active profile)."""
        return cls(phases=tuple(p for p in PHASES if p in hypothesis_settings.phases),
                   verbosity=hypothesis_settings.verbosity, database=hypothesis_settings.database)

    def has(self, phase: Phase) -> bool:
        return phase in self.phases

    def say(self, text: str, level: Verbosity = Verbosity.verbose) -> None:
        if self.verbosity >= level:
            print(f"dlverify: {text}", file=sys.stdout, flush=True)
