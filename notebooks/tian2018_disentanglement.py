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
# # Expressibility and disentanglement on the matrix form (Tian 2018, Theorems 6-9)
#
# Binary factors, events in lexicographic order. A factorised transition P_ab (a Kronecker
# product of small row-stochastic factors over a partition of beta's factors), separable
# weights and a disentangled F_beta give a disentangled F_alpha (T8); the weight update stays
# separable only if the gradient is centred (T9). Vertices of the rows of P survive a
# full-row-rank F (T7), and all-vert transitions let a ReLU network fit the identity (T6).
# The backward direction, which the paper leaves open, is false as stated: search finds a
# witness, and a block form holds.

# %%
import numpy as np

from theorems.tian2018 import disentanglement as M
from verify.engine.rates import failure_rate
from verify.engine.search import Budget, search
from verify.models import factors, linalg
from verify.notebook import show_derivation, show_instance, show_search
from verify.registry import get
from verify.values import Structure

small = Budget(examples=4, batch=128)
t8 = get("tian2018.thm8.disentangled-forward")
print(t8.statement)

# %% [markdown]
# ## T8: the Kronecker identities, BN and ReLU per column (symbolic, factor shapes up to 2 x 4)

# %%
assert show_derivation(t8).verdict.startswith("proved")

# %% [markdown]
# ## The JAX property on one instance
#
# Partition {0, 1}, {2}: beta has three binary factors (8 events), alpha two (4 events).
# Every component of the residual (disentanglement of F_alpha and agreement with the
# factor-level formula, for identity, ReLU, BN and ReLU + BN) is at rounding level.

# %%
one = show_instance(t8, {"partition": ((0, 1), (2,))}, seed=2024, Pmix=0.0, Fmix=0.0, Wleak=0.0)
P, F, W = M.fact_parts(Structure(one["structure"]), one["instance"])
print("F_beta disentangled:", factors.is_disentangled(F), " W separable:", factors.is_separable(W, one["structure"]["partition"]))
assert all(one["holds"].values()) and max(r["over_tolerance"] for r in one["residuals"].values()) <= 1

# %% [markdown]
# ## T8 numerically, and dropping the separability of W

# %%
claim = search(t8, budget=small)
show_search(claim)
assert claim.verdict == "confirmed" and claim.satisfied > 0
ablation = search(t8, drop="separable_w", variant="ablate:separable_w", budget=small)
show_search(ablation)
assert ablation.verdict == "refuted"

# %% [markdown]
# ## T9: the off-block entries of Delta W carry a factor 1^T g~ = 0; without centring they do not vanish

# %%
t9 = get("tian2018.thm9.update-separable")
assert show_derivation(t9).verdict.startswith("proved")
uncentred = search(t9, drop="centred_g", variant="ablate:centred_g", budget=small)
show_search(uncentred)
assert uncentred.verdict == "refuted"

# %% [markdown]
# ## T7: vertices survive a full-row-rank F; random ReLU features are often rank-deficient
#
# The paper remarks that random weights give a full-rank F "with probability 1". The engine
# measures how often F = ReLU(P W) is rank-deficient (the same measurement `verify run` stores
# in the certificate): a row of P W is entirely <= 0 with probability about 2^-n, and more.

# %%
t7 = get("tian2018.thm7.vertices-preserved")
assert show_derivation(t7).verdict.startswith("proved")
rank_claim = get("tian2018.thm7.random-weights-full-rank")
for shape in [(4, 4, 4), (4, 4, 8)]:
    r = failure_rate(rank_claim, {"shape": shape}, instances=2048, batch=512, seed=0)
    print(f"shape {shape}: rank-deficient in {r['failing']} of {r['instances']} draws, rate {r['rate']:.3f}, "
          f"95% interval {r['interval95'][0]:.3f}-{r['interval95'][1]:.3f}")
    assert r["rate"] > 0.01

# %% [markdown]
# ## T6: an all-vert P admits ReLU weights giving the identity (LP construction)
#
# Four rows in a 3-column simplex: P has rank 3, so no linear map gives the 4 x 4 identity
# (loss >= 4 - 3 = 1), but ReLU(P W) = I exactly.

# %%
P = np.array([[0.7, 0.2, 0.1], [0.1, 0.7, 0.2], [0.2, 0.1, 0.7], [0.45, 0.45, 0.1]])
print("vertices:", linalg.vertices(P))
W = M.relu_identity_weights(P)
F = np.maximum(P @ W, 0)
print("loss ||ReLU(P W) - I||^2 =", np.sum((F - np.eye(4)) ** 2), "; rank(P) =", np.linalg.matrix_rank(P))
assert np.sum((F - np.eye(4)) ** 2) < 1e-12

# %% [markdown]
# ## The open backward conjecture: false as stated, true blockwise

# %%
conj = search(get("tian2018.conj.backward-disentangled"), budget=small)
show_search(conj)
assert conj.verdict == "refuted"
block = search(get("tian2018.conj.backward-block-disentangled"), budget=small)
show_search(block)
assert block.verdict == "confirmed"
