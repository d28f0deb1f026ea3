"""Tian (2018), "A theoretical framework for deep locally connected ReLU network": the
teacher-student reformulation (:mod:`.reformulation`, Theorems 1-4), Batch Norm's backward pass as
a projection (:mod:`.batchnorm`, Theorem 5), expressibility and disentanglement
(:mod:`.disentanglement`, Theorems 6-9). Ids: ``tian2018.*``."""
