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
# The quadratic-form derivatives d(x^T A x)/dx = x^T (A + A^T) and d(x^T A x)/dA = x x^T, checked
# with explicit SymPy symbols and cross-checked against `jax.grad`. SymPy's own MatrixSymbol
# calculus returns 0 for some of these derivatives; the `Agrees` step catches that instead of
# trusting it. Then: max routes the gradient to the arg-max, and ties are where it breaks.

# %%
import sympy as sp

from verify.engine.search import Budget, search
from verify.notebook import show_derivation, show_instance, show_search
from verify.registry import get
from verify.symbolic import check_derivation

small = Budget(examples=4, batch=256)
quad = get("koo.backprop.quadratic-form")
print(quad.statement)

# %% [markdown]
# ## The derivation, with explicit symbols up to n = 3

# %%
assert show_derivation(quad).verdict.startswith("proved")


# %% [markdown]
# ## The JAX property on one instance (n = 3): increments and jax.grad against the derivative

# %%
one = show_instance(quad, {"n": 3}, seed=1)
assert all(one["holds"].values()) and max(r["over_tolerance"] for r in one["residuals"].values()) <= 1

# %% [markdown]
# ## A computer-algebra derivative that is silently wrong is flagged
# `sp.diff((x.T*A*x)[0, 0], x)` with MatrixSymbols returns 0; the mutant built on it is refuted
# by comparing with `jax.grad` at rational points.

# %%
A, x = sp.MatrixSymbol("A", 2, 2), sp.MatrixSymbol("x", 2, 1)
print("SymPy says d(x^T A x)/dx =", sp.diff((x.T * A * x)[0, 0], x))
wrong = quad.mutant("sympy_matrixsymbol_dx")
flagged = check_derivation(wrong.derivation)
print(flagged.verdict, "-", flagged.steps[-1].detail)
assert flagged.verdict == "refuted"

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
