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
# # Deep max-sum inference in the DRMM is a convnet (Patel et al., formalisations P4-P6)
#
# "Push the max to the right", layer by layer: with the latents above layer $l$ fixed, layer $l$
# is one convnet layer weighted by $z_l = \Lambda_{g_{l+1}} \cdots \Lambda_{g_L} \mu_c \ge 0$
# (under H3); exchanging the finite sums over units then gives layer $l+1$'s objective with input
# $u_l$. This notebook shows that argument as a checked chain at depth 2, shows that the same chain
# fails without H3, lists the scope the engine computes for P5 (depths 1 to 3), and runs a small
# search that covers depth 3.

# %%
from theorems.patel2016 import deep as T
from verify.engine.search import Budget, search
from verify.notebook import show_derivation, show_search
from verify.symbolic import check_derivation

p5 = T.deep_maxsum
print(p5.statement)

# %% [markdown]
# ## P5 at depth 2 (K1 = 2 units, K2 = 1; every window size, pixel count and class)
# The chain substitutes the one-layer fact (itself a chain: max-sum rule, unfold one unit's
# latents, ReLU is positively homogeneous, move the weight out of the window's max) at layer 1,
# exchanges the sums over units (written out at these unit counts) and substitutes it at layer 2.

# %%
(depth2,) = show_derivation(T.push_max_derivation(((2, None), (1, None))))
assert depth2.verdict == "proved" and dict(depth2.scope.sizes[0]) == {"depth": 2, "K1": 2, "K2": 1}

# %% [markdown]
# Without H3 (a signed upper dictionary and template) the weights of layer 1 are no longer
# non-negative: the same chain is not confirmed, and the claim itself is refuted at an exact point.

# %%
signed = check_derivation(T._push_max_derivation(T._Net(((2, None), (1, None)), signed=True)))
print(signed.verdict, "-", signed.gap[:200])
print("witness:", signed.witness)
assert signed.verdict == "refuted"

# %% [markdown]
# ## The scope the engine computes for P5: one chain per depth
# Depth 1 for every size; depths 2 and 3 at each pattern of unit counts of the architectures.

# %%
p5_value = check_derivation(p5.derivations[0])
print("verdict: " + p5_value.verdict)
print("scope:", p5_value.scope)
assert p5_value.verdict == "proved" and {dict(s)["depth"] for s in p5_value.scope.sizes} == {1, 2, 3}

# %% [markdown]
# ## A small search, from the small scope (every architecture, both depth-3 ones included)
# Six batches: three go to structures spread over the small scope from its simplest to its
# largest (the depth-3 architecture with 2048 joint configurations, brute-forced per instance).
# Instances whose joint-MAP value is 0 for every class are counted apart (a trivial regime).

# %%
result = search(p5, budget=Budget(examples=6, batch=128))
show_search(result)
print("covered:", result.coverage, "| non-trivial:", result.nontrivial, "| per regime:", result.per_regime)
depths = {len(r["structure"]["layers"]) for r in result.structures if r["nontrivial"]}
assert result.verdict == "confirmed" and 3 in depths
