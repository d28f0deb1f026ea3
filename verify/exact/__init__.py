"""Exact back-ends: decide a claim at explicit sizes with an SMT solver (:mod:`verify.exact.decide`),
and certify a counterexample by exact rationals or ball arithmetic (:mod:`verify.exact.ball`).

Both are optional: ``z3-solver`` and ``python-flint`` come with the ``exact`` extra
(``pip install 'dlverify[exact]'``). Without z3, :func:`~verify.exact.decide.decide` answers
``skipped`` and says why; without python-flint, :func:`~verify.exact.ball.certify` uses mpmath's
interval type. The submodules are imported on demand.
"""
