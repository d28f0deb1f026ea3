"""Assumptions that no drawn instance meets: the run must say 'vacuous', not 'confirmed'."""

from hypothesis import strategies as st

from verify import Assumption, Theorem, Tolerance, residual, xp

never_met = Theorem(
    id="user.never-met",
    title="A claim about vectors with entries above 100",
    source="tests",
    statement=r"for $x > 100$: $x = x + 1$ (false, but nothing is ever tested)",
    property=lambda s, x: residual(x["x"], x["x"] + 1.0),
    structure=st.fixed_dictionaries({"n": st.integers(1, 3)}),
    sample=lambda rng, s: {"x": rng.uniform(s.n, -1.0, 1.0)},
    tolerance=Tolerance(0.0, 1e-12, "a single rounding"),
    assumptions=[Assumption("huge", "every entry exceeds 100", lambda s, x: xp.all(x["x"] > 100))],
)
