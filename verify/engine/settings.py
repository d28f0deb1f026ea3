"""Hypothesis settings for the engine's searches: quiet, no example database, no deadline."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, Verbosity, settings


def quiet_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        derandomize=False,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        print_blob=False,
    )
