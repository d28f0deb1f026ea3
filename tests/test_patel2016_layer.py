"""DRMM one-layer theorems (formalisations P1-P3): every face, every mutant, the necessary assumptions."""

import numpy as np
import pytest
from conftest import COVER, SMALL

from theorems.patel2016 import layer as L
from verify.engine.runner import run_theorem
from verify.registry import catalogue, get
from verify.values import Structure

IDS = [t.id for t in catalogue() if t.module == "theorems.patel2016.layer"]


def test_the_family_is_complete():
    assert set(IDS) == {
        "patel2016.switch-relu", "patel2016.switch-relu.positive-z", "patel2016.translation-maxpool",
        "patel2016.translation-maxpool.signed", "patel2016.global-shift-maxpool", "patel2016.maxpool-relu-commute",
        "patel2016.render-layer-convnet", "patel2016.render-layer-convnet.signed",
        "patel2016.render-layer-convnet.signed-overlapping",
    }
    for tid in IDS:
        t = get(tid)
        if tid == "patel2016.render-layer-convnet.signed-overlapping":
            continue  # a stated non-theorem, refuted numerically and without a symbolic claim
        assert t.derivation is not None
        assert t.expect == "false" or len(t.mutants) >= 3, tid


@pytest.mark.parametrize("tid", IDS)
def test_theorem_comes_out_as_expected(tid, tmp_path):
    thm = get(tid)
    report = run_theorem(thm, faces=("symbolic", "numeric", "mutants"), budget=COVER, out_dir=tmp_path)
    assert report.ok, report.problems
    if thm.expect == "true":
        assert report.numeric.coverage["covered"] == report.numeric.coverage["structures"] > 0  # the whole small scope
        # every derivation of the family is over symbolic sizes: proved for all sizes
        assert report.symbolic.verdict == "proved"
        assert all(c.symbolic.scope.all_sizes for c in report.symbolic.claims)
        assert report.numeric.verdict == "confirmed"
        assert report.numeric.satisfied > 0  # non-vacuous
        assert report.numeric.max_ratio < 1.0
    else:
        assert report.numeric.verdict == "refuted" and report.numeric.counterexample.real
    assert all(m.refuted for m in report.mutants)


@pytest.mark.parametrize(
    "tid, assumption",
    [("patel2016.render-layer-convnet", "z_nonneg"), ("patel2016.translation-maxpool", "z_nonneg"),
     ("patel2016.switch-relu.positive-z", "z_positive")],
)
def test_sign_assumptions_are_necessary_with_a_small_witness(tid, assumption, tmp_path):
    report = run_theorem(get(tid), faces=("ablate",), budget=SMALL, out_dir=tmp_path)
    (ablation,) = [a for a in report.ablations if a.assumption == assumption]
    assert ablation.verdict == "necessary"
    cx = ablation.search.counterexample
    assert cx.real and cx.residual >= 0.5
    assert (cx.instance["z"] < 0).any()  # the witness really violates the dropped assumption
    assert sum(v.size for v in cx.instance.values()) <= 6  # shrunk to a handful of numbers


def test_global_shift_counterexample_is_two_windows():
    report = run_theorem(get("patel2016.global-shift-maxpool"), faces=("numeric", "symbolic"), budget=COVER)
    cx = report.numeric.counterexample
    assert cx.structure["K"] == 2  # one window cannot tell a shared shift from independent ones
    assert report.symbolic.verdict == "refuted"


def test_brute_force_matches_a_hand_computed_instance():
    # z = (1, -2), u = (3, 1): best switches keep only z1 u1 = 3 (z2 u2 = -2 is dropped)
    z, u = np.array([1.0, -2.0]), np.array([3.0, 1.0])
    assert float(L.switch_max(z, u)) == 3.0
    # windows [5, -1] and [0, 2] with z = (1, 1): max-pooling gives 5 + 2 = 7
    v = np.array([5.0, -1.0, 0.0, 2.0])
    assert float(L.translation_max(np.ones(2), v, 2, 2, 2)) == 7.0
    # a rendering layer: Gamma = I (2x2), one window of 2, z = 2: 2 * max(ReLU(I)) = 2 * 3
    s = Structure({"KP": (1, 2), "D": 2})
    x = {"Gamma": np.eye(2), "I": np.array([3.0, -4.0]), "z": np.array([2.0])}
    assert float(L.render_max(x["Gamma"], x["I"], x["z"], 1, 2)) == 6.0
    assert float(L.render_layer.property(s, x).value) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_the_signed_layer_over_overlapping_windows_is_refuted_at_every_seed(seed):
    """Shared switches over overlapping windows (stride 1) break the signed layer: an exact solver
    finds a counterexample at K = 3, P = 2; the default search refutes it at seeds 0-4, with a
    witness that is real at 50 digits."""
    from verify.engine.search import Budget, search

    res = search(get("patel2016.render-layer-convnet.signed-overlapping"), budget=Budget(), seed=seed)
    assert res.verdict == "refuted" and res.counterexample.real
