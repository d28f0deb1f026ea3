"""The `verify` command through a subprocess, as a user runs it."""

import json
import subprocess
import sys

import pytest

SMALL = ["--examples", "3", "--batch", "128"]


def verify(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "verify.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def assert_one_line_error(proc, code=2):
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("verify: error:"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_list_shows_the_catalogue():
    proc = verify("list", "--json")
    assert proc.returncode == 0
    ids = {t["id"] for t in json.loads(proc.stdout)}
    assert {"patel2016.switch-relu", "patel2016.render-layer-convnet"} <= ids


def test_the_catalogue_index_is_current_and_lists_what_importing_lists():
    """``theorems/index.json`` was written from the catalogue as it is (``python -m verify.index``),
    so ``verify list`` need not import it; its rows are those the imported catalogue gives."""
    from verify import index
    from verify.registry import catalogue

    rows = index.cached()
    assert rows is not None, "theorems/index.json is stale: run python -m verify.index"
    assert rows == [index.row(t) for t in catalogue()]


def test_list_imports_neither_jax_nor_sympy():
    code = ("import sys; from verify.cli import main; code = main(['list', 'patel2016']); "
            "assert code == 0; print(sorted(m for m in ('jax', 'sympy', 'hypothesis') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert "patel2016.switch-relu" in proc.stdout


def test_an_unknown_id_is_answered_from_the_index_without_importing_the_catalogue():
    code = ("import sys\nfrom verify.registry import get\nfrom verify.errors import UsageError\n"
            "try:\n    get('patel2016.switch-rel')\nexcept UsageError as e:\n    print(e)\n"
            "print(sorted(m for m in sys.modules if m.startswith('theorems.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    message, imported = proc.stdout.strip().splitlines()[-2:]
    assert "did you mean patel2016.switch-relu" in message
    assert imported == "[]"
    # and so is `verify check` of one: neither SymPy nor a theorem module is imported before it says so
    code = ("import sys\nfrom verify.cli import main\ncode = main(['check', 'patel2016.switch-rel'])\n"
            "print(code, sorted(m for m in ('sympy',) if m in sys.modules), "
            "sorted(m for m in sys.modules if m.startswith('theorems.') and m.count('.') > 1))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "did you mean patel2016.switch-relu" in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "2 [] []", proc.stdout


def test_a_stale_index_is_not_used(monkeypatch):
    from verify import index

    monkeypatch.setattr(index, "sources_hash", lambda: "0" * 64)
    assert index.cached() is None  # the catalogue is then imported: slow, never wrong


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "patel2016.no-such-theorem"], "unknown theorem id"),
        (["check", "patel2016.switch-rel"], "did you mean patel2016.switch-relu"),
        (["check", "tests/data/no_theorem.py"], "defines no theorem"),
        (["check", "tests/data/malformed_theorem.py"], "dotted lower-case"),
        (["check", "tests/data/missing.py"], "no such file"),
        (["run", "--examples", "-3"], "examples must be between"),
        (["run", "--seed", "banana"], "seed must be an integer"),
        (["run", "--frobnicate"], "unrecognized arguments"),
        (["replay", "tests/data/true_theorem.py"], "not a counterexample file"),
        (["ablate", "patel2016.render-layer-convnet", "--assumption", "nope"], "no assumption"),
    ],
)
def test_bad_input_gets_one_clear_line(args, message):
    proc = verify(*args)
    assert_one_line_error(proc)
    assert message in proc.stderr


def test_false_user_theorem_is_refuted_and_replays(tmp_path):
    out = tmp_path / "cx"
    proc = verify("check", "tests/data/false_theorem.py", "--out", str(out), *SMALL)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "refuted" in proc.stdout and "replay: verify replay" in proc.stdout
    (path,) = out.glob("user.relu-additive--claim--*.json")
    replayed = verify("replay", str(path), "--json")
    assert replayed.returncode == 0, replayed.stderr
    data = json.loads(replayed.stdout)
    assert data["reproduced"] is True and data["structure"] == {"n": 1}


def test_nan_property_fails_and_says_why():
    proc = verify("check", "tests/data/nan_theorem.py", *SMALL)
    assert proc.returncode == 1
    assert "non-finite" in proc.stdout and "Traceback" not in proc.stderr


def test_vacuous_theorem_fails():
    proc = verify("check", "tests/data/vacuous_theorem.py", *SMALL)
    assert proc.returncode == 1 and "vacuous" in proc.stdout


def test_run_json_and_certificates(tmp_path):
    certs = tmp_path / "certs"
    proc = verify("run", "patel2016.render-layer-convnet", "--json", "--certificates", str(certs),
                  "--out", str(tmp_path / "cx"), *SMALL)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    (thm,) = report["theorems"]
    assert thm["numeric"]["verdict"] == "confirmed" and thm["symbolic"]["verdict"] == "proved"
    assert [a["verdict"] for a in thm["ablations"]] == ["necessary"]
    assert json.loads((certs / "patel2016.render-layer-convnet.json").read_text())["ok"] is True
    tex = verify("cite", "patel2016.render-layer-convnet", "--certificates", str(certs))
    assert tex.returncode == 0 and tex.stdout.startswith("% needs") and r"\end{theorem}" in tex.stdout
    missing = verify("cite", "patel2016.switch-relu", "--certificates", str(certs))
    assert_one_line_error(missing)


def test_mutants_and_ablate_commands(tmp_path):
    proc = verify("mutants", "patel2016.maxpool-relu-commute", "--out", str(tmp_path), *SMALL)
    assert proc.returncode == 0 and "3/3 refuted" in proc.stdout
    proc = verify("ablate", "patel2016.render-layer-convnet", "--out", str(tmp_path), *SMALL)
    assert proc.returncode == 0 and "z_nonneg: necessary" in proc.stdout
    assert "without z_nonneg: witness" in proc.stdout


def test_help_explains_every_command():
    proc = verify("--help")
    assert proc.returncode == 0
    for command in ("run", "check", "mutants", "ablate", "list", "replay", "cite", "graph"):
        assert command in proc.stdout


def test_the_command_freezes_what_its_imports_made_in_its_own_process_only(tmp_path, data):
    """``verify`` moves the objects its imports made out of the collector's view (gc.freeze) in its
    own processes; a Python program that calls main() keeps its collector as it was."""
    import gc

    from verify import cli

    args = ["check", str(data / "true_theorem.py"), *SMALL, "--certificates", str(tmp_path / "c"),
            "--out", str(tmp_path / "x")]
    before = gc.get_freeze_count()
    assert cli.main(args) == 0
    assert gc.get_freeze_count() == before
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count(), file=sys.stderr))\n"
            f"sys.argv = ['verify', *{args!r}]\n"
            "from verify.cli import entry\nentry()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stderr.split("frozen")[-1]) > 100_000  # JAX's and SymPy's objects


def test_worker_processes_do_not_change_the_results(tmp_path, data):
    """``--jobs 2`` runs theorems in two spawned workers; each run depends only on the seed, so the
    certificates equal those of one process (apart from timings and dates)."""

    def certs(jobs):
        out = tmp_path / f"jobs{jobs}"
        proc = verify("run", str(data / "true_theorem.py"), str(data / "false_theorem.py"), *SMALL, "--no-ablate",
                      "--jobs", str(jobs), "--certificates", str(out), "--out", str(out / "cx"))
        assert proc.returncode == 1, proc.stderr  # the false theorem fails, in both
        table = proc.stdout.replace(f"jobs{jobs}", "jobsN")  # the witnesses' paths name the directory
        return {p.name: _timeless(json.loads(p.read_text())) for p in sorted(out.glob("*.json"))}, table

    (one, table_one), (two, table_two) = certs(1), certs(2)
    assert one == two and len(one) == 2
    # the workers finish in any order; the table lists the theorems in the order given
    assert table_one == table_two
    assert table_one.index("user.relu-odd-part") < table_one.index("user.relu-additive")


def test_workers_are_handed_the_longest_theorems_first(monkeypatch):
    """By what each took when it last ran; one never run before goes first (it may be long), then
    by its number of mutants and assumptions."""
    from types import SimpleNamespace

    from verify import cli
    from verify.engine import programs

    def thm(tid, mutants=0):
        return SimpleNamespace(id=tid, mutants=[None] * mutants, assumptions=[])

    theorems = [thm("a"), thm("b"), thm("c", mutants=3), thm("d", mutants=1), thm("e")]
    monkeypatch.setattr(programs, "durations", lambda: {"a": 5.0, "b": 40.0, "e": 0.5})
    assert [theorems[i].id for i in cli._longest_first(theorems)] == ["c", "d", "b", "a", "e"]


def test_a_run_remembers_what_each_theorem_took(tmp_path, monkeypatch):
    from verify.engine import programs

    monkeypatch.setenv("DLVERIFY_XLA_CACHE", str(tmp_path))
    programs.remember_durations({"x": 1.5})
    programs.remember_durations({"y": 2.25})
    assert programs.durations() == {"x": 1.5, "y": 2.25}
    (tmp_path / "durations.json").write_text("not json")  # damaged: no history, no failure
    assert programs.durations() == {}
    monkeypatch.setenv("DLVERIFY_XLA_CACHE", "off")
    programs.remember_durations({"z": 1.0})
    assert programs.durations() == {}


def _timeless(value):
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in ("created", "seconds", "file")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def test_without_z3_the_run_says_what_to_install(data, tmp_path, monkeypatch, capsys):
    """The message names the extra: ``[exact]`` is printed as text, not read as terminal markup."""
    from verify.cli import main
    from verify.exact import decide

    monkeypatch.setattr(decide, "z3", None)
    code = main(["check", str(data / "true_theorem.py"), *SMALL, "-q", "--out", str(tmp_path / "cx"),
                 "--certificates", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert code == 0 and "exact face skipped: z3-solver is not installed: pip install 'dlverify[exact]'" in out
