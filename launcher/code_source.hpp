// Where the user's code comes from (sagemaker_submit_directory) and how it reaches
// <base>/code.
#pragma once

#include <string>

namespace launcher {

enum class SourceKind {
  code_dir,  // the code directory itself (the default): nothing to fetch
  directory, // a local folder, or file://folder
  file,      // a single local file
  archive,   // a local .tar.gz / .tgz / .tar
  s3,        // s3://bucket/key
};

enum class StagingAction {
  none,           // the code is already in place
  keep_existing,  // code/ is not empty: kept as the reference does, with a warning
  copy_directory, // copy the folder's contents into code/
  copy_file,      // copy one file into code/
  unsupported,    // a source this build cannot fetch yet (archives, s3://)
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

// What staging will do, given whether code/ already holds files.
StagingAction decide_staging(const CodeSource& source, bool code_dir_has_files);

// The folder whose contents code/ will hold once staged (for planning), or "" when the
// contents are not known before fetching.
std::string code_view_root(const CodeSource& source, StagingAction action, const std::string& code_dir);

bool directory_has_files(const std::string& dir);

// Carry out `action` (creates code/ if needed). Throws StagingError.
void stage_code(const CodeSource& source, StagingAction action, const std::string& code_dir);

} // namespace launcher
