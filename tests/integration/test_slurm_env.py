"""The Slurm cluster source without a Slurm: the real binary given a step's variables.

(tests/slurm runs real Slurm jobs; these need neither root nor slurm-wlm.)
"""
import json
import os
import subprocess
import unittest

import harness

STEP = {"SLURM_JOB_ID": "42", "SLURM_JOB_NODELIST": "algo-[1-2]", "SLURMD_NODENAME": "algo-1",
        "SLURM_TASKS_PER_NODE": "2(x2)"}


class TestSlurmEnvironment(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def tree(self, hyperparameters=None, resourceconfig=False):
        hps = {"sagemaker_program": "probe.py", "lr": 0.5}
        hps.update(hyperparameters or {})
        t = harness.Tree(self, hyperparameters=hps, code={"probe.py": harness.PROBE})
        if not resourceconfig:
            os.unlink(t.path("input", "config", "resourceconfig.json"))
        return t

    def plan(self, tree, args=(), **step):
        env = harness.clean_env(**dict(STEP, **step))
        p = tree.run("plan", args=args, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_detected_when_the_tree_has_no_resourceconfig(self):
        plan = self.plan(self.tree({"sagemaker_use_mpi": True}))
        self.assertEqual(plan["cluster"]["source"], "slurm")
        self.assertIn("SLURM_JOB_ID is set", plan["cluster"]["why"])
        self.assertEqual(plan["settings"]["cluster"], {"value": "detect", "origin": "default"})
        self.assertEqual(plan["host"]["hosts"], ["algo-1", "algo-2"])
        self.assertEqual(plan["environment"]["SM_CURRENT_HOST"], "algo-1")
        self.assertEqual(plan["mpi"]["processes_per_host"], 2)
        self.assertEqual([s["name"] for s in plan["steps"]], ["slurm_setup", "mpirun"])
        setup = plan["steps"][0]["argv"]
        self.assertEqual(setup[:6], ["srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--overlap",
                                     "--kill-on-bad-exit=0"])
        self.assertIn("--stage-only", setup)
        mpirun = plan["steps"][1]["argv"]
        self.assertNotIn("plm_rsh_agent", mpirun)
        self.assertIn("slurm", mpirun)

    def test_a_tree_with_resourceconfig_keeps_it_unless_slurm_is_asked_for(self):
        t = self.tree(resourceconfig=True)
        self.assertEqual(self.plan(t)["cluster"]["source"], "resourceconfig")
        asked = self.plan(t, SMLAUNCH_CLUSTER="slurm")
        self.assertEqual(asked["cluster"]["source"], "slurm")
        self.assertEqual(asked["settings"]["cluster"]["origin"], "environment SMLAUNCH_CLUSTER")
        self.assertEqual(asked["host"]["hosts"], ["algo-1", "algo-2"])

    def test_without_mpi_each_node_runs_the_script_as_its_own_host(self):
        t = self.tree({"sagemaker_use_mpi": False})
        env = harness.clean_env(**dict(STEP, SLURM_JOB_NODELIST="n[01-02]", SLURMD_NODENAME="n02"))
        p = t.run("train", args=("--instance-type", "ml.c5.xlarge"), env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        seen = t.probe()["env"]
        self.assertEqual(seen["SM_CURRENT_HOST"], "n02")
        self.assertEqual(json.loads(seen["SM_HOSTS"]), ["n01", "n02"])
        self.assertEqual(seen["SM_CURRENT_INSTANCE_TYPE"], "ml.c5.xlarge")
        self.assertTrue(os.path.exists(t.path("output", "success")))

    def test_train_with_mpi_on_a_node_other_than_the_first_refuses_naming_the_master(self):
        t = self.tree({"sagemaker_use_mpi": True})
        p = t.run("train", env=harness.clean_env(**dict(STEP, SLURMD_NODENAME="algo-2")))
        self.assertNotEqual(p.returncode, 0)
        failure = t.read("output", "failure")
        self.assertTrue(failure.startswith("ConfigError:"), failure)
        self.assertIn("not the first host of the allocation (algo-1)", failure)

    def test_a_missing_or_malformed_slurm_variable_is_named(self):
        t = self.tree()
        for step, name in (({"SLURMD_NODENAME": ""}, "SLURMD_NODENAME"),
                           ({"SLURM_JOB_NODELIST": "algo-[2-1]"}, "SLURM_JOB_NODELIST"),
                           ({"SLURMD_NODENAME": "algo-9"}, "SLURMD_NODENAME")):
            p = t.run("train", args=("--cluster", "slurm"), env=harness.clean_env(**dict(STEP, **step)))
            self.assertNotEqual(p.returncode, 0, step)
            self.assertIn(name, p.stderr, step)
            self.assertIn(name, t.read("output", "failure"), step)

    def test_percent_n_is_the_node_name(self):
        t = self.tree()
        pattern = t.base.replace("/ml", "/%n")
        os.rename(t.base, t.base.replace("/ml", "/algo-1"))
        p = subprocess.run([harness.SMLAUNCH, "plan", "--base-dir", pattern, "--python", harness.PYTHON],
                                   env=harness.clean_env(**STEP), capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["base_dir"], t.base.replace("/ml", "/algo-1"))
        p = subprocess.run([harness.SMLAUNCH, "plan", "--base-dir", pattern],
                                   env=harness.clean_env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 64, p.stderr)
        self.assertIn("SLURMD_NODENAME is not set", p.stderr)
        os.rename(t.base.replace("/ml", "/algo-1"), t.base)


if __name__ == "__main__":
    unittest.main()
