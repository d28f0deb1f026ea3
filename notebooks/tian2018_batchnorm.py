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
# # Batch Norm's backward pass is a projection (Tian 2018, Theorem 5)
#
# With the biased variance and eps = 0, dL/df = (c1/sigma) P_perp dL/df_bn, where P_perp
# projects onto the complement of span{1, f}. The derivations are written out at explicit batch
# sizes (N = 2, 3, 4) over the instance's own names f, g, c1, c0, and every link is checked entry by
# entry; the numeric face differentiates a real Batch Norm forward with JAX for N = 2..6; dropping
# eps = 0 breaks it.

# %%
from theorems.tian2018 import batchnorm as B
from verify.engine.search import Budget, search
from verify.notebook import show_derivation, show_instance, show_search

small = Budget(examples=4, batch=256)
bn = B.bn_projection
print(bn.statement)

# %% [markdown]
# ## The gradient formula at N = 3, link by link
#
# The claim's left side is SymPy's dL/df_k of L = sum_i g_i f_bn_i; the chain goes through the
# explicit Jacobian J = d f_bn / d f (chain rule), its closed form (quotient rule) and the
# symmetry of J for the batch weights 1/N.

# %%
(gradient,) = show_derivation(B.gradient_derivation(weighted=False, N=3))
assert gradient.verdict == "proved" and not gradient.scope.all_sizes

# %% [markdown]
# ## The projector's own properties at N = 2, 3 (kills 1, trace N - 2)

# %%
for component in ("kills_1", "rank_n_minus_2"):
    (fam,) = [d for d in bn.derivations if d.component == component]
    (res,) = show_derivation(fam)
    assert res.verdict == "proved"

# %% [markdown]
# ## The JAX property on one instance (a batch of N = 6, outside the derivations' sizes: tested)

# %%
one = show_instance(bn, {"N": 6}, seed=1)
assert all(one["holds"].values()) and max(r["over_tolerance"] for r in one["residuals"].values()) <= 1

# %% [markdown]
# ## The numeric face: jax.vjp through Batch Norm against the projection formula

# %%
claim = search(bn, budget=small)
show_search(claim)
assert claim.verdict == "confirmed" and claim.satisfied > 0

# %% [markdown]
# ## Dropping eps = 0: the projection claim fails

# %%
ablation = search(bn, drop="eps_zero", variant="ablate:eps_zero", budget=small)
show_search(ablation)
assert ablation.verdict == "refuted"
