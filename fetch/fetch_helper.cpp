#include "fetch/fetch_helper.hpp"

#include "base/errors.hpp"
#include "process/failure_report.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <unistd.h>

namespace fetch {

std::string
fetch_helper_path()
{
  std::error_code ec;
  return (std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "smlaunch-fetch").string();
}

HelperFetcher::HelperFetcher(process::Supervisor& supervisor, env::EnvMap environment, std::string sagemaker_region,
                             std::string state_dir)
    : m_supervisor(supervisor), m_environment(std::move(environment)), m_region(std::move(sagemaker_region)),
      m_helper(fetch_helper_path()), m_etag_dir(std::move(state_dir))
{
  std::error_code ec;
  std::filesystem::create_directories(m_etag_dir, ec);
}

void
HelperFetcher::run(std::vector<std::string> args)
{
  process::ChildSpec spec;
  spec.argv = {m_helper};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  if (!m_region.empty()) {
    spec.argv.insert(spec.argv.end(), {"--sagemaker-region", m_region});
  }
  spec.envp = m_environment.to_envp();
  const process::ChildResult r = m_supervisor.run(spec);
  if (r.stop_signal != 0) {
    throw base::StoppedError(r.stop_signal, "staging");
  }
  if (r.exec_errno != 0) {
    throw base::StagingError("cannot run " + m_helper + ": " + std::system_category().message(r.exec_errno));
  }
  if (r.exit_code != 0) {
    // The helper's last line says what went wrong.
    std::string message = process::last_lines(r.output_tail, 2048);
    const auto last = message.rfind("smlaunch-fetch: ");
    if (last != std::string::npos) {
      message = message.substr(last + 16);
    }
    throw base::StagingError(message.empty() ? "smlaunch-fetch exited with " + std::to_string(r.exit_code) : message);
  }
}

void
HelperFetcher::extract(const std::string& archive, const std::string& destination)
{
  run({"extract", archive, destination});
}

std::string
HelperFetcher::s3_etag(const std::string& uri)
{
  const std::string file = m_etag_dir + "/etag-" + std::to_string(getpid());
  run({"s3-etag", uri, file});
  std::ifstream in(file);
  std::string etag;
  std::getline(in, etag);
  std::error_code ec;
  std::filesystem::remove(file, ec);
  return etag;
}

void
HelperFetcher::s3_get(const std::string& uri, const std::string& destination)
{
  run({"s3-get", uri, destination});
}

} // namespace fetch
