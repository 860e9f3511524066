#include "launcher/plan.hpp"

#include "env/config_error.hpp"
#include "env/py_format.hpp"

namespace launcher {

namespace {

// Secret values are hidden wherever they appear: under their own name, and inside other
// values (SM_HPS, SM_USER_ARGS, SM_TRAINING_ENV, argv).
nlohmann::ordered_json
env_to_json(const env::EnvMap& map, const env::EnvMap& secrets)
{
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [name, value] : map.entries()) {
    out[name] = env::is_secret_name(name) && !value.empty() ? "<redacted>" : env::redact_secrets(value, secrets);
  }
  return out;
}

nlohmann::ordered_json
step_to_json(const Step& step, const env::EnvMap& secrets)
{
  std::vector<std::string> argv;
  for (const auto& a : step.argv) {
    argv.push_back(env::redact_secrets(a, secrets));
  }
  return {{"name", step.name}, {"argv", argv}, {"cwd", step.cwd}, {"error_class", step.error_class},
          {"env", env_to_json(step.env, secrets)}};
}

} // namespace

TrainPlan
make_train_plan(const PlanInputs& in)
{
  TrainPlan plan;
  plan.environment = env::build_training_environment(in.paths, in.config, in.machine, in.inherited);
  const env::TrainingEnvironment& e = plan.environment;
  plan.mpi = mpi::resolve_mpi_settings(e);

  plan.source = classify_code_source(e.module_dir, in.paths.code);
  plan.staging = in.code_staged ? StagingAction::none
                                : decide_staging(plan.source, in.code_dir_has_files, in.staged_by_smlaunch);
  plan.code.root = code_view_root(plan.source, plan.staging, in.paths.code);

  const env::Value& program = e.user_entry_point;
  const std::string program_key = in.inherited.get("SAGEMAKER_PROGRAM") != nullptr &&
                                      !in.inherited.get("SAGEMAKER_PROGRAM")->empty()
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
  plan.entry_point_missing = !plan.code.root.empty() && plan.entry_type != EntryPointType::python_package &&
                             !plan.code.has(plan.entry_point);

  // The reference's side effects on os.environ, which every child inherits.
  plan.added.set("CURRENT_HOST", e.current_host);
  plan.added.set("SAGEMAKER_JOB_NAME", e.sagemaker_job_name);
  plan.added.set("SAGEMAKER_REGION", e.region);
  env::EnvMap install_env = in.inherited;
  for (const auto& [k, v] : plan.added.entries()) {
    install_env.set(k, v);
  }

  if (auto install = install_command(plan.entry_type, plan.code, in.python)) {
    plan.install = Step{"install", install->error_class, install->argv, install_env, in.paths.code};
  }

  const env::EnvMap sm_variables = e.sm_variables();
  for (const auto& [k, v] : sm_variables.entries()) {
    plan.added.set(k, v);
  }
  const std::string* pythonpath = in.inherited.get("PYTHONPATH");
  plan.added.set("PYTHONPATH", pythonpath != nullptr && !pythonpath->empty() ? in.paths.code + ":" + *pythonpath : in.paths.code);
  if (in.inherited.get("PYTHONUNBUFFERED") == nullptr) {
    plan.added.set("PYTHONUNBUFFERED", "1");
  }
  env::EnvMap script_env = in.inherited;
  for (const auto& [k, v] : plan.added.entries()) {
    script_env.set(k, v);
  }
  plan.script = Step{"script", "ExecuteUserScriptError",
                     script_argv(plan.entry_type, plan.entry_point, in.python, in.paths.code, e.user_args),
                     std::move(script_env), in.paths.code};

  const std::string* studio = in.inherited.get("SM_STUDIO_LOCAL_MODE");
  const bool studio_local = studio != nullptr && (*studio == "true" || *studio == "True" || *studio == "TRUE");
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
  nlohmann::ordered_json steps = nlohmann::ordered_json::array();
  if (plan.install) {
    steps.push_back(step_to_json(*plan.install, plan.script.env));
  }
  steps.push_back(step_to_json(plan.script, plan.script.env));

  return {
    {"smlaunch_version", SMLAUNCH_VERSION},
    {"command", "train"},
    {"settings", settings},
    {"base_dir", in.paths.base},
    {"python", in.python},
    {"machine",
     {{"num_cpus", in.machine.num_cpus}, {"num_gpus", in.machine.num_gpus}, {"gpu_source", in.gpu_source},
      {"num_neurons", in.machine.num_neurons}}},
    {"host",
     {{"current_host", e.current_host}, {"hosts", e.hosts}, {"master", e.master_hostname}, {"is_master", e.is_master}}},
    {"mpi",
     {{"enabled", plan.mpi.enabled}, {"why", plan.mpi.why}, {"hosts", plan.mpi.hosts},
      {"processes_per_host", plan.mpi.processes_per_host}, {"num_processes", plan.mpi.num_processes},
      {"custom_options", plan.mpi.custom_options}}},
    {"code",
     {{"source", plan.source.uri}, {"kind", to_string(plan.source.kind)}, {"action", to_string(plan.staging)},
      {"code_dir", in.paths.code}}},
    {"entry_point", {{"name", plan.entry_point}, {"type", to_string(plan.entry_type)}, {"missing", plan.entry_point_missing}}},
    {"dns_wait", {{"hosts", plan.dns_hosts}, {"timeout_seconds", std::chrono::duration<double>(in.options.dns_timeout).count()}}},
    {"grace_period_seconds", std::chrono::duration<double>(in.options.grace_period).count()},
    {"environment", env_to_json(plan.added, plan.script.env)},
    {"steps", steps},
  };
}

} // namespace launcher
