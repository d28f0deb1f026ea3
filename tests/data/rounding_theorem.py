"""Float addition is associative to zero tolerance: false in float64, true in exact arithmetic.
The engine must not call this a counterexample (50-digit re-evaluation disagrees)."""

from hypothesis import strategies as st

from verify import Theorem, Tolerance, residual

associative = Theorem(
    id="user.associative-exactly",
    title="(a + b) + c = a + (b + c) with zero tolerance",
    source="tests",
    statement=r"$(a+b)+c = a+(b+c)$",
    property=lambda s, x: residual((x["a"] + x["b"]) + x["c"], x["a"] + (x["b"] + x["c"]), 0.0),
    structure=st.fixed_dictionaries({"n": st.integers(1, 3)}),
    sample=lambda rng, s: {"a": rng.normal(s.n), "b": rng.normal(s.n) * 1e-3, "c": rng.normal(s.n) * 1e3},
    tolerance=Tolerance(0.0, 0.0, "deliberately too tight: rounding is the only error"),
)
