"""Run Python unittest modules for ctest: `run_unittest.py MODULE...` (from the module's folder).

`python -m unittest` exits 0 when every test was skipped (no root for the network
namespaces, no S3 server...), so ctest's SKIP_RETURN_CODE never fired and a suite that
ran nothing showed as "Passed". This runner exits 125 (the SKIP_RETURN_CODE set in
tests/CMakeLists.txt) when nothing failed and nothing passed but something was skipped,
so ctest reports the suite as skipped ("Not Run"), with the reasons in its output.
Otherwise: 0 when every test passed (some may be skipped), 1 on any failure or error.
"""
import sys
import unittest

SKIPPED_EXIT_CODE = 125


class CountingResult(unittest.TextTestResult):
    """Counts the tests that ran and passed (TextTestResult keeps only failures and skips)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.passed += 1

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.passed += 1


def exit_code(result):
    if not result.wasSuccessful():
        return 1
    if result.passed == 0 and result.skipped:
        return SKIPPED_EXIT_CODE
    return 0


def main(argv):
    if len(argv) < 2:
        print("usage: run_unittest.py MODULE...", file=sys.stderr)
        return 2
    sys.path.insert(0, ".")
    suite = unittest.defaultTestLoader.loadTestsFromNames(argv[1:])
    result = unittest.TextTestRunner(verbosity=2, resultclass=CountingResult).run(suite)
    code = exit_code(result)
    if code == SKIPPED_EXIT_CODE:
        print("run_unittest: every test was skipped: exit %d (ctest: Not Run)" % code, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
