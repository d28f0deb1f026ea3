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
# projects onto the complement of span{1, f}. The derivation below holds for every N; the
# numeric face differentiates a real Batch Norm forward with JAX; dropping eps = 0 breaks it.

# %%
from verify.engine.search import Budget, search
from verify.notebook import show_derivation, show_instance, show_search
from verify.registry import get

small = Budget(examples=4, batch=256)
bn = get("tian2018.thm5.bn-projection")
print(bn.statement)

# %% [markdown]
# ## The derivation, step by step

# %%
assert show_derivation(bn).verdict == "proved"


# %% [markdown]
# ## The JAX property on one instance (a batch of N = 6)

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
