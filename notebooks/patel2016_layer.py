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
# This notebook writes P1's derivation link by link (the engine checks each one as it is added),
# shows the checked derivations with the scope the engine computes, evaluates the JAX property,
# runs a small search, and drops the non-negativity assumption to get a counterexample.

# %%
from verify.engine.search import Budget, search
from verify.notebook import show_derivation, show_instance, show_search
from verify.registry import get

small = Budget(examples=4, batch=256)
p1 = get("patel2016.switch-relu")
print(p1.statement)

# %% [markdown]
# ## P1: max over binary switches is ReLU, for every D, written one link at a time
# The claim's left side is a max over $a \in \{0,1\}^D$ of a sum over a symbolic $D$. The first
# link pushes the max into the sum: the max-sum rule, whose premise (term $i$ reads only $a_i$) the
# engine checks on the expression. The second unfolds one switch's two values.

# %%
import sympy as sp

from verify import Algebra, MaxOver, MaxSum, Unfold, eq
from verify.notebook import check_link

a, z, u = sp.IndexedBase("a"), sp.IndexedBase("z", real=True), sp.IndexedBase("u", real=True)
i, D = sp.Symbol("i", integer=True), sp.Symbol("D", integer=True, positive=True)
lhs = MaxOver(sp.Sum(a[i] * z[i] * u[i], (i, 0, D - 1)), (a, [0, 1]))
step1 = eq(sp.Sum(MaxOver(a[i] * z[i] * u[i], (a, [0, 1])), (i, 0, D - 1)), MaxSum("term i reads only a_i"))
assert check_link(lhs, step1).status == "confirmed"
step2 = eq(sp.Sum(sp.Max(0, z[i] * u[i]), (i, 0, D - 1)), Unfold("one switch: 0 or 1"))
assert check_link(step1.expr, step2).status == "confirmed"
# a wrong link is caught: a shared switch for every term is not the max-sum rule
shared = eq(sp.Sum(MaxOver(sp.Symbol("b") * z[i] * u[i], (sp.Symbol("b"), [0, 1])), (i, 0, D - 1)), MaxSum("no"))
assert check_link(MaxOver(sp.Sum(sp.Symbol("b") * z[i] * u[i], (i, 0, D - 1)), (sp.Symbol("b"), [0, 1])),
                  shared).status == "unconfirmed"

# %% [markdown]
# The catalogue's derivations of P1 (one per component of the property: the value, the
# maximiser, the sign form), checked, with the scope the engine computed:

# %%
results = show_derivation(p1)
assert [r.verdict for r in results] == ["proved"] * 3 and all(r.scope.all_sizes for r in results)


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
(res,) = show_derivation(p3)
assert res.verdict == "proved" and str(res.scope) == "all sizes (D, K, P)"
ablation = search(p3, drop="z_nonneg", variant="ablate:z_nonneg", budget=small)
show_search(ablation)
assert ablation.verdict == "refuted" and ablation.counterexample.real
