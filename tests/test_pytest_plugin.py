"""The pytest plugin as a user meets it: a test file that checks theorems with the fixture."""


def test_plugin_passes_a_true_theorem_and_fails_a_false_one_with_the_counterexample(pytester, data):
    pytester.makepyfile(
        test_user=f"""
        from verify.registry import load_file

        def test_true(dlverify):
            dlverify.check(load_file({str(data / "true_theorem.py")!r})[0], batch=128)

        def test_catalogue_id(dlverify):
            dlverify.check("patel2016.switch-relu", batch=128)

        def test_false(dlverify):
            dlverify.check(load_file({str(data / "false_theorem.py")!r})[0], batch=128)
        """
    )
    result = pytester.runpytest_subprocess("--dlverify-examples", "3", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*user.relu-additive: numeric: refuted*", "*counterexample at {'n': 1}*",
                                 "*replay: verify replay *user.relu-additive--claim--*.json*"])


def test_theorems_declared_in_a_test_module_are_collected_as_tests(pytester, data):
    pytester.makepyfile(
        test_declared=(data / "true_theorem.py").read_text() + "\n" + (data / "false_theorem.py").read_text()
    )
    result = pytester.runpytest_subprocess("--dlverify-examples", "3", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*relu_odd_part?user.relu-odd-part? PASSED*",
                                 "*relu_additive?user.relu-additive? FAILED*",
                                 "*counterexample at {'n': 1}*"])


def test_a_user_theorem_built_on_the_public_strategies(pytester):
    """A user's test module declares theorems with the engine's public vocabulary (random
    partitions, factorised transitions, the disentanglement test); pytest runs them."""
    pytester.makepyfile(
        test_factors="""
        from hypothesis import strategies as st

        from verify import Theorem, Tolerance, residual, xp
        from verify.models.factors import disentangled_matrix, disentanglement_deviation, n_beta_of, partitions, transition

        def sample(rng, s):
            nb = n_beta_of(s.partition)
            return {**{f"L{j}": rng.normal((2, 2 ** len(S))) for j, S in enumerate(s.partition)},
                    "f": rng.reals((nb, 2))}

        def P_and_F(s, x):
            P = transition(s.partition, [x[f"L{j}"] for j in range(len(s.partition))])
            return P, disentangled_matrix(x["f"], n_beta_of(s.partition))

        structure = st.fixed_dictionaries({"partition": partitions(max_beta=3)})
        tol = Tolerance(0.0, 1e-12, "sums of <= 8 products of probabilities and values")

        stochastic = Theorem(
            id="user.factorised-stochastic", title="rows of a factorised transition sum to 1",
            source="test", statement="P 1 = 1", structure=structure, sample=sample, tolerance=tol,
            property=lambda s, x: residual(xp.sum(P_and_F(s, x)[0], axis=1), 1.0, 1.0))

        entangled = Theorem(
            id="user.pf-disentangled-per-factor", title="P F keeps every column on one beta factor (false)",
            source="test", statement="P F disentangled over beta's factors", structure=structure,
            sample=sample, tolerance=tol,
            property=lambda s, x: residual(
                disentanglement_deviation(xp.transpose(P_and_F(s, x)[0]) @ P_and_F(s, x)[0] @ P_and_F(s, x)[1]),
                0.0, 1.0))
        """
    )
    result = pytester.runpytest_subprocess("--dlverify-examples", "4", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*user.factorised-stochastic? PASSED*", "*user.pf-disentangled-per-factor? FAILED*",
                                 "*counterexample at {'partition':*", "*replay: verify replay *"])


def test_only_the_theorems_a_module_defines_are_its_tests(pytester, data):
    """A theorem imported into a test module (a star import of another module) is a test of the
    module that defines it, not of every module that imports it."""
    pytester.makepyfile(theorems_elsewhere=(data / "false_theorem.py").read_text())
    pytester.makepyfile(test_imports="from theorems_elsewhere import *\n\n" + (data / "true_theorem.py").read_text())
    result = pytester.runpytest_subprocess("--dlverify-examples", "3", "-p", "no:cacheprovider", "--co", "-q")
    result.stdout.fnmatch_lines(["*relu_odd_part?user.relu-odd-part?*"])
    assert "relu-additive" not in result.stdout.str()


def test_a_counterexample_from_a_test_module_replays_from_another_directory(pytester, data, tmp_path):
    """The record of a theorem declared in a test module says which file defines it (path and
    SHA-256), and it is kept outside pytest's temporary directories, so the printed replay
    command works after the session, from anywhere."""
    import re
    import subprocess
    import sys

    pytester.makepyfile(test_declared=(data / "false_theorem.py").read_text())
    result = pytester.runpytest_subprocess("--dlverify-examples", "3", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    m = re.search(r"verify replay (\S+\.json)", result.stdout.str())
    assert m, result.stdout.str()
    record = m.group(1)
    assert record.startswith(str(pytester.path / ".dlverify" / "counterexamples")), record  # the rootdir's
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([sys.executable, "-m", "verify", "replay", record], cwd=elsewhere,
                         capture_output=True, text=True)
    assert "yes: the variant fails on this instance" in out.stdout, out.stdout + out.stderr


def test_bad_plugin_options_are_usage_errors(pytester):
    for bad in ("0", "-5", "many"):
        result = pytester.runpytest_subprocess("--dlverify-examples", bad, "-p", "no:cacheprovider")
        assert result.ret == 4  # pytest's usage error, not a traceback and not a silent default
        assert "expected a positive whole number" in result.stderr.str()
        assert "Traceback" not in result.stderr.str()


def test_hypothesis_seed_is_honoured(pytester, data):
    """``--hypothesis-seed`` seeds dlverify's searches when ``--dlverify-seed`` is not given: the
    counterexample record carries the search seed derived from it."""
    import json
    import re

    from verify.engine.runner import derive_seed

    pytester.makepyfile(test_declared=(data / "false_theorem.py").read_text())

    def recorded_seed(*args):
        result = pytester.runpytest_subprocess("--dlverify-examples", "3", "-p", "no:cacheprovider", *args)
        record = re.search(r"verify replay (\S+\.json)", result.stdout.str()).group(1)
        return json.loads(open(record).read())["seed"]

    for seed in (1, 2):
        assert recorded_seed("--hypothesis-seed", str(seed)) == derive_seed(seed, "user.relu-additive")
    assert recorded_seed("--hypothesis-seed", "2", "--dlverify-seed", "7") == derive_seed(7, "user.relu-additive")
