"""A user's theorem file that states something true: ReLU(x) - ReLU(-x) = x."""

import sympy as sp
from hypothesis import strategies as st

from verify import Cases, Claim, Derivation, Mutant, Theorem, Tolerance, eq, residual, xp

# the claim entry by entry, for every n: x is the instance's array, n the structure's field
_x, _i, _n = sp.IndexedBase("x", real=True), sp.Symbol("i", integer=True), sp.Symbol("n", integer=True, positive=True)

relu_odd_part = Theorem(
    id="user.relu-odd-part",
    title="ReLU(x) - ReLU(-x) = x",
    source="folklore",
    statement=r"$\mathrm{ReLU}(x) - \mathrm{ReLU}(-x) = x$ for all real $x$",
    property=lambda s, x: residual(xp.relu(x["x"]) - xp.relu(-x["x"]), x["x"], xp.abs(x["x"])),
    structure=st.fixed_dictionaries({"n": st.integers(1, 4)}),
    sample=lambda rng, s: {"x": rng.reals(s.n)},
    tolerance=Tolerance(0.0, 0.0, "one side is an entry of x or its negation: exact"),
    derivation=Derivation(
        entries=(_i, 0, _n - 1),
        claim=Claim(sp.Max(_x[_i], 0) - sp.Max(-_x[_i], 0), "==", _x[_i]),
        chain=[eq(_x[_i], Cases([_x[_i]], "sign split"))],
    ),
    mutants=[Mutant("plus", "ReLU(x) + ReLU(-x) = x",
                    lambda s, x: residual(xp.relu(x["x"]) + xp.relu(-x["x"]), x["x"], xp.abs(x["x"])))],
)
