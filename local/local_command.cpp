#include "local/local_command.hpp"

#include "base/errors.hpp"
#include "base/logging.hpp"
#include "base/shell.hpp"
#include "fetch/fetch_helper.hpp"
#include "fetch/tree_copy.hpp"
#include "local/artifacts.hpp"
#include "local/local_network.hpp"
#include "local/local_plan.hpp"
#include "process/executables.hpp"
#include "process/failure_report.hpp"
#include "process/prefixed_output.hpp"
#include "process/supervisor.hpp"

#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <unistd.h>

namespace local {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string
read_file(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void
write_file(const std::string& path, const std::string& content, fs::perms perms = fs::perms::unknown)
{
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) {
    throw base::SystemError("write", path, errno);
  }
  if (perms != fs::perms::unknown) {
    fs::permissions(path, perms);
  }
}

// A new job directory, or an empty one: a job never writes over another's files.
void
create_job_directory(const LocalJobPlan& plan)
{
  std::error_code ec;
  if (fs::exists(plan.job_dir, ec) && !fs::is_empty(plan.job_dir, ec)) {
    throw base::UsageError("job directory " + plan.job_dir +
                           " exists and is not empty; give a new --job-dir (or remove it)");
  }
  for (const auto& dir : plan.directories) {
    fs::create_directories(dir, ec);
    if (ec) {
      throw base::SystemError("mkdir", dir, ec.value());
    }
  }
  for (const auto& file : plan.files) {
    write_file(file.path, file.content);
  }
  for (const auto& link : plan.links) {
    fs::create_symlink(link.target, link.path, ec);
    if (ec) {
      throw base::SystemError("symlink", link.path, ec.value());
    }
  }
}

// The code as it is now, without the job directory when the source holds it (by any
// path, links included); the same rules as train's staging (fetch/tree_copy.hpp).
void
copy_source(const std::string& source, const std::string& destination, const std::string& job_dir)
{
  fetch::TreeCopyOptions options;
  options.leave_out.emplace_back(job_dir, "it is the job directory " + job_dir);
  fetch::copy_source_tree(source, destination, options);
}

// A folder of the job's own under /tmp, removed with everything in it when the job ends.
// The job directory may hold spaces and colons, and no quoting carries those through
// sshd's config lines or Open MPI's plm_rsh_agent (split on both, quotes or not).
class ShortDirectory
{
public:
  ShortDirectory()
  {
    std::string name = "/tmp/smlaunch-ssh-XXXXXX";
    if (::mkdtemp(name.data()) == nullptr) {
      throw base::SystemError("mkdtemp", name, errno);
    }
    m_path = name;
  }
  ShortDirectory(const ShortDirectory&) = delete;
  ShortDirectory& operator=(const ShortDirectory&) = delete;
  ~ShortDirectory()
  {
    std::error_code ec;
    fs::remove_all(m_path, ec);
  }
  [[nodiscard]] const std::string&
  path() const
  {
    return m_path;
  }

private:
  std::string m_path;
};

// SSH between the simulated hosts: a key pair and a host key made for this job only,
// and the configurations every host's launcher passes to sshd and ssh, in `dir` (a
// ShortDirectory: every path here reaches sshd_config, ssh_config and plm_rsh_agent).
struct SshFiles
{
  std::string ssh_command;
  std::string sshd_config;
};

SshFiles
create_ssh_files(process::Supervisor& supervisor, const env::EnvMap& environment, const std::string& dir)
{
  const std::string keygen = process::find_executable("ssh-keygen", environment).value_or("ssh-keygen");
  for (const char* key : {"id_ed25519", "ssh_host_ed25519_key"}) {
    process::ChildSpec spec;
    spec.argv = {keygen, "-q", "-t", "ed25519", "-N", "", "-C", "smlaunch-local", "-f", dir + "/" + key};
    spec.envp = environment.to_envp();
    spec.output = process::OutputMode::capture;
    spec.timeout = 20s;
    if (supervisor.run(spec).exit_code != 0) {
      throw base::ClusterError("ssh-keygen could not create " + dir + "/" + key);
    }
  }
  fs::copy_file(dir + "/id_ed25519.pub", dir + "/authorized_keys");
  write_file(dir + "/ssh_config", "Host *\n"
                                  "  IdentityFile " +
                                      dir +
                                      "/id_ed25519\n"
                                      "  IdentitiesOnly yes\n"
                                      "  StrictHostKeyChecking no\n"
                                      "  UserKnownHostsFile /dev/null\n"
                                      "  GlobalKnownHostsFile /dev/null\n"
                                      "  LogLevel ERROR\n"
                                      "  BatchMode yes\n"
                                      "  ConnectTimeout 5\n"
                                      "  ServerAliveInterval 5\n"
                                      "  ServerAliveCountMax 3\n");
  write_file(dir + "/sshd_config", "HostKey " + dir +
                                       "/ssh_host_ed25519_key\n"
                                       "AuthorizedKeysFile " +
                                       dir +
                                       "/authorized_keys\n"
                                       "PidFile none\n"
                                       "PermitRootLogin prohibit-password\n"
                                       "PubkeyAuthentication yes\n"
                                       "PasswordAuthentication no\n"
                                       "KbdInteractiveAuthentication no\n"
                                       "StrictModes no\n"
                                       "UsePAM no\n"
                                       "UseDNS no\n"
                                       "PrintMotd no\n"
                                       "X11Forwarding no\n"
                                       "MaxStartups 100:30:200\n"
                                       "MaxSessions 100\n");
  return {"ssh -F " + base::shell_quote(dir + "/ssh_config"), dir + "/sshd_config"};
}

struct HostOutcome
{
  int exit_code = 0;
  double seconds = 0;
  std::string reason;
};

std::string
seconds_text(double seconds)
{
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(1);
  out << seconds << " s";
  return out.str();
}

std::string
pad(std::string text, std::size_t width)
{
  if (text.size() < width) {
    text.resize(width, ' ');
  }
  return text;
}

void
print_block(const std::string& text)
{
  std::lock_guard<std::mutex> guard(base::output_lock());
  base::write_all(STDERR_FILENO, text.data(), text.size());
}

} // namespace

std::string
failure_reason(const std::string& failure_file_text)
{
  const std::string first = failure_file_text.substr(0, failure_file_text.find('\n'));
  std::string reason = first;
  if (!first.empty() && first.back() == ':') {
    // The reference's classes keep a bare first line: the message says what happened.
    const auto start = failure_file_text.find("\nErrorMessage \"");
    if (start != std::string::npos) {
      std::istringstream message(failure_file_text.substr(start + 15));
      std::string line;
      while (std::getline(message, line)) {
        if (line.find_first_not_of(" \t\"") != std::string::npos) {
          reason += " " + line.substr(line.find_first_not_of(' '));
          break;
        }
      }
    }
  }
  if (reason.size() > 200) {
    reason = reason.substr(0, 197) + "...";
  }
  return reason;
}

namespace {

// Several hosts need network namespaces: say what is missing before anything is written.
void
require_namespaces(const LocalJobPlan& plan, const env::EnvMap& environment)
{
  if (const std::string why = SimulatedNetwork::unavailable_reason(environment); !why.empty()) {
    const bool privileges = why.rfind("it needs root", 0) == 0;
    throw base::ClusterError(
        "smlaunch local --instance-count " + std::to_string(plan.hosts.size()) +
        " runs each host in its own network namespace, and " + why +
        (privileges ? ". Run it as root (sudo), or with --instance-count 1." : "; or run with --instance-count 1."));
  }
}

// What the SDK passes every container (reference E.4), and the hosts' launcher settings.
env::EnvMap
host_environment(const LocalOptions& options, const LocalJobPlan& plan, const env::EnvMap& environment)
{
  env::EnvMap host_env = environment;
  host_env.set("AWS_REGION", plan.region);
  host_env.set("TRAINING_JOB_NAME", plan.job_name);
  if (!options.python.empty()) {
    host_env.set("SMLAUNCH_PYTHON", options.python);
  }
  host_env.set("SMLAUNCH_GRACE_PERIOD", std::to_string(static_cast<double>(options.grace_period.count()) / 1000.0));
  host_env.set("SMLAUNCH_LOG_LEVEL", options.verbosity == base::Verbosity::verbose ? "debug"
                                     : options.verbosity == base::Verbosity::quiet ? "warning"
                                                                                   : "info");
  return host_env;
}

std::size_t
host_name_width(const LocalJobPlan& plan)
{
  std::size_t width = 0;
  for (const auto& h : plan.hosts) {
    width = std::max(width, h.name.size());
  }
  return width;
}

// Every host's own `smlaunch train` at once (in its namespaces when `network` is given),
// every host's output on ours, each line after its host's name.
std::vector<process::ChildResult>
run_hosts(process::Supervisor& supervisor, const LocalJobPlan& plan, const env::EnvMap& host_env,
          SimulatedNetwork* network)
{
  const std::size_t width = host_name_width(plan);
  std::error_code exe_ec;
  const std::string self = fs::read_symlink("/proc/self/exe", exe_ec).string();
  std::vector<process::ChildSpec> specs;
  std::vector<std::unique_ptr<process::PrefixedOutput>> relays;
  for (std::size_t i = 0; i < plan.hosts.size(); ++i) {
    int out_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
      throw base::SystemError("pipe2", "host output", errno);
    }
    relays.push_back(
        std::make_unique<process::PrefixedOutput>(out_pipe[0], STDOUT_FILENO, pad(plan.hosts[i].name, width) + " | "));
    process::ChildSpec spec;
    if (network != nullptr) {
      spec.argv = network->enter(i);
    }
    for (const std::string& word : {self, std::string("train"), std::string("--base-dir"), plan.hosts[i].base}) {
      spec.argv.push_back(word);
    }
    spec.envp = host_env.to_envp();
    spec.cwd = plan.job_dir;
    spec.output_fd = out_pipe[1];
    specs.push_back(std::move(spec));
  }
  spdlog::info("starting {}",
               plan.hosts.size() == 1 ? std::string("algo-1") : "algo-1..algo-" + std::to_string(plan.hosts.size()));
  std::vector<process::ChildResult> results;
  try {
    results = supervisor.run_together(specs);
  } catch (...) {
    for (auto& spec : specs) {
      ::close(spec.output_fd);
    }
    throw;
  }
  for (auto& spec : specs) {
    ::close(spec.output_fd);
  }
  for (auto& relay : relays) {
    relay->finish(2s); // a process that kept the pipe is killed just below
  }
  if (network != nullptr) {
    network->close();
  }
  return results;
}

// Each host's exit code, run time, and why it failed (its output/failure, else how it ended).
std::vector<HostOutcome>
host_outcomes(const LocalJobPlan& plan, const std::vector<process::ChildResult>& results)
{
  std::vector<HostOutcome> outcomes;
  for (std::size_t i = 0; i < plan.hosts.size(); ++i) {
    HostOutcome outcome;
    outcome.exit_code = results[i].exit_code;
    outcome.seconds = results[i].seconds;
    if (outcome.exit_code != 0) {
      const std::string failure = read_file(plan.hosts[i].base + "/output/failure");
      if (!failure.empty()) {
        outcome.reason = failure_reason(failure);
      } else if (results[i].term_signal != 0) {
        outcome.reason = "killed by " + base::signal_name(results[i].term_signal) + " (no output/failure written)";
      } else {
        outcome.reason = "exit status " + std::to_string(outcome.exit_code) + " (no output/failure written)";
      }
    }
    outcomes.push_back(outcome);
  }
  return outcomes;
}

struct Artifacts
{
  std::string model_archive;
  std::string output_archive;
};

// <job>/summary.json, and the table printed at the end.
std::string
write_summary(const LocalJobPlan& plan, const std::vector<HostOutcome>& outcomes, int exit_code, int stop_signal,
              const Artifacts& artifacts)
{
  const std::size_t width = host_name_width(plan);
  nlohmann::ordered_json summary = {{"job_name", plan.job_name}, {"job_dir", plan.job_dir}, {"exit_code", exit_code}};
  if (stop_signal != 0) {
    summary["stopped_by"] = base::signal_name(stop_signal);
  }
  summary["hosts"] = nlohmann::ordered_json::array();
  std::string table = "smlaunch local: job " + plan.job_name + " " +
                      (exit_code == 0     ? std::string("completed")
                       : stop_signal != 0 ? "stopped by " + base::signal_name(stop_signal)
                                          : "failed (exit " + std::to_string(exit_code) + ")") +
                      "\n  " + pad("host", width + 2) + pad("role", 8) + pad("exit", 6) + pad("time", 10) + "reason\n";
  for (std::size_t i = 0; i < plan.hosts.size(); ++i) {
    const auto& o = outcomes[i];
    table += "  " + pad(plan.hosts[i].name, width + 2) + pad(plan.hosts[i].role, 8) +
             pad(std::to_string(o.exit_code), 6) + pad(seconds_text(o.seconds), 10) + o.reason + "\n";
    summary["hosts"].push_back({{"host", plan.hosts[i].name},
                                {"role", plan.hosts[i].role},
                                {"exit_code", o.exit_code},
                                {"seconds", o.seconds},
                                {"reason", o.reason}});
  }
  table += "  model:  " + artifacts.model_archive + "\n  output: " + artifacts.output_archive + "\n";
  try {
    write_file(plan.job_dir + "/summary.json", summary.dump(2) + "\n");
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what()); // the printed summary still says what happened
  }
  return table;
}

} // namespace

int
run_local(const std::vector<std::string>& args, const env::EnvMap& environment)
{
  const LocalOptions options = parse_local_options(args, environment);
  if (options.help) {
    base::print_to(STDOUT_FILENO, local_help_text());
    return 0;
  }
  base::setup_logging(options.verbosity);
  for (const auto& s : options.settings) {
    spdlog::debug("setting {} = {} ({})", s.name, s.value, s.origin);
  }
  std::error_code ec;
  const std::string cwd = fs::current_path(ec).string();
  const env::Value user_hyperparameters = load_user_hyperparameters(options);
  const LocalJobPlan plan =
      plan_local_job(options, user_hyperparameters, cwd, environment, std::chrono::system_clock::now());

  const bool simulated = plan.hosts.size() > 1;
  if (simulated) {
    require_namespaces(plan, environment);
  }
  create_job_directory(plan);
  spdlog::info("job {}: {} host(s) under {}", plan.job_name, plan.hosts.size(), plan.job_dir);

  process::Supervisor::Options supervision;
  // Each host's launcher gives its script the grace period; this one only backs it up.
  supervision.grace_period = options.grace_period + 10s;
  process::Supervisor supervisor(supervision);

  env::EnvMap host_env = host_environment(options, plan, environment);
  const std::string state_dir = plan.job_dir + "/.smlaunch-local";
  fs::create_directories(state_dir, ec);
  copy_source(plan.source_dir, plan.code_copy, plan.job_dir);

  std::unique_ptr<SimulatedNetwork> network;
  std::optional<ShortDirectory> ssh_dir;
  if (simulated) {
    ssh_dir.emplace();
    const SshFiles ssh = create_ssh_files(supervisor, environment, ssh_dir->path());
    host_env.set("SMLAUNCH_SSH_COMMAND", ssh.ssh_command);
    host_env.set("SMLAUNCH_SSHD_CONFIG", ssh.sshd_config);
    std::vector<std::string> names;
    for (const auto& h : plan.hosts) {
      names.push_back(h.name);
    }
    write_file(state_dir + "/hosts", hosts_file_text(names));
    network = std::make_unique<SimulatedNetwork>(supervisor, environment, names, state_dir + "/hosts", plan.job_dir);
  }

  const std::vector<process::ChildResult> results = run_hosts(supervisor, plan, host_env, network.get());
  const int stop_signal = supervisor.poll_stop_signal();

  // Artifacts, as the SDK collects them: the shared model directory, and every host's
  // output/ merged (a later host's file replaces an earlier one's).
  const std::string model_archive = model_archive_path(plan);
  const std::string output_archive = output_archive_path(plan);
  const std::string artifacts_error = write_artifacts(supervisor, environment, plan);

  // What happened on each host: the job's code is the first failing host's.
  const std::vector<HostOutcome> outcomes = host_outcomes(plan, results);
  int exit_code = 0;
  for (const auto& outcome : outcomes) {
    if (outcome.exit_code != 0) {
      exit_code = outcome.exit_code;
      break;
    }
  }
  if (stop_signal != 0) {
    exit_code = 128 + stop_signal;
  } else if (exit_code == 0 && !artifacts_error.empty()) {
    exit_code = base::to_int(base::ExitCode::internal);
  }

  std::string table = write_summary(plan, outcomes, exit_code, stop_signal, {model_archive, output_archive});
  if (!artifacts_error.empty()) {
    table += "  " + artifacts_error + "\n";
  }
  if (!options.keep && artifacts_error.empty()) { // the trees are what is left of a job whose artifacts failed
    for (const auto& h : plan.hosts) {
      fs::remove_all(h.base, ec); // links (model, channels) are removed, never followed
    }
    fs::remove_all(plan.model_dir, ec);
    fs::remove_all(state_dir, ec);
  } else {
    table += "  trees:  " + plan.job_dir + "/algo-*\n";
  }
  print_block(table);
  return exit_code;
}

} // namespace local
