# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Back-propagation lemmas (Koo lecture, formalisations B1-B4)
#
# The quadratic-form derivatives d(x^T A x)/dx = x^T (A + A^T) and d(x^T A x)/dA = x x^T, derived entry
# by entry at explicit sizes (the engine computes the scope: n in {1, 2, 3, 4}). SymPy's own MatrixSymbol
# calculus returns 0 for the derivative of a matrix element; a claim built on it is refuted at an exact
# rational point. Then the saliency identity of a bias-free ReLU network, proved for every width, and why
# the same chain says nothing about a network with biases. Last: max routes the gradient to the arg-max,
# and ties are where it breaks.

# %%
import sympy as sp

from verify.engine.search import Budget, search
from verify.notebook import show_derivation, show_instance, show_search
from verify.registry import get
from verify.symbolic import check_derivation

small = Budget(examples=8, batch=128)
quad = get("koo.backprop.quadratic-form")
print(quad.statement)

# %% [markdown]
# ## The derivation: a claim per size, reached by SymPy's partial derivatives of the explicit sum

# %%
results = show_derivation(quad)
assert all(r.verdict == "proved" for r in results)
assert all(sorted(dict(s)["n"] for s in r.scope.sizes) == [1, 2, 3, 4] for r in results)

# %% [markdown]
# ## The JAX property on one instance (n = 3): exact increments and jax.grad against the formula

# %%
one = show_instance(quad, {"n": 3}, seed=1)
assert all(one["holds"].values()) and max(r["over_tolerance"] for r in one["residuals"].values()) <= 1

# %% [markdown]
# ## A computer-algebra derivative that is silently wrong is refuted
# `sp.diff((x.T*A*x)[0, 0], x)` with MatrixSymbols returns 0. The mutant states that claim (no chain);
# the engine finds a rational point where it fails.

# %%
A, x = sp.MatrixSymbol("A", 2, 2), sp.MatrixSymbol("x", 2, 1)
print("SymPy says d(x^T A x)/dx =", sp.diff((x.T * A * x)[0, 0], x))
flagged = check_derivation(quad.mutant("sympy_matrixsymbol_dx").derivation)
print(flagged.verdict, flagged.witness)
assert flagged.verdict == "refuted" and flagged.witness

# %% [markdown]
# ## Saliency: S(I) = grad S(I) . I for a bias-free ReLU network, for every width
# Layer by layer the tangent [y > 0] (W h) is the gated pre-activation [y > 0] y = ReLU(y) because y = W h.
# With biases y = W h + b, the substitution does not apply and the chain stops short of the claim.

# %%
homogeneous = check_derivation(get("koo.backprop.saliency-homogeneous").derivation)
print(homogeneous.verdict, homogeneous.scope)
assert homogeneous.verdict == "proved"
with_bias = check_derivation(get("koo.backprop.saliency-with-bias").derivation)
print(with_bias.verdict, "-", with_bias.chains[0].gap[:160], "...")
assert with_bias.verdict == "refuted" and not with_bias.chains[0].reached

# %% [markdown]
# ## Max-pool routes the gradient to the arg-max, unless there is a tie

# %%
routing = get("koo.backprop.max-routing")
claim = search(routing, budget=small)
show_search(claim)
assert claim.verdict == "confirmed"
ties = search(routing, drop="no_ties", variant="ablate:no_ties", budget=small)
show_search(ties)
assert ties.verdict == "refuted"
