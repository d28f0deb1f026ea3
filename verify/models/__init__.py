"""Exact models that theorem families share: the deep rendering mixture model (:mod:`.drmm`),
the finite teacher and its student (:mod:`.teacher`), binary factors (:mod:`.factors`) and
LAPACK-free linear algebra (:mod:`.linalg`). Written over ``xp``, so they run in JAX and at 50
digits alike."""
