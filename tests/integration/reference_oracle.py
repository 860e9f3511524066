"""The reference toolkit's environment contract, restated in Python.

This is sagemaker-training-toolkit's Environment.to_env_vars() and mapping.to_cmd_args()
as ../shared/reference/training-toolkit.md (sections 3-5) describes them, computed with
Python's own json and str, so float, unicode and dict formatting are Python's. The
integration tests compare what smlaunch gives a script against it.
"""
import json
import os

RESERVED = {
    "sagemaker_program", "sagemaker_submit_directory", "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_region", "sagemaker_container_log_level", "sagemaker_job_name",
    "default_user_module_name", "_tuning_objective_metric", "sagemaker_s3_output",
}
DISTRIBUTION_FLAGS = [
    "sagemaker_mpi_enabled", "sagemaker_parameter_server_enabled",
    "sagemaker_distributed_dataparallel_enabled", "sagemaker_pytorch_ddp_enabled",
    "sagemaker_pytorch_xla_multi_worker_enabled", "sagemaker_multi_worker_mirrored_strategy_enabled",
    "sagemaker_torch_distributed_enabled",
]


def _read(path):
    with open(path) as f:
        return json.load(f)


def decode_hyperparameters(raw):
    out = {}
    for k, v in raw.items():
        try:
            v = json.loads(v)
        except (ValueError, TypeError):
            pass
        out[k] = v
    return out


def _decode(obj):
    return "" if obj is None else str(obj)


def to_cmd_args(mapping):
    args = []
    for key in sorted(mapping.keys()):
        name = _decode(key)
        args.append(("--%s" % name if len(name) > 1 else "-%s" % name) if name else "")
        value = mapping[key]
        if hasattr(value, "items"):
            args.append(",".join("%s=%s" % (k, v) for k, v in sorted(value.items())))
        else:
            args.append(_decode(value))
    return args


def to_env_vars(mapping):
    def value(v):
        if v is None:
            return ""
        if isinstance(v, str):
            return v
        return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    return {"SM_%s" % str(k).upper(): value(v) for k, v in mapping.items()}


def expected(base, inherited=None, num_cpus=None, num_gpus=0, num_neurons=0):
    """Return (sm_variables: dict in order, user_args: list, extra: dict of non-SM vars)."""
    inherited = inherited or {}
    cfg = os.path.join(base, "input", "config")
    rc = _read(os.path.join(cfg, "resourceconfig.json"))
    idc = _read(os.path.join(cfg, "inputdataconfig.json"))
    hps = decode_hyperparameters(_read(os.path.join(cfg, "hyperparameters.json")))

    sm = {k: v for k, v in hps.items() if k in RESERVED or k.startswith("sagemaker_")}
    user = {k: v for k, v in hps.items() if k not in sm}
    framework = {k: v for k, v in sm.items() if k not in RESERVED}

    hosts = rc["hosts"]
    current_host = rc["current_host"]
    group = rc.get("current_group_name", "homogeneousCluster")
    groups = rc.get("instance_groups", [])
    dist_groups = framework.get("sagemaker_distribution_instance_groups")
    if dist_groups is None:
        dist_groups = [group] if any(framework.get(f, False) for f in DISTRIBUTION_FLAGS) else []
    if groups:
        dist_hosts = []
        for g in groups:
            if g["instance_group_name"] in dist_groups:
                dist_hosts.extend(g["hosts"])
    else:
        dist_hosts = list(hosts)
    master = dist_hosts[0] if dist_hosts else hosts[0]
    group_hosts = next((g["hosts"] for g in groups if g["instance_group_name"] == group), [])

    program_env = inherited.get("SAGEMAKER_PROGRAM")
    module_name = program_env if program_env is not None else str(sm.get("sagemaker_program", None))
    entry = program_env or sm.get("sagemaker_program")
    if module_name and module_name.endswith(".py"):
        module_name = module_name[:-3]
    code_dir = os.path.join(base, "code")
    module_dir = str(sm.get("sagemaker_submit_directory", code_dir))
    log_level = sm.get("sagemaker_container_log_level", 20)
    mp = inherited.get("SM_HP_MP_PARAMETERS")
    channels = {c: os.path.join(base, "input", "data", c) for c in idc}
    num_cpus = os.cpu_count() if num_cpus is None else num_cpus
    topology = rc.get("topology", [])

    training_env = {
        "additional_framework_parameters": framework,
        "channel_input_dirs": channels,
        "current_host": current_host,
        "current_instance_group": group,
        "current_instance_group_hosts": group_hosts,
        "current_instance_type": rc.get("current_instance_type", "local"),
        "distribution_hosts": dist_hosts,
        "distribution_instance_groups": dist_groups,
        "framework_module": inherited.get("SAGEMAKER_TRAINING_MODULE"),
        "hosts": hosts,
        "hyperparameters": user,
        "input_config_dir": cfg,
        "input_data_config": idc,
        "input_dir": os.path.join(base, "input"),
        "instance_groups": [g["instance_group_name"] for g in groups],
        "instance_groups_dict": {g["instance_group_name"]: g for g in groups},
        "is_hetero": len(groups) > 1,
        "is_master": current_host == master,
        "is_modelparallel_enabled": mp and mp != "{}",
        "is_smddpmprun_installed": False,
        "is_smddprun_installed": False,
        "job_name": inherited.get("TRAINING_JOB_NAME"),
        "log_level": log_level,
        "master_hostname": master,
        "model_dir": os.path.join(base, "model"),
        "module_dir": module_dir,
        "module_name": module_name,
        "network_interface_name": rc.get("network_interface_name", "eth0"),
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "num_neurons": num_neurons,
        "output_data_dir": os.path.join(base, "output", "data"),
        "output_dir": os.path.join(base, "output"),
        "output_intermediate_dir": os.path.join(base, "output", "intermediate"),
        "resource_config": rc,
        "topology": topology,
        "user_entry_point": entry,
    }
    args = to_cmd_args(user)
    env = {
        "hosts": hosts,
        "network_interface_name": training_env["network_interface_name"],
        "hps": user,
        "user_entry_point": entry,
        "framework_params": framework,
        "resource_config": rc,
        "input_data_config": idc,
        "output_data_dir": training_env["output_data_dir"],
        "channels": sorted(channels.keys()),
        "current_host": current_host,
        "current_instance_type": training_env["current_instance_type"],
        "current_instance_group": group,
        "current_instance_group_hosts": group_hosts,
        "instance_groups": training_env["instance_groups"],
        "instance_groups_dict": training_env["instance_groups_dict"],
        "distribution_instance_groups": dist_groups,
        "is_hetero": training_env["is_hetero"],
        "module_name": module_name,
        "log_level": log_level,
        "framework_module": training_env["framework_module"],
        "input_dir": training_env["input_dir"],
        "input_config_dir": cfg,
        "output_dir": training_env["output_dir"],
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "num_neurons": num_neurons,
        "model_dir": training_env["model_dir"],
        "module_dir": module_dir,
        "training_env": training_env,
        "user_args": args,
        "output_intermediate_dir": training_env["output_intermediate_dir"],
    }
    if topology:
        env["topology"] = topology
    for name, path in channels.items():
        env["channel_%s" % name] = path
    for key, value in user.items():
        env["hp_%s" % key] = value

    region = sm.get("sagemaker_region") or inherited.get("AWS_REGION") or inherited.get("AWS_DEFAULT_REGION") or ""
    extra = {
        "CURRENT_HOST": current_host,
        "SAGEMAKER_JOB_NAME": sm.get("sagemaker_job_name", ""),
        "SAGEMAKER_REGION": str(region),
    }
    return to_env_vars(env), args, extra
