"""A user's theorem file that states something true: ReLU(x) - ReLU(-x) = x."""

import sympy as sp
from hypothesis import strategies as st

from verify import Cases, Derivation, Mutant, Theorem, Tolerance, residual, xp

_x = sp.Symbol("x", real=True)

relu_odd_part = Theorem(
    id="user.relu-odd-part",
    title="ReLU(x) - ReLU(-x) = x",
    source="folklore",
    statement=r"$\mathrm{ReLU}(x) - \mathrm{ReLU}(-x) = x$ for all real $x$",
    property=lambda s, x: residual(xp.relu(x["x"]) - xp.relu(-x["x"]), x["x"], xp.abs(x["x"])),
    structure=st.fixed_dictionaries({"n": st.integers(1, 4)}),
    sample=lambda rng, s: {"x": rng.reals(s.n)},
    tolerance=Tolerance(0.0, 0.0, "one side is an entry of x or its negation: exact"),
    derivation=Derivation([Cases(sp.Max(_x, 0) - sp.Max(-_x, 0), _x, [_x], why="sign split")]),
    mutants=[Mutant("plus", "ReLU(x) + ReLU(-x) = x",
                    lambda s, x: residual(xp.relu(x["x"]) + xp.relu(-x["x"]), x["x"], xp.abs(x["x"])))],
)
