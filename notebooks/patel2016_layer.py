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
# # One DRMM layer is one convnet layer (Patel et al., formalisations P1-P3)
#
# "Push the max to the right": max-sum inference over the switches and translations of one
# rendering layer separates into independent two-case maxima, which are ReLU and max-pooling.
# This notebook walks through the checked derivation, evaluates the JAX property, runs a small
# search, and drops the non-negativity assumption to get a counterexample.

# %%
from verify.engine.search import Budget, search
from verify.notebook import show_derivation, show_instance, show_search
from verify.registry import get

small = Budget(examples=4, batch=256)
p1 = get("patel2016.switch-relu")
print(p1.statement)

# %% [markdown]
# ## P1: max over binary switches is ReLU, for every D
# Separability (checked on the SymPy expression), then a case split that covers every sign.

# %%
assert show_derivation(p1).verdict == "proved"


# %% [markdown]
# ## The JAX property on one instance (D = 4): every component is a residual against its tolerance

# %%
one = show_instance(p1, {"D": 4}, seed=1)
assert all(one["holds"].values()) and max(r["over_tolerance"] for r in one["residuals"].values()) <= 1

# %% [markdown]
# ## The numeric face: float64, jit(vmap), against brute force over all 2^D switch settings

# %%
claim = search(p1, budget=small)
show_search(claim)
assert claim.verdict == "confirmed"

# %% [markdown]
# ## A mutant must be refuted: ReLU replaced by |.|

# %%
mutant = p1.mutant("abs_not_relu")
refuted = search(p1, prop=mutant.property, variant="mutant:abs_not_relu", budget=small)
show_search(refuted)
assert refuted.verdict == "refuted"

# %% [markdown]
# ## P3: a rendering layer is a convnet layer, and z >= 0 is necessary

# %%
p3 = get("patel2016.render-layer-convnet")
assert show_derivation(p3).verdict == "proved"
ablation = search(p3, drop="z_nonneg", variant="ablate:z_nonneg", budget=small)
show_search(ablation)
assert ablation.verdict == "refuted" and ablation.counterexample.real
