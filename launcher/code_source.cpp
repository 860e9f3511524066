#include "launcher/code_source.hpp"

#include "launcher/errors.hpp"

#include <filesystem>
#include <system_error>

namespace launcher {

namespace fs = std::filesystem;

const char*
to_string(SourceKind kind)
{
  switch (kind) {
  case SourceKind::code_dir:
    return "code_dir";
  case SourceKind::directory:
    return "directory";
  case SourceKind::file:
    return "file";
  case SourceKind::archive:
    return "archive";
  case SourceKind::s3:
    return "s3";
  }
  return "?";
}

const char*
to_string(StagingAction action)
{
  switch (action) {
  case StagingAction::none:
    return "none";
  case StagingAction::keep_existing:
    return "keep_existing";
  case StagingAction::copy_directory:
    return "copy_directory";
  case StagingAction::copy_file:
    return "copy_file";
  case StagingAction::unsupported:
    return "unsupported";
  }
  return "?";
}

namespace {

bool
is_archive_name(const std::string& path)
{
  for (const char* ext : {".tar.gz", ".tgz", ".tar"}) {
    if (path.ends_with(ext)) {
      return true;
    }
  }
  return false;
}

std::string
strip_trailing_slashes(std::string p)
{
  while (p.size() > 1 && p.back() == '/') {
    p.pop_back();
  }
  return p;
}

} // namespace

CodeSource
classify_code_source(const std::string& module_dir, const std::string& code_dir)
{
  CodeSource source;
  source.uri = module_dir;
  if (module_dir.rfind("s3://", 0) == 0) {
    source.kind = SourceKind::s3;
    return source;
  }
  std::string path = module_dir;
  if (path.rfind("file://", 0) == 0) {
    path = path.substr(7);
    if (path.rfind("localhost/", 0) == 0) {
      path = path.substr(9);
    }
  }
  path = strip_trailing_slashes(path);
  source.local_path = path;
  std::error_code ec;
  if (fs::equivalent(path, code_dir, ec) || path == strip_trailing_slashes(code_dir)) {
    source.kind = SourceKind::code_dir;
    return source;
  }
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    throw StagingError("sagemaker_submit_directory \"" + module_dir + "\": " + path +
                       " does not exist; expected a folder, a file:// URI, a .tar.gz or an s3:// URI");
  }
  if (fs::is_directory(status)) {
    source.kind = SourceKind::directory;
  } else if (is_archive_name(path)) {
    source.kind = SourceKind::archive;
  } else {
    source.kind = SourceKind::file;
  }
  return source;
}

bool
directory_has_files(const std::string& dir)
{
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  return !ec && it != fs::directory_iterator();
}

StagingAction
decide_staging(const CodeSource& source, bool code_dir_has_files)
{
  if (source.kind == SourceKind::code_dir) {
    return StagingAction::none;
  }
  if (code_dir_has_files) {
    return StagingAction::keep_existing;
  }
  switch (source.kind) {
  case SourceKind::directory:
    return StagingAction::copy_directory;
  case SourceKind::file:
    return StagingAction::copy_file;
  default:
    return StagingAction::unsupported;
  }
}

std::string
code_view_root(const CodeSource& source, StagingAction action, const std::string& code_dir)
{
  switch (action) {
  case StagingAction::none:
  case StagingAction::keep_existing:
    return code_dir;
  case StagingAction::copy_directory:
    return source.local_path;
  case StagingAction::copy_file:
  case StagingAction::unsupported:
    return "";
  }
  return "";
}

void
stage_code(const CodeSource& source, StagingAction action, const std::string& code_dir)
{
  std::error_code ec;
  fs::create_directories(code_dir, ec);
  if (ec) {
    throw StagingError("cannot create the code directory " + code_dir + ": " + ec.message());
  }
  switch (action) {
  case StagingAction::none:
  case StagingAction::keep_existing:
    return;
  case StagingAction::copy_directory:
    // Links are copied as links: a link must not pull files from outside into code/.
    fs::copy(source.local_path, code_dir, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
    break;
  case StagingAction::copy_file:
    fs::copy_file(source.local_path, fs::path(code_dir) / fs::path(source.local_path).filename(), ec);
    break;
  case StagingAction::unsupported:
    throw StagingError("sagemaker_submit_directory \"" + source.uri + "\": " + to_string(source.kind) +
                       " sources are not supported by this build; use a folder or a file:// URI");
  }
  if (ec) {
    throw StagingError("cannot copy " + source.local_path + " into " + code_dir + ": " + ec.message());
  }
}

} // namespace launcher
