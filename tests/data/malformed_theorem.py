from hypothesis import strategies as st

from verify import Theorem, Tolerance, residual

bad = Theorem(
    id="Not A Valid Id",
    title="t", source="s", statement="x",
    property=lambda s, x: residual(x["x"], x["x"]),
    structure=st.fixed_dictionaries({"n": st.integers(1, 2)}),
    sample=lambda rng, s: {"x": rng.normal(s.n)},
    tolerance=Tolerance(0.0, 0.0, "exact"),
)
