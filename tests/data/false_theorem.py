"""A user's theorem file that states something false: ReLU is additive."""

from hypothesis import strategies as st

from verify import Theorem, Tolerance, residual, xp

relu_additive = Theorem(
    id="user.relu-additive",
    title="ReLU is additive (false)",
    source="a deliberately wrong claim, for the tests",
    statement=r"$\mathbf{1}^\top\mathrm{ReLU}(x + y) = \mathbf{1}^\top\mathrm{ReLU}(x) + \mathbf{1}^\top\mathrm{ReLU}(y)$",
    property=lambda s, x: residual(
        xp.sum(xp.relu(x["x"] + x["y"])),
        xp.sum(xp.relu(x["x"])) + xp.sum(xp.relu(x["y"])),
        xp.sum(xp.abs(x["x"]) + xp.abs(x["y"])),
    ),
    structure=st.fixed_dictionaries({"n": st.integers(1, 6)}),
    sample=lambda rng, s: {"x": rng.normal(s.n) * 3.7, "y": rng.normal(s.n) * 2.3},
    tolerance=Tolerance(0.0, 1e-13, "sums of at most 12 terms: rounding <= 24 eps * scale"),
)
