"""The pytest plugin as a user meets it: a test file that checks theorems with the fixture."""


def test_plugin_passes_a_true_theorem_and_fails_a_false_one_with_the_counterexample(pytester, data):
    pytester.makepyfile(
        test_user=f"""
        from verify.registry import load_file

        TRUE = load_file({str(data / "true_theorem.py")!r})[0]
        FALSE = load_file({str(data / "false_theorem.py")!r})[0]

        def test_true(dlverify):
            dlverify.check(TRUE, batch=128)

        def test_catalogue_id(dlverify):
            dlverify.check("patel2016.switch-relu", batch=128)

        def test_false(dlverify):
            dlverify.check(FALSE, batch=128)
        """
    )
    result = pytester.runpytest_subprocess("--dlverify-examples", "3", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*user.relu-additive: numeric: refuted*", "*counterexample at {'n': 1}*",
                                 "*replay: verify replay *user.relu-additive--claim--*.json*"])
