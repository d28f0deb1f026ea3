"""Long hunts (verify.hunt): the result is a certificate of one face; the same seed gives equal
certificates (apart from timings and how it ran) with one process, two worker processes and Ray;
a stopped hunt resumes where it stopped and ends with the certificate of an uninterrupted one."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from verify.hunt import comparable, hunt, plan, reference
from verify.records.certificate import validate, write_certificate
from verify.registry import get, load_file

SMALL = dict(instances=8 * 256, batch=256, task_batches=1)
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def theorems():
    return load_file(DATA / "true_theorem.py")[0], load_file(DATA / "false_theorem.py")[0]


def _valid(cert):
    """The certificate follows the schema (when jsonschema is installed) and dlverify's reader."""
    validate(json.loads(json.dumps(cert)), "hunt certificate")
    if importlib.util.find_spec("jsonschema") is not None:
        from verify.records.io import dumps
        from verify.records.schema import validator

        validator("certificate").validate(json.loads(dumps(cert)))
    return cert


def _same(a, b):
    ca, cb = comparable(a.certificate()), comparable(b.certificate())
    assert ca == cb
    assert "created" not in ca and "run" not in ca["hunt"]  # what was left out: only how and when it ran


def test_the_plan_spreads_the_budget_over_the_small_scope_in_turn(theorems):
    true, _ = theorems
    tasks = plan(true, 10 * 256, 256, 2)
    assert sum(t.batches for t in tasks) == 10
    # 3, 3, 2 and 2 batches, in tasks of 2 taken structure by structure in turn
    assert [(t.structure["n"], t.first, t.batches) for t in tasks] == \
           [(1, 0, 2), (2, 0, 2), (3, 0, 2), (4, 0, 2), (1, 2, 1), (2, 2, 1)]
    per = {n: sum(t.batches for t in tasks if t.structure["n"] == n) for n in range(1, 5)}
    assert per == {1: 3, 2: 3, 3: 2, 4: 2}


def test_a_hunt_of_the_claim_certifies_the_numeric_face_only(theorems):
    true, _ = theorems
    res = hunt(true, reference(true), seed=0, **SMALL)
    cert = _valid(res.certificate())
    assert cert["ok"] and cert["problems"] == [] and cert["faces"] == ["numeric"]
    assert cert["symbolic"] is None and cert["mutants"] == [] and cert["ablations"] == []  # never claimed
    assert cert["numeric"]["verdict"] == "confirmed" and cert["numeric"]["instances_drawn"] == 8 * 256
    h = cert["hunt"]
    assert (h["instances_spent"], h["tasks_counted"], h["tasks"], h["stopped_at_task"]) == (8 * 256, 8, 8, None)
    assert "no derivation" in h["not_checked"] and h["run"]["executor"] == "process"
    assert sum(r["drawn"] for r in cert["numeric"]["structures"]) == 8 * 256
    assert sum(cert["numeric"]["residual_over_tolerance_histogram"].values()) == 8 * 256  # none left out
    assert [r["class"] for r in cert["trust"]] == ["tested"]


def test_one_process_and_two_workers_give_equal_certificates(theorems):
    true, false = theorems
    for thm in (true, false):
        one = hunt(thm, reference(thm), seed=3, workers=1, **SMALL)
        two = hunt(thm, reference(thm), seed=3, workers=2, **SMALL)
        _same(one, two)
        assert two.hunt["run"]["executor"] == "local-workers"
    cert = _valid(one.certificate())  # the false claim: refuted, so the theorem as stated did not verify
    assert one.verdict == "refuted" and one.counterexample.refutes and not cert["ok"]
    h = cert["hunt"]
    assert h["stopped_at_task"] is not None and h["tasks_counted"] == h["stopped_at_task"] + 1 < h["tasks"]
    assert h["instances_spent"] == cert["numeric"]["instances_drawn"] < h["instances_requested"]  # what it spent
    assert one.counterexample.shrink["found_by"].startswith(f"hunt task {h['stopped_at_task']}")


def test_a_mutant_hunt_is_ok_when_refuted_and_is_not_cited(theorems, tmp_path):
    from verify.errors import NotVerified
    from verify.registry import current_statement_hash
    from verify.render.cite import cite

    true, _ = theorems
    one = hunt(true, reference(true), variant="mutant:plus", seed=2, **SMALL)
    cert = _valid(one.certificate())
    assert cert["ok"] and cert["faces"] == ["mutants"] and cert["numeric"] is None
    assert cert["mutants"][0]["refuted"] and cert["mutants"][0]["numeric"]["counterexample"]["variant"] == "mutant:plus"
    write_certificate(cert, tmp_path)
    with pytest.raises(NotVerified, match="a hunt of mutant:plus only"):
        cite(true.id, "markdown", tmp_path, current_statement_hash)


def test_an_ablation_hunt_finds_the_assumption_necessary():
    thm = get("patel2016.switch-relu.positive-z")
    name = thm.assumptions[0].name
    res = hunt(thm, reference(thm), variant=f"ablate:{name}", seed=0, instances=4 * 512, batch=512, task_batches=1)
    cert = _valid(res.certificate())
    assert cert["faces"] == ["ablate"] and cert["ablations"][0]["verdict"] == "necessary" and cert["ok"]
    assert cert["ablations"][0]["search"]["counterexample"]["assumptions_held"][name] is False


class _Stop(Exception):
    """A stop in the middle of a hunt (as Ctrl-C or SIGTERM would stop it)."""


def _stop_after(tasks: int):
    def progress(p):
        if p["tasks_done"] == tasks:
            raise _Stop
    return progress


def test_a_stopped_hunt_resumes_where_it_stopped(theorems, tmp_path):
    true, _ = theorems
    with pytest.raises(_Stop):
        hunt(true, reference(true), seed=1, state=tmp_path, progress=_stop_after(3), **SMALL)
    (log,) = tmp_path.glob("hunt-*.jsonl")
    assert len(log.read_text().splitlines()) == 1 + 3  # the plan, then one line per finished task
    with open(log, "a") as fh:
        fh.write('{"task": 7, "drawn": 25')  # a stop in the middle of writing a line: that task runs again
    resumed = hunt(true, reference(true), seed=1, state=tmp_path, **SMALL)
    assert resumed.hunt["run"]["tasks_resumed"] == 3 and resumed.hunt["tasks_counted"] == 8
    _same(resumed, hunt(true, reference(true), seed=1, **SMALL))
    other = hunt(true, reference(true), seed=2, state=tmp_path, **SMALL)  # another plan: nothing to resume
    assert other.hunt["run"]["tasks_resumed"] == 0


def test_a_hunt_of_changed_code_does_not_resume_the_old_state(data, tmp_path):
    """The statement unchanged but the file edited: its counts are not the new code's."""
    import shutil

    src = tmp_path / "t.py"
    shutil.copy(data / "true_theorem.py", src)
    (before,) = load_file(src)
    with pytest.raises(_Stop):
        hunt(before, reference(before), seed=1, state=tmp_path / "s", progress=_stop_after(2), **SMALL)
    src.write_text(src.read_text() + "\n# edited\n")
    (after,) = load_file(src)
    assert after.statement_hash() == before.statement_hash() and after.module_sha256 != before.module_sha256
    assert hunt(after, reference(after), seed=1, state=tmp_path / "s", **SMALL).hunt["run"]["tasks_resumed"] == 0
    assert hunt(before, reference(before), seed=1, state=tmp_path / "s", **SMALL).hunt["run"]["tasks_resumed"] == 2


def test_the_cli_writes_the_certificate_and_says_what_to_install_for_ray(data, tmp_path, capsys):
    from verify.cli import main

    certs = tmp_path / "certs"
    code = main(["hunt", str(data / "false_theorem.py"), "--budget", "1024", "--batch", "256", "-q",
                 "--out", str(tmp_path / "cx"), "--certificates", str(certs), "--json"])
    cert = _valid(json.loads(capsys.readouterr().out))
    # the file states a false claim as a theorem: refuted, so the verification failed (exit 1)
    assert code == 1 and cert["numeric"]["verdict"] == "refuted" and not cert["ok"]
    assert json.loads((certs / "user.relu-additive.json").read_text())["hunt"] == cert["hunt"]
    assert list((tmp_path / "cx").glob("*.json"))
    code = main(["hunt", str(data / "true_theorem.py"), "--budget", "1024", "--batch", "256", "-q",
                 "--certificates", str(certs)])
    out = capsys.readouterr().out
    assert code == 0 and "confirmed on 1,024 instances" in out and "certificate:" in out
    if importlib.util.find_spec("ray") is None:
        assert main(["hunt", str(data / "true_theorem.py"), "--ray", "local", "-q"]) == 2
        assert "pip install 'dlverify[ray]'" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray is not installed (pip install 'dlverify[ray]'): the Ray executor is not exercised")
def test_a_local_ray_cluster_gives_equal_certificates(theorems):
    import ray

    true, false = theorems
    # a new local cluster of 2 CPUs on 127.0.0.1, whatever cluster may be running here
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        for thm in (true, false):
            on_ray = hunt(thm, reference(thm), seed=5, ray="auto", **SMALL)
            assert on_ray.hunt["run"]["executor"] == "ray" and on_ray.hunt["run"]["workers"] == 2
            _same(on_ray, hunt(thm, reference(thm), seed=5, **SMALL))
    finally:
        ray.shutdown()
