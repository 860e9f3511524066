#include "fetch/code_source.hpp"

#include "base/errors.hpp"
#include "base/logging.hpp"
#include "base/state_file.hpp"
#include "env/config_files.hpp"
#include "fetch/tree_copy.hpp"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace fetch {

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
  case StagingAction::extract_archive:
    return "extract_archive";
  case StagingAction::download_s3:
    return "download_s3";
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

// RFC 8089: a file:// URI carries its path percent-encoded ("my%20src"). A malformed
// escape stays as it is.
std::string
percent_decode(const std::string& text)
{
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) != 0 &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2])) != 0) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
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
    path = percent_decode(path);
  }
  path = strip_trailing_slashes(path);
  source.local_path = path;
  std::error_code ec;
  // The SDK's local mode writes "/opt/ml/code" (where it mounts the code); with another
  // base directory that means this tree's code/, and /opt/ml itself is never read.
  const bool platform_code_dir = path == "/opt/ml/code";
  if (platform_code_dir || fs::equivalent(path, code_dir, ec) || path == strip_trailing_slashes(code_dir)) {
    source.kind = SourceKind::code_dir;
    if (platform_code_dir) {
      source.local_path = strip_trailing_slashes(code_dir);
    }
    return source;
  }
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    throw base::StagingError("sagemaker_submit_directory \"" + module_dir + "\": " + path +
                             " does not exist; expected a folder, a file:// URI, a .tar.gz or an s3:// URI");
  }
  if (fs::is_directory(status)) {
    source.kind = SourceKind::directory;
  } else if (!fs::is_regular_file(status)) {
    // Reading a FIFO blocks and a device never ends (/dev/zero): refused before any read.
    throw base::StagingError("sagemaker_submit_directory \"" + module_dir + "\": " + path + " is " +
                             (fs::is_fifo(status)     ? "a FIFO"
                              : fs::is_socket(status) ? "a socket"
                                                      : "a device") +
                             ", not a regular file; expected a folder, a file:// URI, a .tar.gz or an s3:// URI");
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
decide_staging(const CodeSource& source, bool code_dir_has_files, bool staged_by_smlaunch)
{
  if (source.kind == SourceKind::code_dir) {
    return StagingAction::none;
  }
  if (code_dir_has_files && !staged_by_smlaunch) {
    return StagingAction::keep_existing;
  }
  switch (source.kind) {
  case SourceKind::directory:
    return StagingAction::copy_directory;
  case SourceKind::file:
    return StagingAction::copy_file;
  case SourceKind::archive:
    return StagingAction::extract_archive;
  case SourceKind::s3:
    return StagingAction::download_s3;
  case SourceKind::code_dir:
    break;
  }
  return StagingAction::none;
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
  default:
    return ""; // known once fetched or unpacked
  }
}

std::string
staging_marker_path(const std::string& base_dir)
{
  return base_dir + "/.smlaunch/staged-code.json";
}

std::string
file_checksum(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  std::uint64_t hash = 14695981039346656037ULL;
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto n = static_cast<std::size_t>(in.gcount());
    for (std::size_t i = 0; i < n; ++i) {
      hash ^= static_cast<unsigned char>(buffer[i]);
      hash *= 1099511628211ULL;
    }
  }
  char out[32];
  // 25 bytes with the NUL: it always fits.
  (void)std::snprintf(out, sizeof(out), "fnv1a64:%016llx", static_cast<unsigned long long>(hash));
  return out;
}

namespace {

struct Marker
{
  std::string uri;
  std::string identity;
};

std::optional<Marker>
read_marker(const std::string& base_dir)
{
  try {
    const nlohmann::json doc = base::read_json_state(staging_marker_path(base_dir));
    return Marker{base::bytes_from_json(doc.at("uri")), base::bytes_from_json(doc.at("identity"))};
  } catch (const std::exception&) {
    return std::nullopt; // missing or unreadable: the code is staged again
  }
}

// Written whole or not at all (a reader never sees half a marker), and checked: a marker
// that cannot be written fails the staging rather than leaving a stale one. Not flushed to
// disk: the code it describes is not either, so an fsync (0.25-0.35 ms here, on every
// start) would make nothing crash safe.
void
write_marker(const std::string& base_dir, const Marker& marker)
{
  nlohmann::ordered_json doc;
  doc["uri"] = base::bytes_to_json(marker.uri);
  doc["identity"] = base::bytes_to_json(marker.identity);
  base::write_json_atomically(staging_marker_path(base_dir), doc, 0644, base::Durability::atomic_only);
}

bool
is_mount_point(const std::string& dir)
{
  struct statx stx
  {
  };
  if (::statx(AT_FDCWD, dir.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) == 0 &&
      (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0) {
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  }
  struct stat self
  {
  };
  struct stat parent
  {
  };
  return ::stat(dir.c_str(), &self) == 0 && ::stat((dir + "/..").c_str(), &parent) == 0 && self.st_dev != parent.st_dev;
}

// A fresh, empty `staging` folder (whatever an earlier run left there removed) filled by
// `fill`; removed again when `fill` throws.
void
fill_new_folder(const std::string& staging, const std::function<void(const std::string&)>& fill)
{
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) {
    throw base::StagingError("cannot create " + staging + ": " + ec.message());
  }
  try {
    fill(staging);
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
}

// code/ is a volume (Docker's `-v ...:/opt/ml/code`): it cannot be renamed over, so the
// code is staged in a folder inside it, then the old entries are removed and the new ones
// renamed up one level (same volume, so each move is a rename).
void
replace_code_dir_in_place(const StagingContext& ctx, const std::function<void(const std::string&)>& fill)
{
  const std::string name = ".smlaunch-staging-" + std::to_string(getpid());
  const std::string staging = ctx.code_dir + "/" + name;
  fill_new_folder(staging, fill);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(ctx.code_dir, ec)) {
    if (entry.path().filename() != name) {
      fs::remove_all(entry.path(), ec);
      if (ec) {
        throw base::StagingError("cannot remove " + entry.path().string() + " from " + ctx.code_dir + ": " +
                                 ec.message());
      }
    }
  }
  for (const auto& entry : fs::directory_iterator(staging, ec)) {
    fs::rename(entry.path(), fs::path(ctx.code_dir) / entry.path().filename(), ec);
    if (ec) {
      throw base::StagingError("cannot move " + entry.path().string() + " into " + ctx.code_dir + ": " + ec.message());
    }
  }
  fs::remove(staging, ec);
  if (ec) {
    throw base::StagingError("cannot remove " + staging + ": " + ec.message());
  }
}

// Unpack or copy into a fresh folder next to code/, then swap it in, so a failure
// leaves no half-staged code/ behind.
void
replace_code_dir(const StagingContext& ctx, const std::function<void(const std::string&)>& fill)
{
  if (is_mount_point(ctx.code_dir)) {
    spdlog::info("{} is a mount point: replacing its contents in place", ctx.code_dir);
    replace_code_dir_in_place(ctx, fill);
    return;
  }
  const std::string staging = ctx.base_dir + "/.smlaunch/staging-" + std::to_string(getpid());
  fill_new_folder(staging, fill);
  std::error_code ec;
  fs::remove_all(ctx.code_dir, ec);
  fs::rename(staging, ctx.code_dir, ec);
  if (ec) {
    fs::remove_all(staging, ec);
    throw base::StagingError("cannot move the staged code into " + ctx.code_dir + ": " + ec.message());
  }
}

void
copy_tree(const StagingContext& ctx, const std::string& from, const std::string& to)
{
  // The base dir is never copied into its own code/ (a source folder that contains it).
  TreeCopyOptions options;
  options.leave_out.emplace_back(ctx.base_dir, "it is the base directory " + ctx.base_dir + ", which holds code/");
  options.stop_signal = ctx.stop_signal;
  copy_source_tree(from, to, options);
}

Fetcher&
fetcher_of(const StagingContext& ctx)
{
  if (ctx.fetcher == nullptr) {
    throw base::StagingError("internal: no fetcher for archives and s3:// sources");
  }
  return *ctx.fetcher;
}

void
unpack_or_copy(const StagingContext& ctx, const std::string& file, const std::string& name, const std::string& into)
{
  if (is_archive_name(name)) {
    fetcher_of(ctx).extract(file, into);
    return;
  }
  std::error_code ec;
  fs::copy_file(file, fs::path(into) / fs::path(name).filename(), ec);
  if (ec) {
    throw base::StagingError("cannot copy " + file + " into " + into + ": " + ec.message());
  }
}

} // namespace

void
stage_code(const CodeSource& source, StagingAction action, const StagingContext& ctx)
{
  std::error_code ec;
  fs::create_directories(ctx.code_dir, ec);
  if (ec) {
    throw base::StagingError("cannot create the code directory " + ctx.code_dir + ": " + ec.message());
  }
  if (action == StagingAction::none || action == StagingAction::keep_existing) {
    return;
  }
  const auto marker = read_marker(ctx.base_dir);
  const bool has_files = directory_has_files(ctx.code_dir);
  const auto already = [&](const std::string& identity) {
    return has_files && marker && marker->uri == source.uri && marker->identity == identity;
  };
  switch (action) {
  case StagingAction::none:
  case StagingAction::keep_existing:
    return;
  case StagingAction::copy_directory:
    replace_code_dir(ctx, [&](const std::string& into) { copy_tree(ctx, source.local_path, into); });
    write_marker(ctx.base_dir, {source.uri, "directory"});
    return;
  case StagingAction::copy_file:
    replace_code_dir(ctx,
                     [&](const std::string& into) { unpack_or_copy(ctx, source.local_path, source.local_path, into); });
    write_marker(ctx.base_dir, {source.uri, file_checksum(source.local_path)});
    return;
  case StagingAction::extract_archive: {
    const std::string identity = file_checksum(source.local_path);
    if (already(identity)) {
      spdlog::info("{} already holds {} ({}): not unpacking it again", ctx.code_dir, source.uri, identity);
      return;
    }
    spdlog::info("unpacking {} into {}", source.local_path, ctx.code_dir);
    replace_code_dir(ctx, [&](const std::string& into) { fetcher_of(ctx).extract(source.local_path, into); });
    write_marker(ctx.base_dir, {source.uri, identity});
    return;
  }
  case StagingAction::download_s3: {
    const auto slash = source.uri.find('/', 5);
    if (source.uri.rfind("s3://", 0) != 0 || slash == std::string::npos || slash == 5 ||
        slash + 1 >= source.uri.size()) {
      throw base::StagingError("sagemaker_submit_directory \"" + source.uri + "\" is not an s3://bucket/key URI");
    }
    const std::string key = source.uri.substr(slash + 1);
    const std::string etag = fetcher_of(ctx).s3_etag(source.uri);
    const std::string identity = "etag:" + etag;
    if (!etag.empty() && already(identity)) {
      spdlog::info("{} already holds {} (ETag {}): not downloading it again", ctx.code_dir, source.uri, etag);
      return;
    }
    const std::string download = ctx.base_dir + "/.smlaunch/download-" + std::to_string(getpid());
    fs::create_directories(fs::path(download).parent_path(), ec);
    try {
      fetcher_of(ctx).s3_get(source.uri, download);
      replace_code_dir(ctx, [&](const std::string& into) { unpack_or_copy(ctx, download, key, into); });
    } catch (...) {
      fs::remove(download, ec);
      throw;
    }
    fs::remove(download, ec);
    write_marker(ctx.base_dir, {source.uri, identity});
    return;
  }
  }
}

} // namespace fetch
