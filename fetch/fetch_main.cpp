// smlaunch-fetch: the launcher's helper for what needs libarchive and libcurl.
//   smlaunch-fetch extract ARCHIVE DESTINATION
//   smlaunch-fetch s3-etag s3://BUCKET/KEY ANSWER_FILE [--sagemaker-region R]
//   smlaunch-fetch s3-get  s3://BUCKET/KEY DESTINATION [--sagemaker-region R]
//   smlaunch-fetch pack    ARCHIVE.tar.gz DIRECTORY...   (`smlaunch local`'s artifacts)
// Credentials, region and endpoint come from the environment (README: "Code from S3").
// Exit 0, or 66 with "smlaunch-fetch: <why>" as the last line of stderr.
#include "base/logging.hpp"
#include "env/env_map.hpp"
#include "fetch/archive.hpp"
#include "fetch/s3_download.hpp"

#include <fstream>
#include <iostream>

int
main(int argc, char** argv, char** envp)
{
  base::setup_logging(base::Verbosity::normal);
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string region;
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--sagemaker-region") {
      region = args[i + 1];
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      break;
    }
  }
  try {
    if (args.size() >= 2 && args[0] == "pack") {
      fetch::create_archive(args[1], std::vector<std::string>(args.begin() + 2, args.end()));
      return 0;
    }
    if (args.size() != 3) {
      throw std::invalid_argument("usage: smlaunch-fetch extract|s3-etag|s3-get SOURCE DESTINATION");
    }
    if (args[0] == "extract") {
      fetch::extract_archive(args[1], args[2]);
      return 0;
    }
    const env::EnvMap environment = env::EnvMap::from_environ(envp);
    const auto location = fetch::parse_s3_uri(args[1]);
    if (!location) {
      throw std::invalid_argument("\"" + args[1] + "\" is not an s3://bucket/key URI");
    }
    const auto settings = fetch::s3_settings_from(environment, region);
    const auto credentials = fetch::resolve_aws_credentials(environment);
    if (args[0] == "s3-etag") {
      const auto head = fetch::s3_head(settings, credentials, *location, {});
      std::ofstream(args[2]) << head.etag << "\n";
      return 0;
    }
    if (args[0] == "s3-get") {
      const auto got = fetch::s3_download(settings, credentials, *location, args[2], {});
      spdlog::info("downloaded {} bytes", got.size);
      return 0;
    }
    throw std::invalid_argument("unknown command \"" + args[0] + "\"");
  } catch (const std::exception& e) {
    std::cerr << "smlaunch-fetch: " << e.what() << std::endl;
    return 66;
  }
}
