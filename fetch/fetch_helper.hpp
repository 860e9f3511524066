// The launcher's Fetcher: runs `smlaunch-fetch` (beside this binary) under the supervisor,
// so libarchive and libcurl (and their ~40 shared libraries) are loaded only by jobs that
// stage an archive or an s3:// object, and a SIGTERM stops a download like any child.
#pragma once

#include "env/env_map.hpp"
#include "fetch/code_source.hpp"
#include "process/supervisor.hpp"

#include <string>
#include <vector>

namespace fetch {

class HelperFetcher : public Fetcher
{
public:
  // `state_dir` (<base>/.smlaunch) holds the helper's small answer files.
  HelperFetcher(process::Supervisor& supervisor, env::EnvMap environment, std::string sagemaker_region,
                std::string state_dir);

  void extract(const std::string& archive, const std::string& destination) override;
  std::string s3_etag(const std::string& uri) override;
  void s3_get(const std::string& uri, const std::string& destination) override;

private:
  void run(std::vector<std::string> args);

  process::Supervisor& m_supervisor;
  env::EnvMap m_environment;
  std::string m_region;
  std::string m_helper;
  std::string m_etag_dir;
};

// <dir of this binary>/smlaunch-fetch.
std::string fetch_helper_path();

} // namespace fetch
