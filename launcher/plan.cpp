#include "launcher/plan.hpp"

#include "base/state_file.hpp"
#include "env/config_error.hpp"
#include "env/py_format.hpp"
#include "env/slurm.hpp"
#include "mpi/mpirun_command.hpp"
#include "mpi/ssh.hpp"

#include <algorithm>
#include <cctype>
#include <unistd.h>

namespace launcher {

namespace {

// Secret values are hidden wherever they appear: under their own name, and inside other
// values (SM_HPS, SM_USER_ARGS, SM_TRAINING_ENV, argv). A value or argument that is not
// UTF-8 (an inherited variable may hold any bytes) is {"hex": "..."}, as in host.json.
nlohmann::ordered_json
env_to_json(const env::EnvMap& map, const std::vector<std::string>& secrets)
{
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [name, value] : map.entries()) {
    out[name] = env::is_secret_name(name) && !value.empty() ? nlohmann::json("<redacted>")
                                                            : base::bytes_to_json(env::redact_secrets(value, secrets));
  }
  return out;
}

nlohmann::ordered_json
step_to_json(const Step& step, const std::vector<std::string>& secrets)
{
  nlohmann::ordered_json argv = nlohmann::ordered_json::array();
  for (const auto& a : step.argv) {
    argv.push_back(nlohmann::ordered_json(base::bytes_to_json(env::redact_secrets(a, secrets))));
  }
  return {{"name", step.name},
          {"argv", argv},
          {"cwd", step.cwd},
          {"error_class", step.error_class},
          {"env", env_to_json(step.env, secrets)}};
}

// "4 = 8 cpus / 2 processes" and each variable with its value and origin ("user" or
// "budget"); without MPI, one process keeps every core and nothing is set.
nlohmann::ordered_json
thread_budget_to_json(const std::optional<env::ThreadBudget>& budget)
{
  if (!budget) {
    return {{"applies_to", "none"},
            {"why", "no MPI: one process on this host keeps every core"},
            {"variables", nlohmann::ordered_json::object()}};
  }
  nlohmann::ordered_json variables = nlohmann::ordered_json::object();
  for (const auto& s : budget->settings) {
    variables[s.name] = {{"value", s.value}, {"origin", env::to_string(s.origin)}};
  }
  return {{"applies_to", "mpi_ranks"},  {"cpus", budget->cpus}, {"processes_on_host", budget->processes},
          {"threads", budget->threads}, {"why", budget->why},   {"variables", variables}};
}

nlohmann::ordered_json
cluster_to_json(const ClusterSource& cluster)
{
  nlohmann::ordered_json out = {{"source", cluster.name}, {"why", cluster.why}};
  if (cluster.slurm) {
    const env::SlurmCluster& s = *cluster.slurm;
    out["slurm"] = {{"hosts", s.hosts},
                    {"current_host", s.current_host},
                    {"tasks_per_node", s.tasks_per_node ? nlohmann::ordered_json(*s.tasks_per_node) : nullptr},
                    {"tasks_per_node_from", s.tasks_source},
                    {"gpus_on_node", s.gpus_on_node ? nlohmann::ordered_json(*s.gpus_on_node) : nullptr},
                    {"base_dir_pattern", cluster.base_dir_pattern}};
  }
  return out;
}

} // namespace

const char*
to_string(Role role)
{
  switch (role) {
  case Role::single:
    return "single";
  case Role::master:
    return "master";
  case Role::worker:
    return "worker";
  }
  return "?";
}

std::vector<std::string>
ssh_connection_sharing(const env::Paths& paths)
{
  return mpi::ssh_connection_sharing(paths.base + "/.smlaunch");
}

namespace {

void
plan_mpi(TrainPlan& plan, const PlanInputs& in)
{
  const env::TrainingEnvironment& e = plan.environment;
  const bool single_host = plan.mpi.hosts.size() == 1;
  plan.role = e.current_host == plan.mpi.master || single_host ? Role::master : Role::worker;
  for (const auto& h : plan.mpi.hosts) {
    if (h != plan.mpi.master) {
      plan.workers.push_back(h);
    }
  }
  // What every rank runs: Python through mpi4py, so an uncaught exception aborts all ranks.
  plan.rank_program =
      script_argv(plan.entry_type, plan.entry_point, in.python, in.paths.code, e.user_args, PythonLaunch::mpi4py);

  mpi::MpirunInputs mi;
  mi.settings = plan.mpi;
  mi.names = mpi::open_mpi_names(in.open_mpi_major);
  mi.mpirun = in.options.mpirun;
  mi.network_interface = e.network_interface_name;
  mi.instance_type = e.current_instance_type;
  mi.ssh_command = in.options.ssh_command;
  for (const auto& word : ssh_connection_sharing(in.paths)) {
    mi.ssh_command += " " + word;
  }
  mi.single_host = single_host;
  if (in.cluster.slurm && !single_host) {
    mi.starter = mpi::Starter::slurm;
    mi.network_interface = in.options.network_interface;
    mi.rank_options = {
        "--cluster", "slurm", "--base-dir", in.cluster.base_dir_pattern, "--instance-type", in.options.instance_type};
    if (!in.options.network_interface.empty()) {
      mi.rank_options.insert(mi.rank_options.end(), {"--network-interface", in.options.network_interface});
    }
  }
  for (const auto& [name, value] : in.inherited.entries()) {
    mi.present.push_back(name);
  }
  mi.rank_wrapper = in.smlaunch_exe;
  mi.program = plan.rank_program;
  const mpi::MpirunCommand command = mpi::build_mpirun_command(mi);

  // The ranks' thread budget on this host: the user's values are this host's environment
  // and the user's own `-x NAME=value` (a bare `-x NAME` passes the value seen here).
  env::EnvMap user = in.inherited;
  for (std::size_t i = 0; i + 1 < plan.mpi.custom_options.size(); ++i) {
    const std::string& word = plan.mpi.custom_options[i + 1];
    if (plan.mpi.custom_options[i] == "-x" && word.find('=') != std::string::npos) {
      user.set(word.substr(0, word.find('=')), word.substr(word.find('=') + 1));
    }
  }
  plan.thread_budget = env::thread_budget(in.machine.num_cpus, mpi::processes_on_host(plan.mpi, e.current_host), user);
  plan.blas_core = env::blas_core_type(in.machine.vector_isa, user);

  // mpirun's own environment: the host's, plus where local ranks find this host's tree.
  env::EnvMap mpirun_env = in.inherited;
  mpirun_env.set("SMLAUNCH_BASE_DIR", in.paths.base);
  plan.mpirun = Step{"mpirun", "ExecuteUserScriptError", command.argv, mpirun_env, in.paths.code};
  if (mi.starter == mpi::Starter::slurm) {
    plan.slurm_setup = Step{"slurm_setup", plan.install ? plan.install->error_class : "StagingError",
                            slurm_setup_argv(in, plan.mpi.hosts.size()), in.inherited, in.paths.base};
  }
}

} // namespace

ClusterSource
choose_cluster(const Options& options, const env::EnvMap& inherited, const env::Paths& paths, const std::string& cwd)
{
  ClusterSource cluster;
  cluster.base_dir_pattern =
      env::normalize_base_dir(options.base_dir_pattern.empty() ? options.base_dir : options.base_dir_pattern, cwd);
  const base::Setting* setting = nullptr;
  for (const auto& s : options.settings) {
    setting = s.name == "cluster" ? &s : setting;
  }
  const std::string origin = setting != nullptr ? setting->origin : "command line";
  const std::string* job = inherited.get("SLURM_JOB_ID");
  const bool has_file = ::access(paths.resource_config_file.c_str(), F_OK) == 0;
  if (options.cluster == ClusterChoice::slurm) {
    cluster.why = "--cluster slurm (" + origin + ")";
  } else if (options.cluster == ClusterChoice::sagemaker) {
    cluster.why = "--cluster sagemaker (" + origin + "): " + paths.resource_config_file;
    return cluster;
  } else if (job != nullptr && !job->empty() && !has_file) {
    cluster.why = "SLURM_JOB_ID is set and " + paths.resource_config_file + " does not exist";
  } else {
    cluster.why = paths.resource_config_file;
    return cluster;
  }
  cluster.name = "slurm";
  cluster.slurm = env::read_slurm_cluster(inherited);
  return cluster;
}

std::vector<std::string>
slurm_setup_argv(const PlanInputs& in, std::size_t nodes)
{
  // Every node finishes its own staging, also after another failed: a node that srun stopped
  // half-way may be stopped before smlaunch even starts there, and then says nothing.
  const std::string n = std::to_string(nodes);
  std::vector<std::string> argv = {"srun",
                                   "--nodes=" + n,
                                   "--ntasks=" + n,
                                   "--ntasks-per-node=1",
                                   "--overlap",
                                   "--kill-on-bad-exit=0",
                                   in.smlaunch_exe,
                                   "train",
                                   "--stage-only",
                                   "--cluster",
                                   "slurm",
                                   "--base-dir",
                                   in.cluster.base_dir_pattern};
  for (const auto& s : in.options.settings) {
    if (s.origin != "default" && s.name != "cluster" && s.name != "base-dir") {
      argv.insert(argv.end(), {"--" + s.name, s.value});
    }
  }
  return argv;
}

env::EnvMap
script_variables(const env::TrainingEnvironment& e, const env::Paths& paths, const env::EnvMap& inherited,
                 Launch launch)
{
  env::EnvMap added;
  // The reference's side effects on os.environ, which every child inherits.
  added.set("CURRENT_HOST", e.current_host);
  added.set("SAGEMAKER_JOB_NAME", e.sagemaker_job_name);
  added.set("SAGEMAKER_REGION", e.region);
  added.update(e.sm_variables());
  const std::string* pythonpath = inherited.get("PYTHONPATH");
  added.set("PYTHONPATH", pythonpath != nullptr && !pythonpath->empty() ? paths.code + ":" + *pythonpath : paths.code);
  if (inherited.get("PYTHONUNBUFFERED") == nullptr && launch == Launch::process) {
    added.set("PYTHONUNBUFFERED", "1");
  }
  return added;
}

TrainPlan
make_train_plan(const PlanInputs& in)
{
  TrainPlan plan;
  plan.environment = env::build_training_environment(in.paths, in.config, in.machine, in.inherited);
  const env::TrainingEnvironment& e = plan.environment;
  plan.mpi = mpi::resolve_mpi_settings(e, in.cluster.slurm ? in.cluster.slurm->tasks_per_node : std::nullopt);

  plan.source = fetch::classify_code_source(e.module_dir, in.paths.code);
  plan.staging = in.code_staged ? fetch::StagingAction::none
                                : fetch::decide_staging(plan.source, in.code_dir_has_files, in.staged_by_smlaunch);
  plan.code.root = fetch::code_view_root(plan.source, plan.staging, in.paths.code);

  const env::Value& program = e.user_entry_point;
  const std::string program_key =
      in.inherited.get("SAGEMAKER_PROGRAM") != nullptr && !in.inherited.get("SAGEMAKER_PROGRAM")->empty()
          ? "SAGEMAKER_PROGRAM"
          : "/sagemaker_program";
  const std::string program_file = program_key == "SAGEMAKER_PROGRAM" ? "environment" : in.paths.hyperparameters_file;
  if (program.is_null()) {
    throw env::ConfigError(in.paths.hyperparameters_file, "/sagemaker_program",
                           "is missing; set the sagemaker_program hyperparameter (or SAGEMAKER_PROGRAM) to the "
                           "script to run");
  }
  if (!program.is_string()) {
    throw env::ConfigError(program_file, program_key,
                           std::string("is a ") + program.type_name() + " (" + env::py_repr(program) +
                               "); expected the file name of the script");
  }
  plan.entry_point = program.text();
  if (const auto problem = entry_point_problem(plan.entry_point, plan.code)) {
    throw env::ConfigError(program_file, program_key, *problem);
  }
  plan.entry_type = detect_entry_point_type(plan.entry_point, plan.code);
  plan.entry_point_missing =
      !plan.code.root.empty() && plan.entry_type != EntryPointType::python_package && !plan.code.has(plan.entry_point);

  plan.added = script_variables(e, in.paths, in.inherited, plan.mpi.enabled ? Launch::mpi_rank : Launch::process);
  if (auto install = install_command(plan.entry_type, plan.code, in.python)) {
    // pip sees the reference's side effects on os.environ, but no SM_* yet (as there).
    env::EnvMap install_env = in.inherited;
    for (const char* name : {"CURRENT_HOST", "SAGEMAKER_JOB_NAME", "SAGEMAKER_REGION"}) {
      install_env.set(name, *plan.added.get(name));
    }
    plan.install = Step{"install", install->error_class, install->argv, std::move(install_env), in.paths.code};
  }

  env::EnvMap script_env = in.inherited;
  for (const auto& [k, v] : plan.added.entries()) {
    script_env.set(k, v);
  }
  if (!plan.mpi.enabled) { // under MPI, plan_mpi() decides it with the user's -x values
    plan.blas_core = env::blas_core_type(in.machine.vector_isa, in.inherited);
    env::apply_blas_core_type(plan.blas_core, script_env);
  }
  plan.script = Step{"script", "ExecuteUserScriptError",
                     script_argv(plan.entry_type, plan.entry_point, in.python, in.paths.code, e.user_args),
                     std::move(script_env), in.paths.code};

  if (plan.mpi.enabled) {
    plan_mpi(plan, in);
  }

  const std::string* studio = in.inherited.get("SM_STUDIO_LOCAL_MODE");
  // The reference: os.environ.get("SM_STUDIO_LOCAL_MODE", "False").lower() == "true".
  const bool studio_local = studio != nullptr && studio->size() == 4 &&
                            std::equal(studio->begin(), studio->end(), "true",
                                       [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
  if (e.hosts.size() > 1 && in.options.dns_timeout.count() > 0 && !studio_local) {
    plan.dns_hosts = e.hosts;
  }
  return plan;
}

nlohmann::ordered_json
plan_to_json(const TrainPlan& plan, const PlanInputs& in)
{
  const env::TrainingEnvironment& e = plan.environment;
  nlohmann::ordered_json settings = nlohmann::ordered_json::object();
  for (const auto& s : in.options.settings) {
    settings[s.name] = {{"value", s.value}, {"origin", s.origin}};
  }
  const std::vector<std::string> secrets = env::secret_values(plan.script.env);
  nlohmann::ordered_json steps = nlohmann::ordered_json::array();
  if (plan.install) {
    steps.push_back(step_to_json(*plan.install, secrets));
  }
  if (plan.slurm_setup && plan.role == Role::worker) {
    steps.push_back(
        {{"name", "none"},
         {"why", "under Slurm the master " + plan.mpi.master +
                     " stages every node (slurm_setup) and its mpirun starts this node's ranks through srun"}});
  } else if (plan.slurm_setup) {
    steps.push_back(step_to_json(*plan.slurm_setup, secrets));
    steps.push_back(step_to_json(*plan.mpirun, secrets));
  } else if (plan.mpirun && plan.role == Role::worker) {
    steps.push_back({{"name", "wait_for_master"}, {"master", plan.mpi.master}});
  } else if (plan.mpirun) {
    steps.push_back(step_to_json(*plan.mpirun, secrets));
  } else {
    steps.push_back(step_to_json(plan.script, secrets));
  }

  return {
      {"smlaunch_version", SMLAUNCH_VERSION},
      {"command", "train"},
      {"settings", settings},
      {"base_dir", in.paths.base},
      {"python", in.python},
      {"machine",
       {{"num_cpus", in.machine.num_cpus},
        {"num_gpus", in.machine.num_gpus},
        {"gpu_source", in.gpu_source},
        {"num_neurons", in.machine.num_neurons},
        {"probes_run", in.probes_run}}},
      {"cluster", cluster_to_json(in.cluster)},
      {"host",
       {{"current_host", e.current_host},
        {"hosts", e.hosts},
        {"master", e.master_hostname},
        {"is_master", e.is_master}}},
      {"mpi",
       {{"enabled", plan.mpi.enabled},
        {"why", plan.mpi.why},
        {"role", to_string(plan.role)},
        {"hosts", plan.mpi.hosts},
        {"master", plan.mpi.master},
        {"workers", plan.workers},
        {"processes_per_host", plan.mpi.processes_per_host},
        {"num_processes", plan.mpi.num_processes},
        {"custom_options", plan.mpi.custom_options},
        {"rank_program", plan.rank_program},
        {"open_mpi_major", in.open_mpi_major}}},
      {"thread_budget", thread_budget_to_json(plan.thread_budget)},
      {"blas_core_type",
       {{"variable", env::k_blas_core_variable},
        {"value", plan.blas_core.value},
        {"origin", env::to_string(plan.blas_core.origin)},
        {"why", plan.blas_core.why},
        {"cpu", env::to_string(in.machine.vector_isa)},
        {"applies_to", plan.mpi.enabled ? "mpi_ranks: each host's from its own CPU" : "script"}}},
      {"code",
       {{"source", plan.source.uri},
        {"kind", to_string(plan.source.kind)},
        {"action", to_string(plan.staging)},
        {"code_dir", in.paths.code}}},
      {"entry_point",
       {{"name", plan.entry_point}, {"type", to_string(plan.entry_type)}, {"missing", plan.entry_point_missing}}},
      {"dns_wait",
       {{"hosts", plan.dns_hosts}, {"timeout_seconds", std::chrono::duration<double>(in.options.dns_timeout).count()}}},
      {"grace_period_seconds", std::chrono::duration<double>(in.options.grace_period).count()},
      {"environment", env_to_json(plan.added, secrets)},
      {"steps", steps},
  };
}

} // namespace launcher
