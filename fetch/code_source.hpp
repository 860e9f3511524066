// Where the user's code comes from (sagemaker_submit_directory) and how it reaches
// <base>/code.
#pragma once

#include <functional>
#include <string>

namespace fetch {

enum class SourceKind {
  code_dir,  // the code directory itself (the default): nothing to fetch
  directory, // a local folder, or file://folder
  file,      // a single local file
  archive,   // a local .tar.gz / .tgz / .tar
  s3,        // s3://bucket/key
};

enum class StagingAction {
  none,            // the code is already in place
  keep_existing,   // code/ holds files smlaunch did not stage: kept, with a warning
  copy_directory,  // copy the folder's contents into code/
  copy_file,       // copy one file into code/
  extract_archive, // unpack a local archive into code/ (skipped when already unpacked)
  download_s3,     // fetch and unpack s3://... (skipped when code/ holds the same ETag)
};

struct CodeSource
{
  SourceKind kind = SourceKind::code_dir;
  std::string uri;        // as the hyperparameter gave it
  std::string local_path; // the path on this machine, when local
};

const char* to_string(SourceKind kind);
const char* to_string(StagingAction action);

// Classify `module_dir` (a path, file:// URI or s3:// URI). Throws StagingError when a
// local source does not exist.
CodeSource classify_code_source(const std::string& module_dir, const std::string& code_dir);

// What staging will do. code/ is replaced only when smlaunch staged it before
// (`staged_by_smlaunch`: the marker exists); other contents are the image's and are kept.
StagingAction decide_staging(const CodeSource& source, bool code_dir_has_files, bool staged_by_smlaunch);

// The folder whose contents code/ will hold once staged (for planning), or "" when the
// contents are not known before fetching.
std::string code_view_root(const CodeSource& source, StagingAction action, const std::string& code_dir);

bool directory_has_files(const std::string& dir);

// Where smlaunch records what it staged into code/: <base>/.smlaunch/staged-code.json.
std::string staging_marker_path(const std::string& base_dir);

// Unpacking and downloading, kept out of the launcher's own process (see fetch/): the
// launcher runs `smlaunch-fetch` under its supervisor; tests may substitute their own.
class Fetcher
{
public:
  virtual ~Fetcher() = default;
  virtual void extract(const std::string& archive, const std::string& destination) = 0;
  virtual std::string s3_etag(const std::string& uri) = 0;
  virtual void s3_get(const std::string& uri, const std::string& destination) = 0;
};

struct StagingContext
{
  std::string base_dir;
  std::string code_dir;
  Fetcher* fetcher = nullptr; // needed for archives and s3://
  // Polled while copying a folder: a non-zero signal number stops the staging.
  std::function<int()> stop_signal;
};

// Carry out `action`. Throws StagingError; nothing is written outside the base directory.
void stage_code(const CodeSource& source, StagingAction action, const StagingContext& ctx);

// A fast content checksum of a file (FNV-1a, 64 bits), to recognise an archive.
std::string file_checksum(const std::string& path);

} // namespace fetch
