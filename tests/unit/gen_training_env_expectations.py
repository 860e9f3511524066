#!/usr/bin/env python3
"""Expected SM_* variables for tests/unit/test_env_training_environment.cpp.

Re-implements the reference toolkit's Environment.__init__ / to_env_vars()
(aws/sagemaker-training-toolkit environment.py and mapping.py, as described in
shared/reference/training-toolkit.md sections 3-5) with Python's real json.loads,
json.dumps, str.upper(), str(), sorted(). It prints C++ tables to paste into the
test: one per scenario, in the exact variable order the reference produces.

Re-run:  python3 tests/unit/gen_training_env_expectations.py
and paste the output over the block between "BEGIN GENERATED" and "END GENERATED" in
test_env_training_environment.cpp. The output carries the scenario inputs (the three
JSON files, the base directory and the inherited variables) along with the expectations,
so the C++ side always tests exactly what this script computed.
"""
import json
import os.path
import sys

# The primitives of the reference's contract (hyperparameter decoding, the reserved names,
# to_cmd_args, the SM_* rendering) are written once, in the integration tests' oracle; this
# generator adds the Environment class the C++ tables are computed from.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from reference_oracle import (  # noqa: E402
    DISTRIBUTION_FLAGS,
    RESERVED,
    decode_hyperparameters as read_hyperparameters,
    to_cmd_args,
    to_env_vars as mapping_to_env_vars,
)


def split_by_criteria(dictionary, keys, prefix):
    keys = set(keys)
    included = {k: dictionary[k] for k in dictionary if k in keys or k.startswith(prefix)}
    excluded = {k: dictionary[k] for k in dictionary if k not in included}
    return included, excluded


class Environment:
    def __init__(self, base, rc, idc, raw_hps, machine, environ):
        j = os.path.join
        self.code_dir = j(base, "code")
        self.model_dir = j(base, "model")
        self.input_dir = j(base, "input")
        self.input_config_dir = j(self.input_dir, "config")
        self.input_data_dir = j(self.input_dir, "data")
        self.output_dir = j(base, "output")
        self.output_data_dir = j(self.output_dir, "data")
        self.output_intermediate_dir = j(self.output_dir, "intermediate")

        module_name = environ.get("SAGEMAKER_PROGRAM", None)
        self._module_name = module_name
        self.user_entry_point = module_name
        self.num_cpus = machine["num_cpus"]
        self.num_gpus = machine["num_gpus"]
        self.num_neurons = machine["num_neurons"]
        self.is_smddprun_installed = machine["smddprun"]
        self.is_smddpmprun_installed = machine["smddpmprun"]

        all_hps = read_hyperparameters(raw_hps)
        self.hosts = rc["hosts"]
        self.current_instance_type = rc.get("current_instance_type", "local")
        self.current_instance_group = rc.get("current_group_name", "homogeneousCluster")
        self.current_host = rc["current_host"]
        sm_hps, self.hyperparameters = split_by_criteria(all_hps, RESERVED, "sagemaker_")
        self.additional_framework_parameters = {k: v for k, v in sm_hps.items() if k not in RESERVED}
        self.network_interface_name = rc.get("network_interface_name", "eth0")
        self.resource_config = rc
        self.input_data_config = idc
        self.channel_input_dirs = {ch: j(self.input_data_dir, ch) for ch in idc}
        if self._module_name is None:
            self._module_name = str(sm_hps.get("sagemaker_program", None))
        self.user_entry_point = self.user_entry_point or sm_hps.get("sagemaker_program")
        self.module_dir = str(sm_hps.get("sagemaker_submit_directory", self.code_dir))
        self.log_level = sm_hps.get("sagemaker_container_log_level", 20)
        self.framework_module = environ.get("SAGEMAKER_TRAINING_MODULE", None)
        self.job_name = environ.get("TRAINING_JOB_NAME", None)
        self.topology = rc.get("topology", [])

        groups = rc.get("instance_groups", [])
        self.current_instance_group_hosts = []
        for g in groups:
            if self.current_instance_group == g["instance_group_name"]:
                self.current_instance_group_hosts = g["hosts"]
                break
        self.instance_groups = [g["instance_group_name"] for g in groups]
        self.instance_groups_dict = {}
        for g in groups:
            self.instance_groups_dict[g["instance_group_name"]] = g
        dig = []
        if any(self.additional_framework_parameters.get(f, False) for f in DISTRIBUTION_FLAGS):
            dig.append(rc.get("current_group_name", "homogeneousCluster"))
        self.distribution_instance_groups = self.additional_framework_parameters.get(
            "sagemaker_distribution_instance_groups", dig)
        if groups:
            self.distribution_hosts = []
            for g in groups:
                if g["instance_group_name"] in self.distribution_instance_groups:
                    self.distribution_hosts.extend(g["hosts"])
        else:
            self.distribution_hosts = self.hosts.copy()
        self.is_hetero = len(self.instance_groups) > 1
        self.master_hostname = (list(self.distribution_hosts) or list(self.hosts))[0]
        self.is_master = self.current_host == self.master_hostname
        mp = environ.get("SM_HP_MP_PARAMETERS")
        self.is_modelparallel_enabled = mp and mp != "{}"

    @property
    def module_name(self):
        p = self._module_name
        if p and p.endswith(".py"):
            return p[:-3]
        return p

    PROPERTIES = (
        "additional_framework_parameters", "channel_input_dirs", "current_host",
        "current_instance_group", "current_instance_group_hosts", "current_instance_type",
        "distribution_hosts", "distribution_instance_groups", "framework_module", "hosts",
        "hyperparameters", "input_config_dir", "input_data_config", "input_dir", "instance_groups",
        "instance_groups_dict", "is_hetero", "is_master", "is_modelparallel_enabled",
        "is_smddpmprun_installed", "is_smddprun_installed", "job_name", "log_level",
        "master_hostname", "model_dir", "module_dir", "module_name", "network_interface_name",
        "num_cpus", "num_gpus", "num_neurons", "output_data_dir", "output_dir",
        "output_intermediate_dir", "resource_config", "topology", "user_entry_point",
    )

    def as_dict(self):
        assert len(self.PROPERTIES) == 37
        return {p: getattr(self, p) for p in self.PROPERTIES}

    def to_env_vars(self):
        env = {
            "hosts": self.hosts,
            "network_interface_name": self.network_interface_name,
            "hps": self.hyperparameters,
            "user_entry_point": self.user_entry_point,
            "framework_params": self.additional_framework_parameters,
            "resource_config": self.resource_config,
            "input_data_config": self.input_data_config,
            "output_data_dir": self.output_data_dir,
            "channels": sorted(self.channel_input_dirs.keys()),
            "current_host": self.current_host,
            "current_instance_type": self.current_instance_type,
            "current_instance_group": self.current_instance_group,
            "current_instance_group_hosts": self.current_instance_group_hosts,
            "instance_groups": self.instance_groups,
            "instance_groups_dict": self.instance_groups_dict,
            "distribution_instance_groups": self.distribution_instance_groups,
            "is_hetero": self.is_hetero,
            "module_name": self.module_name,
            "log_level": self.log_level,
            "framework_module": self.framework_module,
            "input_dir": self.input_dir,
            "input_config_dir": self.input_config_dir,
            "output_dir": self.output_dir,
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "num_neurons": self.num_neurons,
            "model_dir": self.model_dir,
            "module_dir": self.module_dir,
            "training_env": self.as_dict(),
            "user_args": to_cmd_args(self.hyperparameters),
            "output_intermediate_dir": self.output_intermediate_dir,
        }
        if self.topology:
            env["topology"] = self.topology
        for name, path in self.channel_input_dirs.items():
            env["channel_%s" % name] = path
        for key, value in self.hyperparameters.items():
            env["hp_%s" % key] = value
        return mapping_to_env_vars(env)


def cpp_lit(s):
    """A C++ string literal holding the UTF-8 bytes of s."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif 0x20 <= o < 0x7F or (o >= 0x80 and ch.isprintable()):
            out.append(ch)
        else:
            out.extend("\\%03o" % b for b in ch.encode("utf-8", "surrogatepass"))
    out.append('"')
    return "".join(out)


MACHINE = {"num_cpus": 4, "num_gpus": 0, "num_neurons": 0, "smddprun": False, "smddpmprun": False}

# Scenario (a): the 2-host example of training-toolkit.md section 2, with the group's hosts
# listed as ["algo-2","algo-1"] and MPI enabled; TRAINING_JOB_NAME set.
A_HPS = ('{"epochs": "10", "lr": "0.001", "model-name": "\\"bert base\\"", '
         '"sagemaker_program": "\\"train.py\\"", '
         '"sagemaker_submit_directory": "\\"s3://bucket/job/source/sourcedir.tar.gz\\"", '
         '"sagemaker_region": "\\"us-east-1\\"", "sagemaker_container_log_level": "20", '
         '"sagemaker_job_name": "\\"job-1\\"", "sagemaker_mpi_enabled": "true"}')
A_RC = ('{"current_group_name": "homogeneousCluster", "current_host": "algo-2", '
        '"current_instance_type": "ml.p4d.24xlarge", "hosts": ["algo-1", "algo-2"], '
        '"instance_groups": [{"hosts": ["algo-2", "algo-1"], "instance_group_name": "homogeneousCluster", '
        '"instance_type": "ml.p4d.24xlarge"}], "network_interface_name": "eth0"}')
A_IDC = ('{"train": {"ContentType": "trainingContentType", "TrainingInputMode": "File", '
         '"S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}, '
         '"validation": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", '
         '"RecordWrapperType": "None"}}')
A_ENV = {"TRAINING_JOB_NAME": "job-1", "PATH": "/usr/bin"}

# Scenario (b): one host, no instance_groups, SAGEMAKER_PROGRAM set, TRAINING_JOB_NAME unset,
# user hyperparameters of every JSON type; base directory /tmp/sm base.
B_HPS = ('{"flag": "true", "none": "null", "lst": "[1, \\"x\\", {\\"k\\": null}]", '
         '"d": "{\\"b\\": 1, \\"a\\": {\\"z\\": true}}", "lr": "3e-05", "big": "1e16", "nan": "NaN", '
         '"plain": "some text", "lead": "007", "uni": "\\"\\\\u00e9\\"", "f": "False", '
         '"sagemaker_program": "\\"ignored.py\\"", "sagemaker_s3_output": "\\"s3://b/o\\"", '
         '"_tuning_objective_metric": "\\"loss\\"", "sagemaker_pytorch_ddp_enabled": "false", '
         '"sagemaker_instance_type": "\\"ml.c5.xlarge\\""}')
B_RC = '{"current_host": "algo-1", "hosts": ["algo-1"]}'
B_IDC = '{"training": {"TrainingInputMode": "Pipe"}}'
B_ENV = {"SAGEMAKER_PROGRAM": "entry.py", "SAGEMAKER_TRAINING_MODULE": "pkg.mod:main"}

# Scenario (c): odd channel and hyperparameter names; SAGEMAKER_PROGRAM set but empty,
# two instance groups (hetero), MPI off, topology present.
C_HPS = ('{"model-name": "\\"r\\u00e9seau\\"", "\\u00df": "2", "x": "[1.5, -0.0, 1e-07]", '
         '"sagemaker_program": "\\"train.py\\""}')
C_RC = ('{"current_host": "algo-3", "hosts": ["algo-1", "algo-2", "algo-3"], "current_group_name": "gpu", '
        '"instance_groups": [{"instance_group_name": "cpu", "instance_type": "ml.c5.xlarge", "hosts": ["algo-1"]}, '
        '{"instance_group_name": "gpu", "instance_type": "ml.p3.2xlarge", "hosts": ["algo-3", "algo-2"]}], '
        '"topology": [{"hostName": "algo-1", "capacityUnitId": "u1"}]}')
C_IDC = '{"train-a": {}, "tr\\u00e1in": {"ContentType": "text/csv"}, "UPPER": {"S3DistributionType": "ShardedByS3Key"}}'
C_ENV = {"SAGEMAKER_PROGRAM": ""}

# Scenario (d): names that collide once upper-cased ("train"/"Train", "ss"/"\u00df"):
# the later value replaces the earlier one in place, as in a dict.
D_HPS = '{"ss": "1", "sagemaker_distribution_instance_groups": "[\\"g\\"]", "\\u00df": "2"}'
D_RC = ('{"current_host": "h1", "hosts": ["h1", "h2"], "current_group_name": "g", '
        '"instance_groups": [{"instance_group_name": "g", "instance_type": "t", "hosts": ["h2", "h1"]}]}')
D_IDC = '{"train": {}, "Train": {}}'
D_ENV = {}

# Scenario (e): sagemaker_distribution_instance_groups given as a string, so `in` is a
# substring test ("gpu" and "gpu-group" match, "cpu" does not); the current group is not
# listed; a custom interface; a user value with a newline; MP parameters set.
E_HPS = ('{"sagemaker_distribution_instance_groups": "\\"gpu-group\\"", "msg": "\\"multi\\\\nline\\"", '
         '"sagemaker_container_log_level": "\\"10\\"", "sagemaker_program": "5"}')
E_RC = ('{"current_host": "c1", "hosts": ["c1", "g1", "g2", "g3"], "current_group_name": "other", '
        '"network_interface_name": "ethwe", "current_instance_type": "ml.c5.xlarge", '
        '"instance_groups": [{"instance_group_name": "cpu", "instance_type": "ml.c5.xlarge", "hosts": ["c1"]}, '
        '{"instance_group_name": "gpu-group", "instance_type": "ml.p3.2xlarge", "hosts": ["g3", "g1"]}, '
        '{"instance_group_name": "gpu", "instance_type": "ml.p3.2xlarge", "hosts": ["g2"]}], "topology": []}')
E_IDC = '{}'
E_ENV = {"SM_HP_MP_PARAMETERS": "{}", "TRAINING_JOB_NAME": ""}

# Scenario (f): an empty instance_groups list counts as local mode (distribution_hosts is a
# copy of hosts, unsorted here), with MPI on.
F_HPS = '{"sagemaker_mpi_enabled": "1", "sagemaker_program": "\\"run.sh\\""}'
F_RC = '{"current_host": "algo-1", "hosts": ["algo-2", "algo-1"], "instance_groups": []}'
F_IDC = '{"train": {}}'
F_ENV = {"SM_HP_MP_PARAMETERS": "{\"partitions\": 2}"}

# Scenario (g): two instance groups with the same name: the first one gives the current
# group's hosts, the last one wins in instance_groups_dict, both count for distribution.
G_HPS = '{"sagemaker_mpi_enabled": "true"}'
G_RC = ('{"current_host": "h2", "hosts": ["h1", "h2"], "current_group_name": "g", '
        '"instance_groups": [{"instance_group_name": "g", "instance_type": "a", "hosts": ["h1"]}, '
        '{"instance_group_name": "g", "instance_type": "b", "hosts": ["h2"]}]}')
G_IDC = '{}'
G_ENV = {}

# Scenario (a_worker): the same job seen from algo-1, which is not the master.
A_WORKER_RC = A_RC.replace('"current_host": "algo-2"', '"current_host": "algo-1"')

SCENARIOS = [
    ("a", "/opt/ml", A_RC, A_IDC, A_HPS, A_ENV),
    ("a_worker", "/opt/ml", A_WORKER_RC, A_IDC, A_HPS, A_ENV),
    ("b", "/tmp/sm base", B_RC, B_IDC, B_HPS, B_ENV),
    ("c", "/opt/ml", C_RC, C_IDC, C_HPS, C_ENV),
    ("d", "/opt/ml", D_RC, D_IDC, D_HPS, D_ENV),
    ("e", "/opt/ml", E_RC, E_IDC, E_HPS, E_ENV),
    ("f", "/", F_RC, F_IDC, F_HPS, F_ENV),
    ("g", "/opt/ml", G_RC, G_IDC, G_HPS, G_ENV),
]


def main():
    print("// BEGIN GENERATED by tests/unit/gen_training_env_expectations.py")
    for name, base, rc, idc, hps, environ in SCENARIOS:
        e = Environment(base, json.loads(rc), json.loads(idc), json.loads(hps), MACHINE, environ)
        print("// Scenario (%s)" % name)
        print('const Scenario k_scenario_%s = {' % name)
        print('    "%s",' % name)
        print("    %s," % cpp_lit(base))
        print('    R"json(%s)json",' % hps)
        print('    R"json(%s)json",' % rc)
        print('    R"json(%s)json",' % idc)
        print("    {%s}," % ", ".join("{%s, %s}" % (cpp_lit(k), cpp_lit(v)) for k, v in environ.items()))
        print("    {")
        for k, v in e.to_env_vars().items():
            print("        {%s, %s}," % (cpp_lit(k), cpp_lit(v)))
        print("    },")
        print("    {%s}," % ", ".join(cpp_lit(a) for a in to_cmd_args(e.hyperparameters)))
        print("    %s," % cpp_lit(e.master_hostname))
        print("    %s," % ("true" if e.is_master else "false"))
        print("    {%s}," % ", ".join(cpp_lit(h) for h in e.distribution_hosts))
        print("};")
        print()
    print("// END GENERATED")


if __name__ == "__main__":
    main()
