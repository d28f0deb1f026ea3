"""A property that returns NaN: it must be reported as non-finite, never as a pass."""

from hypothesis import strategies as st

from verify import Theorem, Tolerance, residual, xp

nan_claim = Theorem(
    id="user.nan-claim",
    title="0/0 = 0 (a NaN residual)",
    source="tests",
    statement=r"$x / x - 1 = 0$ with $x = 0$",
    property=lambda s, x: residual(x["x"] / x["x"], xp.ones_like(x["x"])),
    structure=st.fixed_dictionaries({"n": st.integers(1, 3)}),
    sample=lambda rng, s: {"x": 0.0 * rng.uniform(s.n)},
    tolerance=Tolerance(0.0, 1e-12, "a single rounding"),
)
