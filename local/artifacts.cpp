#include "local/artifacts.hpp"

#include "base/logging.hpp"
#include "fetch/fetch_helper.hpp"
#include "process/failure_report.hpp"

#include <cstdio>
#include <filesystem>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

namespace local {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string
model_archive_path(const LocalJobPlan& plan)
{
  return plan.job_dir + "/model.tar.gz";
}

std::string
output_archive_path(const LocalJobPlan& plan)
{
  return plan.job_dir + "/output.tar.gz";
}

namespace {

// Pack `sources` into `archive`; "" or why not.
std::string
pack(process::Supervisor& supervisor, const env::EnvMap& environment, const std::string& archive,
     const std::vector<std::string>& sources)
{
  const std::string partial = archive + ".partial-" + std::to_string(getpid());
  process::ChildSpec spec;
  spec.argv = {fetch::fetch_helper_path(), "pack", partial};
  spec.argv.insert(spec.argv.end(), sources.begin(), sources.end());
  spec.envp = environment.to_envp();
  spec.timeout = 600s;
  const process::ChildResult r = supervisor.run(spec);
  std::string why;
  if (r.exec_errno != 0) {
    why = "cannot run " + spec.argv[0] + ": " + std::system_category().message(r.exec_errno);
  } else if (r.exit_code != 0) {
    // The helper's last line on stderr (which the user sees too) says what went wrong.
    why = process::last_lines(r.output_tail, 1024);
    const auto last = why.rfind("smlaunch-fetch: ");
    why =
        last != std::string::npos ? why.substr(last + 16) : "smlaunch-fetch exited with " + std::to_string(r.exit_code);
  } else if (::rename(partial.c_str(), archive.c_str()) != 0) {
    why = "cannot rename " + partial + ": " + std::system_category().message(errno);
  }
  std::error_code ec;
  fs::remove(partial, ec);
  return why;
}

} // namespace

std::string
write_artifacts(process::Supervisor& supervisor, const env::EnvMap& environment, const LocalJobPlan& plan)
{
  std::vector<std::string> outputs;
  for (const auto& h : plan.hosts) {
    outputs.push_back(h.base + "/output");
  }
  std::string errors;
  for (const auto& [archive, sources] : {std::pair{model_archive_path(plan), std::vector<std::string>{plan.model_dir}},
                                         std::pair{output_archive_path(plan), outputs}}) {
    const std::string why = pack(supervisor, environment, archive, sources);
    if (!why.empty()) {
      const std::string line = "could not write " + fs::path(archive).filename().string() + ": " + why;
      spdlog::error("{}", line);
      errors += (errors.empty() ? "" : "\n") + line;
    }
  }
  return errors;
}

} // namespace local
