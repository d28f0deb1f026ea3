"""Fault injection: full and read-only file systems, directories without permission, SIGINT and
SIGTERM mid-run, two runs into one directory, corrupt caches and records, and the bad theorem
files a new user may write. Each test checks that nothing previously good is damaged and that
the exit code and the one-line message are the documented ones (README, "Exit codes").

What this machine cannot set up (a tmpfs mount needs root; a directory without permission needs
a user that permission bits bind) is skipped with a message saying so. Searches are tiny
(``--budget 64 --batch 64``) and theorems small, so the module stays well under a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from verify import cli
from verify.errors import VerifyError
from verify.records.certificate import read_certificate
from verify.records.counterexample import Counterexample
from verify.records.io import OutputError, write_atomic

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
TRUE = str(DATA / "true_theorem.py")
FALSE = str(DATA / "false_theorem.py")
TINY = ["--budget", "64", "--batch", "64", "-q"]


def verify_proc(*args: str, cwd: Path | str | None = None, env: dict | None = None, prefix: tuple = ()):
    return subprocess.run([*prefix, sys.executable, "-m", "verify.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env={**os.environ, **(env or {})}, timeout=300, check=False)


def verify_here(capfd, *args: str) -> tuple[int, str, str]:
    """``verify ARGS`` in this process (cheaper than a subprocess): exit code, stdout, stderr."""
    capfd.readouterr()
    code = cli.main(list(args))
    out, err = capfd.readouterr()
    return code, out, err


def one_line(err: str, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("verify: error:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def snapshot(*dirs: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for d in dirs if d.is_dir() for p in sorted(d.iterdir()) if p.is_file()}


def no_temporary_files(*dirs: Path) -> None:
    left = [p.name for d in dirs if d.is_dir() for p in d.iterdir() if p.name.endswith(".tmp")]
    assert not left, f"temporary files left behind: {left}"


def all_records_valid(certs: Path, cxs: Path) -> None:
    for p in certs.glob("*.json"):
        read_certificate(p)
    for p in cxs.glob("*.json"):
        Counterexample.load(p)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A directory with a good certificate (true theorem) and a good counterexample (false theorem)."""
    d = tmp_path_factory.mktemp("good")
    assert cli.main(["check", TRUE, FALSE, *TINY, "--out", str(d / "cx"), "--certificates", str(d / "c")]) == 1
    assert len(list((d / "c").glob("*.json"))) == 2 and len(list((d / "cx").glob("*.json"))) == 1
    return d


# ------------------------------------------------------------------------------------ mounts

def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a small tmpfs needs root and mount(8): not available here")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "512k")
    yield disk
    _umount(disk)


def _fill(disk: Path) -> None:
    with open(disk / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    with pytest.raises(OutputError):
        write_atomic(disk / "probe", b"x" * 4096)


def test_a_full_disk_is_refused_before_any_work_and_the_good_records_survive(capfd, good, small_disk):
    certs, cxs = small_disk / "c", small_disk / "cx"
    shutil.copytree(good / "c", certs)
    shutil.copytree(good / "cx", cxs)
    before = snapshot(certs, cxs)
    _fill(small_disk)
    code, out, err = verify_here(capfd, "check", TRUE, FALSE, *TINY, "--out", str(cxs), "--certificates", str(certs))
    assert code == 2 and out == ""  # refused by the check before any search: no results, no table
    one_line(err, "--out", "cannot write there: No space left on device")
    # a write that fails half-way (the disk is full) leaves the old file as it was and no temporary file
    target = next(iter(before))
    with pytest.raises(OutputError, match="No space left on device"):
        write_atomic(target, b"{}" * 200_000)
    assert snapshot(certs, cxs) == before
    no_temporary_files(certs, cxs)
    code, _, err = verify_here(capfd, "report", "--certificates", str(certs), "-o", str(small_disk / "r.html"))
    assert code == 2 and not (small_disk / "r.html").exists()
    one_line(err, "-o", "No space left on device")


def test_a_read_only_file_system_is_refused_and_nothing_is_touched(capfd, good, small_disk):
    shutil.copytree(good / "c", small_disk / "c")
    before = snapshot(small_disk / "c")
    done = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only ({done.stderr.decode().strip()})")
    for args, where in ((["check", TRUE, *TINY, "--certificates", str(small_disk / "c"),
                          "--out", str(good / "cx")], "--certificates"),
                        (["check", TRUE, *TINY, "--out", str(small_disk / "new" / "cx"),
                          "--certificates", str(good / "c")], "--out"),
                        (["report", "--certificates", str(good / "c"), "-o", str(small_disk / "r.html")], "-o")):
        code, out, err = verify_here(capfd, *args)
        assert code == 2 and out == "", err
        one_line(err, where, "Read-only file system")
    assert snapshot(small_disk / "c") == before


def test_a_directory_without_permission_is_refused_before_any_work(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    prefix: tuple = ()
    if os.geteuid() == 0:  # root ignores permission bits unless it gives up CAP_DAC_OVERRIDE
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv(1): cannot make permission bits bind")
        prefix = (setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner")
        probe = subprocess.run([*prefix, "sh", "-c", f"touch {locked}/x"], capture_output=True, check=False)
        if probe.returncode == 0:
            pytest.skip("setpriv could not drop CAP_DAC_OVERRIDE here: permission bits do not bind")
    proc = verify_proc("check", "patel2016.switch-relu", *TINY, "--out", str(locked / "cx"),
                       "--certificates", str(tmp_path / "c"), prefix=prefix)
    assert proc.returncode == 2, proc.stderr
    one_line(proc.stderr, "--out", "Permission denied")
    assert list(locked.iterdir()) == [] and not (tmp_path / "c").exists()


@pytest.mark.parametrize("where, message", [
    ("file", "not a directory"), ("file/under", "is a file"),
])
def test_an_output_directory_that_is_a_file_is_refused(capfd, tmp_path, where, message):
    (tmp_path / "file").write_text("keep me")
    code, out, err = verify_here(capfd, "check", TRUE, *TINY, "--out", str(tmp_path / where),
                                 "--certificates", str(tmp_path / "c"))
    assert code == 2 and out == ""
    one_line(err, "--out", message)
    assert (tmp_path / "file").read_text() == "keep me"


@pytest.mark.parametrize("target, message", [("dir", "is a directory"), ("missing/r.html", "no such directory")])
def test_a_report_file_that_cannot_be_written_is_refused(capfd, good, tmp_path, target, message):
    (tmp_path / "dir").mkdir()
    code, _, err = verify_here(capfd, "report", "--certificates", str(good / "c"), "-o", str(tmp_path / target))
    assert code == 2
    one_line(err, "-o", message)


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "record.json"
    target.write_text('{"old": true}\n')

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, '{"new": true}\n')
    assert target.read_text() == '{"old": true}\n' and [p.name for p in tmp_path.iterdir()] == ["record.json"]


# ------------------------------------------------------------------------------------ signals and concurrency

#: ``verify`` with SIGINT as a user's shell gives it: a test run from a background job inherits it
#: ignored (and a Python started so keeps it ignored)
DEFAULT_SIGINT = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                  "from verify.cli import entry; entry()")


@pytest.mark.parametrize("sig, code, message", [(signal.SIGINT, 130, "verify: interrupted"),
                                                (signal.SIGTERM, 143, "verify: terminated")])
def test_a_signal_mid_run_leaves_only_complete_records(good, tmp_path, sig, code, message):
    certs, cxs = tmp_path / "c", tmp_path / "cx"
    shutil.copytree(good / "c", certs)
    before = snapshot(certs)
    # a user theorem and a catalogue family of 12: the signal arrives once the run has written its
    # first record (whichever theorem it ran first: the longest first), while it works on the others
    proc = subprocess.Popen([sys.executable, "-c", DEFAULT_SIGINT, "run", TRUE, "patel2016", "--no-ablate", *TINY,
                             "--out", str(cxs), "--certificates", str(certs)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = certs / "user.relu-odd-part.json"

    def written() -> bool:  # a new record, or the user theorem's rewritten (each write is atomic)
        return set(certs.glob("*.json")) != set(before) or first.read_bytes() != before[first]

    deadline = time.monotonic() + 120
    while not written() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert written(), "the run wrote no record in 120 s"
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == message and "Traceback" not in err
    no_temporary_files(certs, cxs)
    all_records_valid(certs, cxs)
    for p, raw in before.items():  # each previous record is as it was, or a complete new one
        assert p.read_bytes() == raw or read_certificate(p)


def test_two_runs_into_one_directory_both_leave_complete_records(tmp_path):
    out = ["--out", str(tmp_path / "cx"), "--certificates", str(tmp_path / "c")]
    procs = [subprocess.Popen([sys.executable, "-m", "verify.cli", "check", FALSE, *TINY, "--seed", str(k), *out],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 1, err  # the false theorem is refuted in both
    no_temporary_files(tmp_path / "c", tmp_path / "cx")
    all_records_valid(tmp_path / "c", tmp_path / "cx")
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["user.relu-additive.json"]
    assert list((tmp_path / "cx").glob("user.relu-additive--claim--*.json"))


# ------------------------------------------------------------------------------------ corrupt caches

def test_a_corrupt_compilation_cache_is_reported_in_one_line_and_recompiled(tmp_path, good):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    proc = verify_proc("list", TRUE, env={"DLVERIFY_XLA_CACHE": str(blocked)})
    assert proc.returncode == 0 and "user.relu-odd-part" in proc.stdout, proc.stderr
    assert proc.stderr.strip() == ""  # listing compiles nothing: it never touches the cache
    args = ["check", TRUE, *TINY, "--out", str(tmp_path / "cx"), "--certificates", str(tmp_path / "c")]
    proc = verify_proc(*args, env={"DLVERIFY_XLA_CACHE": str(blocked)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines().count(
        f"verify: warning: cannot use the compilation cache {blocked} (File exists): running without it") == 1, proc.stderr
    cache = tmp_path / "cache"
    assert verify_proc(*args, env={"DLVERIFY_XLA_CACHE": str(cache)}).returncode == 0
    # XLA's entries (a user theorem's programs are not kept under programs/), not durations.json
    entries = [p for p in cache.iterdir() if p.is_file() and p.name.endswith("-cache")]
    assert entries, "the run wrote no compilation cache entry"
    for p in entries:
        p.write_bytes(b"\x00garbage" * 16)
    proc = verify_proc(*args, env={"DLVERIFY_XLA_CACHE": str(cache)})
    assert proc.returncode == 0 and "1 theorems: 1 ok" in proc.stdout, proc.stderr
    warnings = proc.stderr.strip().splitlines()
    assert warnings and all(w.startswith("verify: warning: Error reading persistent compilation cache entry")
                            for w in warnings), proc.stderr


# ------------------------------------------------------------------------------------ corrupt records

def _cx(good: Path) -> dict:
    (path,) = (good / "cx").glob("*.json")
    return json.loads(path.read_text())


def _forge(good: Path, tmp_path: Path, edit) -> Path:
    """A copy of the good counterexample (next to it, so its theorem file is found) edited by ``edit``."""
    d = _cx(good)
    raw = edit(d)
    path = good / "cx" / f"forged-{abs(hash(str(tmp_path)))}.json"
    path.write_bytes(raw if isinstance(raw, bytes) else json.dumps(d).encode())
    return path


def _set(path: str, value):
    def edit(d):
        *keys, last = path.split(".")
        node = d
        for k in keys:
            node = node[k]
        node[last] = value
    return edit


@pytest.mark.parametrize("edit, field", [
    (_set("instance", [1.0]), "field instance: expected an object, got a list"),
    (_set("instance.x", [1.0]), "field instance.x: expected an object"),
    (_set("instance.x.dtype", "object"), "field instance.x.dtype"),
    (_set("instance.x.dtype", "int64"), "field instance.x.values[0]: expected a value of dtype int64"),
    (lambda d: d["instance"]["x"].update(dtype="int64", values=[-1]), "field instance.x: int64[1], but the structure"),
    (_set("instance.x.values", [[1.0]]), "field instance.x.values[0]"),
    (_set("instance.x.shape", [10**9]), "more than 4,194,304 entries"),
    (_set("structure", [1]), "field structure: expected an object"),
    (_set("structure", {}), "field structure: user.relu-additive's sampler cannot use it"),
    (_set("structure", {"n": "one"}), "field structure"),
    (_set("structure", {"n": 10**10}), "makes float64[10000000000]"),  # gigabytes: refused, never allocated
    (_set("variant", 7), "field variant: expected a string"),
    (_set("theorem", "user." + "a" * 300), "field theorem: longer than 128 characters"),
    (lambda d: d.pop("seed"), "field seed: missing"),
    (lambda d: b"\x00\xff\xfe binary" * 10, "binary content"),
    (lambda d: b"[" * 50_000 + b"]" * 50_000, "nested deeper than 64 levels"),
    (lambda d: json.dumps(d).encode()[:150], "not strict JSON"),
    (lambda d: json.dumps(dict(d, residual_float64=float("nan"))).encode(), "bare NaN is not strict JSON"),
    (lambda d: b"", "it is empty"),
])
def test_a_corrupt_counterexample_is_refused_naming_the_field(capfd, good, tmp_path, edit, field):
    path = _forge(good, tmp_path, edit)
    try:
        code, out, err = verify_here(capfd, "replay", str(path))
    finally:
        path.unlink()
    assert code == 2 and out == ""
    one_line(err, str(path), field)


@pytest.mark.parametrize("body, field", [
    (b"[1, 2]", "field (top level): expected an object, got a list"),
    (b'{"format": "dlverify-certificate/4", "theorem": {"id": "user.relu-odd-part"}}', "field theorem.title: missing"),
    (None, "not strict JSON"),  # truncated
])
def test_a_corrupt_certificate_is_named_by_cite_report_and_graph(capfd, good, tmp_path, body, field):
    certs = tmp_path / "c"
    shutil.copytree(good / "c", certs)
    bad = certs / "user.relu-odd-part.json"
    bad.write_bytes(body if body is not None else bad.read_bytes()[:200])
    report = tmp_path / "report.html"
    report.write_text("the previous report")
    code, _, err = verify_here(capfd, "cite", "user.relu-odd-part", "--certificates", str(certs))
    assert code == 2
    one_line(err, str(bad), field)
    code, _, err = verify_here(capfd, "report", "--certificates", str(certs), "-o", str(report))
    assert code == 2 and report.read_text() == "the previous report"
    one_line(err, "1 unreadable certificate", str(bad), field)
    code, out, err = verify_here(capfd, "graph", TRUE, "--certificates", str(certs))
    assert code == 0 and "user.relu-odd-part [unreadable certificate]" in out


# ------------------------------------------------------------------------------------ replay and cite from anywhere

def test_replay_and_cite_find_the_theorem_from_the_record_and_refuse_a_changed_file(capfd, tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(FALSE, project / "thm.py")
    shutil.copy(TRUE, project / "true.py")
    monkeypatch.chdir(project)
    assert verify_here(capfd, "check", "thm.py", "true.py", *TINY)[0] == 1
    (record,) = Path(".dlverify/counterexamples").glob("*.json")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(TRUE, elsewhere / "thm.py")  # an unrelated file with the same relative name
    monkeypatch.chdir(elsewhere)
    code, out, _ = verify_here(capfd, "replay", str(project / record), "--json")
    assert code == 0 and json.loads(out)["reproduced"] is True
    monkeypatch.chdir(tmp_path)
    moved = tmp_path / "moved"
    project.rename(moved)  # the whole tree moves: the path relative to the record still finds it
    assert verify_here(capfd, "replay", str(moved / record))[0] == 0
    cite = ["cite", "user.relu-odd-part", "--certificates", str(moved / ".dlverify/certificates")]
    code, out, _ = verify_here(capfd, *cite)
    assert code == 0 and r"\begin{theorem}" in out
    with open(moved / "true.py", "a") as fh:
        fh.write("# edited\n")
    with open(moved / "thm.py", "a") as fh:
        fh.write("# edited\n")
    code, _, err = verify_here(capfd, "replay", str(moved / record))
    assert code == 2
    one_line(err, "changed since the record was written")
    code, _, err = verify_here(capfd, *cite)
    assert code == 2
    one_line(err, "cannot check that the certificate of user.relu-odd-part is current", "changed")
    assert verify_here(capfd, "replay", str(moved / record), "--theorem", str(moved / "thm.py"))[0] == 0
    (moved / "true.py").unlink()
    code, _, err = verify_here(capfd, *cite)
    assert code == 2
    one_line(err, "is missing")


# ------------------------------------------------------------------------------------ bad theorem files

THEOREM = '''
from hypothesis import strategies as st
from verify import Theorem, Tolerance, residual, xp

def make(id, tol=0.0):
    return Theorem(id=id, title="t", source="s", statement="s",
                   property=lambda s, x: residual(xp.relu(x["x"]) - xp.relu(-x["x"]), x["x"], xp.abs(x["x"])),
                   structure=st.fixed_dictionaries({"n": st.integers(1, 2)}),
                   sample=lambda rng, s: {"x": rng.reals(s.n)}, tolerance=Tolerance(tol, 0.0, "exact"))
'''


@pytest.mark.parametrize("body, message", [
    ("a = make('user.same')\nb = make('user.same')\n", "defines theorem id 'user.same' twice (as a and as b)"),
    ("a = make('patel2016.switch-relu')\n", "is already the catalogue's (theorems.patel2016.layer)"),
    ("import sys\nsys.exit(0)\n", "called sys.exit(0) while being imported"),
    ("a = make('user.inf', tol=float('inf'))\n", "tolerance must be finite"),
    ("a = make('user.' + 'x' * 200)\n", "longer than 128 characters"),
    ("from theorems.patel2016.layer import *\n", "defines no theorem"),  # imported theorems are not its own
])
def test_a_bad_theorem_file_is_one_line_and_exit_2(capfd, tmp_path, body, message):
    path = tmp_path / "mine.py"
    path.write_text(THEOREM + body)
    code, out, err = verify_here(capfd, "check", str(path), *TINY, "--out", str(tmp_path / "cx"),
                                 "--certificates", str(tmp_path / "c"))
    assert code == 2 and out == ""
    one_line(err, message)
    assert not (tmp_path / "c").exists()  # nothing ran


def test_one_id_in_two_files_is_an_error_naming_both(capfd, tmp_path):
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(THEOREM + "t = make('user.same')\n")
    code, _, err = verify_here(capfd, "check", str(tmp_path / "a.py"), str(tmp_path / "b.py"), *TINY)
    assert code == 2
    one_line(err, "defined twice", str(tmp_path / "a.py"), str(tmp_path / "b.py"))


def test_a_star_import_lists_only_the_files_own_theorems(capfd, tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("from theorems.patel2016.layer import *\n" + THEOREM + "t = make('user.mine')\n")
    code, out, _ = verify_here(capfd, "list", str(path), "--json")
    assert code == 0 and [t["id"] for t in json.loads(out)] == ["user.mine"]


def test_os_exit_at_import_cannot_end_the_command_with_success(tmp_path):
    path = tmp_path / "exits.py"
    path.write_text("import os\nos._exit(0)\n")
    proc = verify_proc("check", str(path), *TINY)
    assert proc.returncode == 2
    one_line(proc.stderr, "called os._exit(0) while being imported")


def test_what_theorem_code_prints_never_reaches_json_stdout(tmp_path):
    path = tmp_path / "chatty.py"
    path.write_text("import os\nprint('hello from import')\nos.write(1, b'raw write to fd 1\\n')\n" + THEOREM
                    + "t = make('user.chatty')\n")
    proc = verify_proc("check", str(path), *TINY, "--json", "--out", str(tmp_path / "cx"),
                       "--certificates", str(tmp_path / "c"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"bare {c} in --json output"))
    assert report["ok"] is True
    assert "hello from import" in proc.stderr and "raw write to fd 1" in proc.stderr


def test_error_messages_and_records_hold_no_memory_addresses(capfd, tmp_path):
    path = tmp_path / "fn.py"
    path.write_text(THEOREM + """
def broken(s, x):
    raise ValueError(f"cannot apply {broken}")

always_fails = Theorem(id="user.fn", title="t", source="s", statement="s",
                       property=lambda s, x: residual(s.f(x["x"]) * 0 + 1.0, x["x"] * 0),
                       structure=st.fixed_dictionaries({"n": st.just(1), "f": st.sampled_from([abs, lambda v: v])}),
                       sample=lambda rng, s: {"x": rng.reals(s.n)}, tolerance=Tolerance(0.0, 0.0, "exact"))
raises = Theorem(id="user.raises", title="t", source="s", statement="s", property=broken,
                 structure=st.just({"n": 1}), sample=lambda rng, s: {"x": rng.reals(s.n)},
                 tolerance=Tolerance(0.0, 0.0, "exact"))
""")
    code, _, _ = verify_here(capfd, "check", str(path), *TINY, "--out", str(tmp_path / "cx"),
                             "--certificates", str(tmp_path / "c"))
    assert code == 1
    files = list((tmp_path / "cx").glob("*.json")) + list((tmp_path / "c").glob("*.json"))
    assert len(files) == 3
    for p in files:
        assert " at 0x" not in p.read_text(), p.name
    note = json.loads((tmp_path / "c" / "user.raises.json").read_text())["numeric"]["note"]
    assert note.startswith("ValueError: cannot apply <function broken>"), note
    (cx,) = (tmp_path / "cx").glob("*.json")
    assert json.loads(cx.read_text())["structure"]["f"] in ("<builtin_function_or_method builtins.abs>",
                                                           "<function fn.<lambda>>") or "<lambda>" in cx.read_text()


def test_a_record_refused_is_never_a_verify_error_leak(good):
    """Readers raise VerifyError subclasses (exit 2), never KeyError/TypeError (exit 3)."""
    path = good / "cx" / "bare.json"
    for body in ("{}", '{"format": "dlverify-counterexample/3"}', '{"format": "dlverify-counterexample/2"}', "null"):
        path.write_text(body)
        with pytest.raises(VerifyError):
            Counterexample.load(path)
    path.unlink()
