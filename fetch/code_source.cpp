#include "fetch/code_source.hpp"

#include "base/errors.hpp"
#include "base/logging.hpp"
#include "base/state_file.hpp"
#include "env/config_files.hpp"
#include "fetch/tree_copy.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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

// Removes `name` (at `path`, in the folder `parent_fd`) and all below it that lies on the
// file system `dev`: a mount point (host data bind-mounted under code/) is never entered.
// Folders are made u+rwx first (an archive may hold a 0555 one). Keeps the first error.
void
remove_below(int parent_fd, const char* name, dev_t dev, const std::string& path, std::string& first_error)
{
  const auto note = [&](const std::string& what) {
    if (first_error.empty()) {
      first_error = what;
    }
  };
  struct statx stx
  {
  };
  if (::statx(parent_fd, name, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MODE, &stx) != 0) {
    if (errno != ENOENT) {
      note("cannot inspect " + path + ": " + base::errno_text(errno));
    }
    return;
  }
  if (!S_ISDIR(stx.stx_mode)) {
    if (::unlinkat(parent_fd, name, 0) != 0 && errno != ENOENT) {
      note("cannot remove " + path + ": " + base::errno_text(errno));
    }
    return;
  }
  const bool mount_root =
      (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0 && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  if (mount_root || makedev(stx.stx_dev_major, stx.stx_dev_minor) != dev) {
    note(path + " is a mount point: left in place");
    return;
  }
  if ((stx.stx_mode & S_IRWXU) != S_IRWXU) {
    if (::fchmodat(parent_fd, name, (stx.stx_mode & 07777) | S_IRWXU, 0) != 0) {
      note("cannot make " + path + " writable: " + base::errno_text(errno));
    }
  }
  const int fd = ::openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    note("cannot open " + path + ": " + base::errno_text(errno));
    return;
  }
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    note("cannot read " + path + ": " + base::errno_text(errno));
    ::close(fd);
    return;
  }
  std::vector<std::string> names;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): readdir is safe on a stream no other thread uses
  while (const dirent* e = ::readdir(dir)) {
    const std::string child = e->d_name;
    if (child != "." && child != "..") {
      names.push_back(child);
    }
  }
  for (const auto& child : names) {
    remove_below(::dirfd(dir), child.c_str(), dev, path + "/" + child, first_error);
  }
  ::closedir(dir);
  if (::unlinkat(parent_fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
    note("cannot remove " + path + ": " + base::errno_text(errno));
  }
}

// Like fs::remove_all, but never across a mount boundary; "" or the first error, naming the file.
std::string
remove_tree(const std::string& path)
{
  const fs::path p(path);
  const std::string parent = p.has_parent_path() ? p.parent_path().string() : ".";
  const int parent_fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (parent_fd < 0) {
    return errno == ENOENT ? "" : "cannot open " + parent + ": " + base::errno_text(errno);
  }
  std::string first_error;
  struct stat st
  {
  };
  if (::fstat(parent_fd, &st) != 0) {
    first_error = "cannot inspect " + parent + ": " + base::errno_text(errno);
  } else {
    remove_below(parent_fd, p.filename().c_str(), st.st_dev, path, first_error);
  }
  ::close(parent_fd);
  return first_error;
}

// A fresh, empty `staging` folder (whatever an earlier run left there removed) filled by
// `fill`; removed again when `fill` throws.
void
fill_new_folder(const std::string& staging, const std::function<void(const std::string&)>& fill)
{
  if (const std::string problem = remove_tree(staging); !problem.empty()) {
    throw base::StagingError("cannot clear the staging folder " + staging + ": " + problem);
  }
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) {
    throw base::StagingError("cannot create " + staging + ": " + ec.message());
  }
  try {
    fill(staging);
  } catch (...) {
    (void)remove_tree(staging);
    throw;
  }
}

// The marker goes before code/ changes: a failure part-way then stages again next time
// instead of trusting a half-replaced tree.
void
remove_marker(const std::string& base_dir)
{
  const std::string marker = staging_marker_path(base_dir);
  if (::unlink(marker.c_str()) != 0 && errno != ENOENT) {
    throw base::StagingError("cannot remove the staging marker " + marker + ": " + base::errno_text(errno));
  }
}

void
remove_old_copy(const std::string& old)
{
  if (const std::string problem = remove_tree(old); !problem.empty()) {
    spdlog::warn("cannot remove the previous code in {}: {}", old, problem);
  }
}

// code/ is a volume (Docker's `-v ...:/opt/ml/code`): it cannot be renamed over, so the
// code is staged in a folder inside it, the old entries are moved aside into another
// (same volume, so each move is a rename), the new ones moved up one level, and the old
// folder removed without crossing into any mount below it.
void
replace_code_dir_in_place(const StagingContext& ctx, const std::function<void(const std::string&)>& fill)
{
  const std::string name = ".smlaunch-staging-" + std::to_string(getpid());
  const std::string old_name = ".smlaunch-old-" + std::to_string(getpid());
  const std::string staging = ctx.code_dir + "/" + name;
  const std::string old = ctx.code_dir + "/" + old_name;
  fill_new_folder(staging, fill);
  remove_marker(ctx.base_dir);
  std::error_code ec;
  if (std::string problem = remove_tree(old); !problem.empty() || !fs::create_directory(old, ec)) {
    (void)remove_tree(staging);
    throw base::StagingError("cannot create " + old + ": " + (problem.empty() ? ec.message() : problem));
  }
  std::vector<std::string> names; // listed first: the folder changes while they move
  for (const auto& entry : fs::directory_iterator(ctx.code_dir, ec)) {
    const std::string entry_name = entry.path().filename().string();
    if (entry_name != name && entry_name != old_name) {
      names.push_back(entry_name);
    }
  }
  std::vector<std::string> moved;
  std::string failure = ec ? "cannot read " + ctx.code_dir + ": " + ec.message() : "";
  for (const auto& entry_name : failure.empty() ? names : std::vector<std::string>{}) {
    const std::string from = ctx.code_dir + "/" + entry_name;
    if (::rename(from.c_str(), (old + "/" + entry_name).c_str()) != 0) {
      failure = "cannot move " + from + " aside into " + old + ": " + base::errno_text(errno);
      break;
    }
    moved.push_back(entry_name);
  }
  if (!failure.empty()) {
    for (const auto& entry_name : moved) {
      (void)::rename((old + "/" + entry_name).c_str(), (ctx.code_dir + "/" + entry_name).c_str());
    }
    (void)remove_tree(staging);
    (void)::rmdir(old.c_str());
    throw base::StagingError(failure);
  }
  names.clear();
  for (const auto& entry : fs::directory_iterator(staging, ec)) {
    names.push_back(entry.path().filename().string());
  }
  if (ec) {
    throw base::StagingError("cannot read " + staging + ": " + ec.message());
  }
  for (const auto& entry_name : names) {
    const std::string from = staging + "/" + entry_name;
    const std::string to = ctx.code_dir + "/" + entry_name;
    if (::rename(from.c_str(), to.c_str()) != 0) {
      throw base::StagingError("cannot move " + from + " to " + to + ": " + base::errno_text(errno));
    }
  }
  if (::rmdir(staging.c_str()) != 0) {
    throw base::StagingError("cannot remove " + staging + ": " + base::errno_text(errno));
  }
  remove_old_copy(old);
}

// Unpack or copy into a fresh folder next to code/, then swap it in with two renames, so
// a failure leaves no half-staged code/ behind.
void
replace_code_dir(const StagingContext& ctx, const std::function<void(const std::string&)>& fill)
{
  if (is_mount_point(ctx.code_dir)) {
    spdlog::info("{} is a mount point: replacing its contents in place", ctx.code_dir);
    replace_code_dir_in_place(ctx, fill);
    return;
  }
  const std::string suffix = std::to_string(getpid());
  const std::string staging = ctx.base_dir + "/.smlaunch/staging-" + suffix;
  const std::string old = ctx.base_dir + "/.smlaunch/old-" + suffix;
  fill_new_folder(staging, fill);
  remove_marker(ctx.base_dir);
  if (const std::string problem = remove_tree(old); !problem.empty()) {
    (void)remove_tree(staging);
    throw base::StagingError("cannot clear " + old + ": " + problem);
  }
  const bool had_old = ::rename(ctx.code_dir.c_str(), old.c_str()) == 0;
  if (!had_old && errno != ENOENT) {
    const int err = errno;
    (void)remove_tree(staging);
    throw base::StagingError("cannot move the old code " + ctx.code_dir + " aside to " + old + ": " +
                             base::errno_text(err));
  }
  if (::rename(staging.c_str(), ctx.code_dir.c_str()) != 0) {
    const int err = errno;
    if (had_old) {
      (void)::rename(old.c_str(), ctx.code_dir.c_str());
    }
    (void)remove_tree(staging);
    throw base::StagingError("cannot move the staged code " + staging + " to " + ctx.code_dir + ": " +
                             base::errno_text(err));
  }
  if (had_old) {
    remove_old_copy(old);
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
  const fs::path to = fs::path(into) / fs::path(name).filename();
  fs::copy_file(file, to, ec);
  if (ec) {
    throw base::StagingError("cannot copy " + file + " into " + into + ": " + ec.message());
  }
  // copy_file keeps setuid/setgid; archives and folder copies drop them, so does this.
  struct stat st
  {
  };
  if (::stat(to.c_str(), &st) != 0 || ::chmod(to.c_str(), st.st_mode & 0777) != 0) {
    throw base::StagingError("cannot set the mode of " + to.string() + ": " + base::errno_text(errno));
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
