"""run_unittest.py: a suite whose tests all skip exits 125, not 0 (ctest's SKIP_RETURN_CODE)."""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_unittest.py")

FIXTURES = {
    "all_skipped": """
        import unittest
        @unittest.skipUnless(False, "needs root")
        class T(unittest.TestCase):
            def test_a(self): pass
            def test_b(self): pass
    """,
    "class_setup_skips": """
        import unittest
        class T(unittest.TestCase):
            @classmethod
            def setUpClass(cls): raise unittest.SkipTest("no namespaces")
            def test_a(self): pass
    """,
    "some_skipped": """
        import unittest
        class T(unittest.TestCase):
            def test_runs(self): pass
            @unittest.skip("not here")
            def test_skips(self): pass
    """,
    "one_fails": """
        import unittest
        class T(unittest.TestCase):
            def test_fails(self): self.fail("no")
            @unittest.skip("not here")
            def test_skips(self): pass
    """,
}


class RunUnittestTest(unittest.TestCase):
    def run_fixture(self, name):
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, name + ".py"), "w") as f:
                f.write(textwrap.dedent(FIXTURES[name]))
            return subprocess.run([sys.executable, RUNNER, name], cwd=folder, capture_output=True,
                                  timeout=60).returncode

    def test_a_suite_that_skipped_everything_exits_125(self):
        self.assertEqual(self.run_fixture("all_skipped"), 125)

    def test_a_class_skipped_in_set_up_class_counts_as_skipped(self):
        self.assertEqual(self.run_fixture("class_setup_skips"), 125)

    def test_a_suite_with_one_test_run_passes(self):
        self.assertEqual(self.run_fixture("some_skipped"), 0)

    def test_a_failure_exits_1(self):
        self.assertEqual(self.run_fixture("one_fails"), 1)


if __name__ == "__main__":
    unittest.main()
