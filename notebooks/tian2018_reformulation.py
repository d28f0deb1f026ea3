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
# # Teacher-student reformulation (Tian 2018, Theorems 1-4)
#
# A student ReLU network's forward and backward passes, averaged over the inputs that share a
# teacher variable z_alpha, propagate along the teacher's hierarchy. With a finite teacher every
# conditional expectation is an exact finite sum, so each identity is checked to rounding. The
# matrix form (T4) holds for a lossless teacher; an XOR (lossy) teacher breaks it.

# %%
from verify.engine.search import Budget, search
from verify.models import teacher as TT
from verify.notebook import show_instance, show_search
from verify.registry import get

small = Budget(examples=2, batch=64)
t4 = get("tian2018.thm4.matrix-form")
print(t4.statement)

# %% [markdown]
# ## The JAX property on one instance (a lossless teacher of three levels)

# %%
one = show_instance(t4, structure=TT.structure("d4-deep", "lossless", 2), seed=1)
assert all(one["holds"].values()) and max(r["over_tolerance"] for r in one["residuals"].values()) <= 1

# %% [markdown]
# ## The numeric face on lossless teachers

# %%
claim = search(t4, budget=small)
show_search(claim)
assert claim.verdict == "confirmed" and claim.satisfied > 0

# %% [markdown]
# ## A lossy (XOR) teacher: the matrix form fails, with a small witness

# %%
xor = get("tian2018.thm4.matrix-form.xor-teacher")
refuted = search(xor, budget=small)
show_search(refuted)
assert refuted.verdict == "refuted" and refuted.counterexample.real

# %% [markdown]
# ## Theorem 2 where it is not Theorem 3
#
# A lossy teacher (each two-pixel leaf keeps one pixel, `drop_leaves`) on a DAG of three levels
# (leaf (2, 3) has two parents). The sampler makes focus, broadness and decorrelation hold by
# construction: a hierarchical P(x), tuple regions, and biases in gaps between the events'
# pre-activation ranges, so every gate is a function of its region's variable while some close.
# The weight update needs one more condition, `update_decorrelation`; without it (the paper's
# listed conditions alone) the search finds a counterexample.

# %%
wu = get("tian2018.thm2.weight-update")
finding = search(wu, drop="update_decorrelation", budget=small)
show_search(finding)
cx = finding.counterexample
assert finding.verdict == "refuted" and cx.real and len(cx.structure["tree"]) >= 5
assert cx.structure["teacher"] in ("drop_leaves", "count_leaves")
