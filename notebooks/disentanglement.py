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
# separable only if the gradient is centred (T9). The backward direction, left open by the
# paper, is false as stated: search finds a witness, and the block form holds.

# %%
import numpy as np

from theorems import tian2018_disentanglement as M
from verify.notebook import show_derivation, show_search
from verify.registry import get
from verify.search import Budget, search

small = Budget(examples=4, batch=128)
t8 = get("tian2018.thm8.disentangled-forward")
print(t8.statement)

# %% [markdown]
# ## T8: the Kronecker identities, BN and ReLU per column (symbolic, factor shapes up to 2 x 4)

# %%
assert show_derivation(t8).verdict.startswith("proved")

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

# %%
t7 = get("tian2018.thm7.vertices-preserved")
assert show_derivation(t7).verdict.startswith("proved")
rng = np.random.default_rng(0)


def deficient(m, n, draws=2000):
    bad = 0
    for _ in range(draws):
        P = np.exp(rng.normal(size=(m, m)) * 1.5)
        P /= P.sum(axis=1, keepdims=True)
        F = np.maximum(P @ rng.normal(size=(m, n)), 0)
        bad += np.linalg.matrix_rank(F, tol=1e-9 * max(np.abs(F).max(), 1e-300)) < m
    return bad / draws


rates = {(m, n): deficient(m, n) for m, n in [(4, 4), (4, 8)]}
print("fraction of rank-deficient ReLU(P W):", rates)
assert rates[(4, 4)] > 0.1

# %% [markdown]
# ## T6: an all-vert P admits ReLU weights giving the identity (LP construction)

# %%
P = np.array([[0.7, 0.2, 0.1], [0.1, 0.7, 0.2], [0.2, 0.1, 0.7], [0.4, 0.4, 0.2]])
print("vertices:", M.vertices(P))
W = M.relu_identity_weights(P)
F = np.maximum(P @ W, 0)
print("loss ||ReLU(P W) - I||^2 =", np.sum((F - np.eye(4)) ** 2), "; rank(P) =", np.linalg.matrix_rank(P))
assert np.sum((F - np.eye(4)) ** 2) < 1e-12  # a linear map P W has rank <= 3: loss >= 1

# %% [markdown]
# ## The open backward conjecture: false as stated, true blockwise

# %%
conj = search(get("tian2018.conj.backward-disentangled"), budget=small)
show_search(conj)
assert conj.verdict == "refuted"
block = search(get("tian2018.conj.backward-block-disentangled"), budget=small)
show_search(block)
assert block.verdict == "confirmed"
