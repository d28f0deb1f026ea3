"""Long hunts (verify.hunt): the same seed gives the same answer with one process, two
worker processes and Ray; a stopped hunt resumes where it stopped."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from verify.hunt import hunt, plan, reference
from verify.registry import load_file

SMALL = dict(instances=8 * 256, batch=256, task_batches=1)


DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def theorems():
    return load_file(DATA / "true_theorem.py")[0], load_file(DATA / "false_theorem.py")[0]


def _same(a, b):
    assert (a.verdict, a.instances, a.satisfied, a.failing_task, a.max_ratio) == \
           (b.verdict, b.instances, b.satisfied, b.failing_task, b.max_ratio)
    if a.counterexample is not None:
        assert a.counterexample.structure == b.counterexample.structure
        assert {k: v.tolist() for k, v in a.counterexample.instance.items()} == \
               {k: v.tolist() for k, v in b.counterexample.instance.items()}


def test_the_plan_spreads_the_budget_over_the_small_scope(theorems):
    true, _ = theorems
    tasks = plan(true, 10 * 256, 256, 2)
    assert sum(t.batches for t in tasks) == 10
    assert {json.dumps(t.structure) for t in tasks} == {json.dumps({"n": n}) for n in range(1, 5)}


def test_one_process_and_two_workers_agree(theorems):
    true, false = theorems
    for thm in (true, false):
        one = hunt(thm, reference(thm), seed=3, workers=1, **SMALL)
        two = hunt(thm, reference(thm), seed=3, workers=2, **SMALL)
        _same(one, two)
    assert one.verdict == "refuted" and one.counterexample.refutes  # ReLU is not additive
    assert one.tasks_done < one.tasks or one.failing_task == one.tasks - 1  # it stopped at the failure


def test_a_true_claim_survives_and_every_instance_is_counted(theorems):
    true, _ = theorems
    res = hunt(true, reference(true), seed=0, **SMALL)
    assert res.verdict == "confirmed" and res.instances == 8 * 256 and res.tasks_done == res.tasks == 8


def test_a_stopped_hunt_resumes_where_it_stopped(theorems, tmp_path):
    true, _ = theorems

    class Stop(Exception):
        pass

    def stop_after_three(p):
        if p["tasks_done"] == 3:
            raise Stop

    with pytest.raises(Stop):
        hunt(true, reference(true), seed=1, state=tmp_path, progress=stop_after_three, **SMALL)
    resumed = hunt(true, reference(true), seed=1, state=tmp_path, **SMALL)
    assert resumed.resumed == 3 and resumed.tasks_done == 8
    _same(resumed, hunt(true, reference(true), seed=1, **SMALL))


def test_the_cli_hunts_and_says_what_to_install_for_ray(data, tmp_path, capsys):
    from verify.cli import main

    code = main(["hunt", str(data / "false_theorem.py"), "--budget", "1024", "--batch", "256", "-q",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    # the file states a false claim as a theorem: refuted, so the verification failed (exit 1)
    assert code == 1 and "refuted" in out and "replay: verify replay" in out
    if importlib.util.find_spec("ray") is None:
        assert main(["hunt", str(data / "true_theorem.py"), "--ray", "local", "-q"]) == 2
        assert "pip install 'dlverify[ray]'" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray is not installed (pip install 'dlverify[ray]'): the Ray executor is not exercised")
def test_a_local_ray_cluster_gives_the_same_answers(theorems):
    import ray

    true, false = theorems
    ray.init(address=None, num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        for thm in (true, false):
            _same(hunt(thm, reference(thm), seed=5, ray="auto", **SMALL), hunt(thm, reference(thm), seed=5, **SMALL))
    finally:
        ray.shutdown()
