#include "launcher/train.hpp"

#include "base/errors.hpp"
#include "base/logging.hpp"
#include "base/shell.hpp"
#include "fetch/fetch_helper.hpp"
#include "launcher/install_step.hpp"
#include "launcher/mpi_job.hpp"
#include "process/exec_limits.hpp"
#include "process/failure_report.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <netdb.h>
#include <optional>
#include <sys/stat.h>

namespace launcher {

process::ChildSpec
spec_for(const Step& step)
{
  process::ChildSpec spec;
  spec.argv = step.argv;
  spec.envp = step.env.to_envp();
  spec.cwd = step.cwd;
  return spec;
}

void
log_invocation(const char* what, const std::string& command, const env::EnvMap& env)
{
  if (spdlog::should_log(spdlog::level::info)) {
    spdlog::info("invoking {}: {}", what, env::redact_secrets(command, env));
  }
}

namespace {

using namespace std::chrono_literals;

void
log_environment(const TrainPlan& plan)
{
  if (!spdlog::should_log(spdlog::level::debug)) {
    return;
  }
  spdlog::debug("variables added for the script (secrets redacted):");
  const std::vector<std::string> secrets = env::secret_values(plan.script.env);
  for (const auto& [name, value] : plan.added.entries()) {
    spdlog::debug("  {}={}", name,
                  env::is_secret_name(name) && !value.empty() ? "<redacted>" : env::redact_secrets(value, secrets));
  }
}

bool
resolves(const std::string& host)
{
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  addrinfo* result = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (result != nullptr) {
    freeaddrinfo(result);
  }
  return rc == 0;
}

// Wait until every host name resolves, with bounded exponential backoff (the reference
// waits the same way, but for up to 15 minutes per host and with no message).
// Returns once every name resolves; throws HostResolutionError after `timeout`, and
// StoppedError on a stop signal.
void
wait_for_host_names(const std::vector<std::string>& hosts, std::chrono::milliseconds timeout,
                    process::Supervisor& supervisor)
{
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> pending = hosts;
  auto delay = 100ms;
  bool logged = false;
  while (true) {
    std::erase_if(pending, resolves);
    if (pending.empty()) {
      return;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string names;
      for (const auto& h : pending) {
        names += (names.empty() ? "" : ", ") + h;
      }
      throw base::HostResolutionError("these hosts from resourceconfig.json never resolved within " +
                                      std::to_string(timeout.count() / 1000) + " s: " + names +
                                      " (set --dns-timeout 0 / SMLAUNCH_DNS_TIMEOUT=0 to skip this check)");
    }
    if (!logged) {
      spdlog::info("waiting for {} host name(s) to resolve, e.g. {}", pending.size(), pending.front());
      logged = true;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (const int sig = supervisor.sleep_for(std::min(delay, std::max(left, 1ms)))) {
      throw base::StoppedError(sig, "waiting for the hosts' names to resolve");
    }
    delay = std::min(delay * 2, std::chrono::milliseconds(5s));
  }
}

} // namespace

int
stage(const TrainPlan& plan, const PlanInputs& in, process::Supervisor& supervisor)
{
  if (plan.staging == fetch::StagingAction::keep_existing) {
    spdlog::warn("{} holds files smlaunch did not put there: keeping them and not staging {}", in.paths.code,
                 plan.source.uri);
  } else if (plan.staging == fetch::StagingAction::copy_directory || plan.staging == fetch::StagingAction::copy_file) {
    spdlog::info("copying the code from {} into {}", plan.source.uri, in.paths.code);
  }
  // Code already in place needs no helper (nor its copy of the environment).
  std::optional<fetch::HelperFetcher> fetcher;
  if (plan.staging != fetch::StagingAction::none && plan.staging != fetch::StagingAction::keep_existing) {
    fetcher.emplace(supervisor, in.inherited, plan.environment.region_hyperparameter, in.paths.base + "/.smlaunch");
  }
  fetch::StagingContext context{in.paths.base, in.paths.code, fetcher ? &*fetcher : nullptr,
                                [&] { return supervisor.poll_stop_signal(); }};
  fetch::stage_code(plan.source, plan.staging, context);
  if (const int sig = supervisor.poll_stop_signal()) {
    throw base::StoppedError(sig, "staging");
  }
  return 0;
}

int
execute_train(const TrainPlan& plan, const PlanInputs& in, process::Supervisor& supervisor,
              process::OutcomeFiles& outcome)
{
  if (plan.install) {
    run_install_step(spec_for(*plan.install), plan.install->error_class, supervisor);
  }

  if (!plan.dns_hosts.empty()) {
    wait_for_host_names(plan.dns_hosts, in.options.dns_timeout, supervisor);
  }
  if (plan.mpi.enabled) {
    return plan.role == Role::worker ? run_mpi_worker(plan, in, supervisor, outcome)
                                     : run_mpi_master(plan, in, supervisor, outcome);
  }

  const std::string command = base::join_command(plan.script.argv);
  const auto fail = [&](int code, const std::string& message) {
    return process::record_outcome(outcome, code, plan.script.error_class, message, command, plan.script.env);
  };
  if (plan.entry_point_missing) {
    return fail(base::to_int(base::ExitCode::not_found),
                plan.entry_point + ": no such file in " + in.paths.code + " (from sagemaker_program)");
  }
  if (plan.entry_type == EntryPointType::command) {
    // The reference makes the entry point executable (chmod 777); adding x bits is enough.
    // Only on a file inside code/: a link there may lead anywhere, and chmod follows it.
    std::error_code code_ec;
    std::error_code ec;
    const auto code = std::filesystem::canonical(in.paths.code, code_ec);
    const auto path = std::filesystem::canonical(in.paths.code + "/" + plan.entry_point, ec);
    const auto inside = path.lexically_relative(code);
    struct stat st
    {
    };
    if (!code_ec && !ec && !inside.empty() && *inside.begin() != ".." && ::lstat(path.c_str(), &st) == 0 &&
        S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0111) {
      ::chmod(path.c_str(), (st.st_mode & 07777) | 0111); // not when set: a journalled write on every run
    }
  }

  log_environment(plan);
  const process::ChildSpec script = spec_for(plan.script);
  if (const std::string problem = process::exec_limits_problem(plan.script.argv, script.envp); !problem.empty()) {
    throw base::ExecLimitError("cannot run the script: " + problem, command);
  }
  log_invocation("the user script", command, plan.script.env);
  const process::ChildResult r = supervisor.run(script);
  if (r.exit_code == 0) {
    spdlog::info("training succeeded in {:.1f} s", r.seconds);
    return process::record_outcome(outcome, 0, "", "", command, plan.script.env);
  }
  return fail(r.exit_code, process::describe_script_failure(
                               r, plan.script.argv[0], static_cast<double>(in.options.grace_period.count()) / 1000.0));
}

} // namespace launcher
