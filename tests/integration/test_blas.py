"""The job's math runs on an optimized BLAS (issue 13): numpy in the project's Python (.venv,
which the demo, the tests and smlaunch --python use) and in a script that smlaunch train runs
must resolve libblas.so.3 to OpenBLAS (or MKL, BLIS), not Debian's reference BLAS, which is
~8x slower at the same training job. The CPU image has the same check (check-image.sh,
docker/ci.sh)."""
import json
import subprocess
import unittest

import harness
from harness import Tree, clean_env

OPTIMIZED = ("openblas", "mkl", "blis")

REPORT = r'''
import json, os, numpy, threadpoolctl
numpy.dot(numpy.ones((64, 64)), numpy.ones((64, 64)))   # the BLAS is loaded and used
os.makedirs(os.environ["SM_OUTPUT_DATA_DIR"], exist_ok=True)
info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "blas.json"), "w") as f:
    json.dump(info, f)
'''


class TestBlas(unittest.TestCase):
    def assert_optimized(self, info):
        self.assertTrue(info, "numpy loaded no BLAS that threadpoolctl knows")
        for lib in info:
            self.assertIn(lib["internal_api"], OPTIMIZED,
                          "numpy runs on %s (%s), not an optimized BLAS" % (lib["internal_api"], lib["filepath"]))

    def test_project_python_runs_numpy_on_an_optimized_blas(self):
        out = subprocess.run([harness.PYTHON, "-c",
                              "import json, numpy, threadpoolctl; "
                              "print(json.dumps([i for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']))"],
                             capture_output=True, text=True, timeout=60, check=True)
        self.assert_optimized(json.loads(out.stdout))

    def test_a_training_script_runs_on_an_optimized_blas(self):
        harness.require_binary(self)
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        tree.add_code("train.py", REPORT)
        result = tree.run(env=clean_env())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_optimized(json.loads(tree.read("output", "data", "blas.json")))

    def run_report(self, **env):
        harness.require_binary(self)
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.py"})
        tree.add_code("train.py", REPORT)
        result = tree.run(env=clean_env(**env))
        self.assertEqual(result.returncode, 0, result.stderr)
        return [i for i in json.loads(tree.read("output", "data", "blas.json")) if i["internal_api"] == "openblas"]

    def test_openblas_runs_the_kernels_of_this_cpu(self):
        """Debian 12's OpenBLAS 0.3.21 falls back to its SSE3 kernels (Prescott) on a CPU newer
        than its model table, as this machine's; smlaunch sets OPENBLAS_CORETYPE from the CPU's
        AVX-512 or AVX2 (env/blas_core.hpp)."""
        expected = harness.expected_openblas_core()
        if expected is None:
            self.skipTest("no AVX2 and FMA here: OpenBLAS's own choice is kept")
        libs = self.run_report()
        if not libs:
            self.skipTest("numpy does not run on OpenBLAS here")
        self.assertEqual([lib["architecture"] for lib in libs], [expected] * len(libs))

    def test_an_openblas_core_type_the_user_set_is_kept(self):
        if harness.expected_openblas_core() is None:
            self.skipTest("no AVX2 and FMA here")
        libs = self.run_report(OPENBLAS_CORETYPE="Sandybridge")
        if not libs:
            self.skipTest("numpy does not run on OpenBLAS here")
        self.assertEqual([lib["architecture"] for lib in libs], ["Sandybridge"] * len(libs))


if __name__ == "__main__":
    unittest.main()
