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
