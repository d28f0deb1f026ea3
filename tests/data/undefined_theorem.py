"""x / x = 1 needs x != 0: without the assumption the claim is undefined (NaN), which
ablation must count as showing the assumption necessary, not as an error."""

from hypothesis import strategies as st

from verify import Assumption, Theorem, Tolerance, residual, xp

self_ratio = Theorem(
    id="user.self-ratio",
    title="x / x = 1 for nonzero x",
    source="tests",
    statement=r"$x_i / x_i = 1$ for $x_i \ne 0$",
    property=lambda s, x: residual(x["x"] / x["x"], xp.ones_like(x["x"]), 1.0),
    structure=st.fixed_dictionaries({"n": st.integers(1, 3)}),
    sample=lambda rng, s: {"x": xp.where(rng.coin(0.5, s.n), 0.0, rng.normal(s.n))},
    tolerance=Tolerance(0.0, 1e-15, "one correctly rounded division: x / x is exactly 1"),
    assumptions=[Assumption("nonzero", "every entry is nonzero", lambda s, x: xp.all(x["x"] != 0))],
)
