#include "fetch/archive.hpp"

#include "base/errors.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <memory>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace fetch {

namespace {

// Split on '/' and resolve "." and ".."; nullopt when the path climbs above its root.
std::optional<std::vector<std::string>>
normalized_parts(const std::string& path)
{
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto end = path.find('/', start);
    const std::string part = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part == "..") {
      if (parts.empty()) {
        return std::nullopt;
      }
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  return parts;
}

std::vector<std::string>
split_parts(const std::string& path)
{
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto end = path.find('/', start);
    parts.push_back(path.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  return parts;
}

bool
has_dot_dot(const std::string& path)
{
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto end = path.find('/', start);
    if (path.compare(start, end == std::string::npos ? std::string::npos : end - start, "..") == 0 &&
        (end == std::string::npos ? path.size() - start : end - start) == 2) {
      return true;
    }
    if (end == std::string::npos) {
      return false;
    }
    start = end + 1;
  }
  return false;
}

struct ReadCloser
{
  void
  operator()(archive* a) const
  {
    archive_read_free(a);
  }
};
struct WriteCloser
{
  void
  operator()(archive* a) const
  {
    archive_write_free(a);
  }
};

} // namespace

std::optional<std::string>
unsafe_member_reason(const std::string& path, MemberType type, const std::string& link_target)
{
  if (path.empty()) {
    return "has an empty name";
  }
  if (path[0] == '/') {
    return "has an absolute path";
  }
  if (has_dot_dot(path)) {
    return "has a '..' component";
  }
  const auto parts = normalized_parts(path);
  if (type != MemberType::directory && parts && parts->empty()) {
    // "." or "./": it would replace the code directory itself with a file or link.
    return "is named like the code directory itself";
  }
  switch (type) {
  case MemberType::file:
  case MemberType::directory:
    return std::nullopt;
  case MemberType::other:
    return "is a device, FIFO or socket";
  case MemberType::hardlink:
    if (link_target.empty() || link_target[0] == '/' || has_dot_dot(link_target)) {
      return "is a hard link to \"" + link_target + "\", outside the code directory";
    }
    return std::nullopt;
  case MemberType::symlink: {
    if (link_target.empty() || link_target[0] == '/') {
      return "is a symbolic link to \"" + link_target + "\", outside the code directory";
    }
    // Where the link really lands: libarchive drops trailing "/" and "." ("a/." is "a").
    if (!parts) {
      return "is a symbolic link named like the code directory itself";
    }
    std::string dir;
    for (std::size_t i = 0; i + 1 < parts->size(); ++i) {
      dir += (*parts)[i] + "/";
    }
    if (!normalized_parts(dir + link_target)) {
      return "is a symbolic link to \"" + link_target + "\", outside the code directory";
    }
    return std::nullopt;
  }
  }
  return std::nullopt;
}

namespace {

bool
is_write_errno(int err)
{
  return err == ENOSPC || err == EDQUOT || err == EIO || err == EFBIG || err == EROFS;
}

// libarchive's message, with the system's own words for the error ("No space left on device").
std::string
write_error(archive* a)
{
  const int err = archive_errno(a);
  const char* text = archive_error_string(a);
  std::string message = text != nullptr ? text : "";
  const std::string cause = err > 0 ? std::system_category().message(err) : "";
  if (!cause.empty() && message.find(cause) == std::string::npos) {
    message += message.empty() ? cause : ": " + cause;
  }
  return message;
}

} // namespace

namespace {

// Whether `link_target`, read from a link at `member` (relative to `root`), lands inside
// `root` once the links in the tree are followed: `a -> .` then `b -> a/..` is lexically
// inside but really the parent of `root`. Missing parts count as plain names, so a
// dangling link is judged by its path: it may not climb out either.
bool
resolves_inside(const std::string& root, const std::string& member, const std::string& link_target)
{
  const auto member_parts = normalized_parts(member);
  if (!member_parts || member_parts->empty()) {
    return false;
  }
  std::vector<std::string> pending(member_parts->begin(), member_parts->end() - 1);
  for (const auto& part : split_parts(link_target)) {
    pending.push_back(part);
  }
  std::vector<std::string> resolved;
  int links_followed = 0;
  std::size_t next = 0;
  while (next < pending.size()) {
    const std::string part = pending[next++];
    if (part.empty() || part == ".") {
      continue;
    }
    if (part == "..") {
      if (resolved.empty()) {
        return false;
      }
      resolved.pop_back();
      continue;
    }
    resolved.push_back(part);
    std::string path = root;
    for (const auto& p : resolved) {
      path += "/" + p;
    }
    struct stat st
    {
    };
    if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) {
      continue;
    }
    if (++links_followed > 40) {
      return true; // a loop: the kernel stops there too (ELOOP), it reaches nothing
    }
    std::string target(4096, '\0');
    const ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    if (n < 0 || (n > 0 && target[0] == '/')) {
      return false;
    }
    target.resize(static_cast<std::size_t>(n));
    resolved.pop_back();
    std::vector<std::string> rest = split_parts(target);
    rest.insert(rest.end(), pending.begin() + static_cast<std::ptrdiff_t>(next), pending.end());
    pending = std::move(rest);
    next = 0;
  }
  return true;
}

} // namespace

std::optional<EscapingLink>
find_link_outside(const std::string& root)
{
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_symlink(ec)) {
      continue;
    }
    const std::string member = it->path().lexically_relative(root).string();
    const std::string target = fs::read_symlink(it->path(), ec).string();
    if (ec) {
      break;
    }
    if (!resolves_inside(root, member, target)) {
      return EscapingLink{member, target};
    }
  }
  if (ec) {
    // Unchecked links are not trusted: a folder that cannot be read fails the staging.
    const std::string where = it != fs::recursive_directory_iterator() ? it->path().string() : root;
    throw base::StagingError("cannot check the links under " + where + ": " + ec.message());
  }
  return std::nullopt;
}

void
extract_archive(const std::string& archive_path, const std::string& destination_dir)
{
  // Members are written to absolute paths under a canonical destination: libarchive's
  // symlink and '..' guards then only ever see the member's own components.
  std::error_code ec;
  const std::string destination = std::filesystem::weakly_canonical(destination_dir, ec).string();
  std::unique_ptr<archive, ReadCloser> in(archive_read_new());
  archive_read_support_filter_all(in.get());
  archive_read_support_format_tar(in.get());
  archive_read_support_format_gnutar(in.get());
  if (archive_read_open_filename(in.get(), archive_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    throw base::StagingError("cannot open the code archive " + archive_path + ": " + archive_error_string(in.get()));
  }
  std::unique_ptr<archive, WriteCloser> out(archive_write_disk_new());
  // libarchive's own guards too, in case a check above missed a case.
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                                ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  archive_entry* entry = nullptr;
  while (true) {
    const int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) {
      break;
    }
    if (r < ARCHIVE_WARN) {
      throw base::StagingError("cannot read the code archive " + archive_path + ": " + archive_error_string(in.get()));
    }
    const std::string name = archive_entry_pathname(entry) != nullptr ? archive_entry_pathname(entry) : "";
    const char* hardlink = archive_entry_hardlink(entry);
    const char* symlink = archive_entry_symlink(entry);
    MemberType type = MemberType::other;
    if (hardlink != nullptr) {
      type = MemberType::hardlink;
    } else {
      switch (archive_entry_filetype(entry)) {
      case AE_IFREG:
        type = MemberType::file;
        break;
      case AE_IFDIR:
        type = MemberType::directory;
        break;
      case AE_IFLNK:
        type = MemberType::symlink;
        break;
      default:
        type = MemberType::other;
      }
    }
    const std::string target = hardlink != nullptr ? hardlink : (symlink != nullptr ? symlink : "");
    if (const auto reason = unsafe_member_reason(name, type, target)) {
      throw base::StagingError("refusing the code archive " + archive_path + ": member \"" + name + "\" " + *reason);
    }
    if (type == MemberType::directory && normalized_parts(name)->empty()) {
      continue; // "." is the destination itself: its mode is not the archive's to set
    }
    struct stat linked
    {
    };
    if (type == MemberType::hardlink && ::lstat((destination + "/" + target).c_str(), &linked) == 0 &&
        S_ISLNK(linked.st_mode)) {
      // A second name for a symbolic link moves it to another depth, where its ".." reach further.
      throw base::StagingError("refusing the code archive " + archive_path + ": member \"" + name +
                               "\" is a hard link to the symbolic link \"" + target + "\"");
    }
    archive_entry_set_pathname(entry, (destination + "/" + name).c_str());
    if (hardlink != nullptr) {
      archive_entry_set_hardlink(entry, (destination + "/" + target).c_str());
    }
    archive_entry_set_perm(entry, archive_entry_perm(entry) & 01777); // no setuid/setgid
    if (archive_write_header(out.get(), entry) < ARCHIVE_WARN) {
      throw base::StagingError("cannot extract member \"" + name + "\" of " + archive_path + ": " +
                               archive_error_string(out.get()));
    }
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int rr;
    while ((rr = archive_read_data_block(in.get(), &block, &size, &offset)) == ARCHIVE_OK) {
      // A failed write is only ARCHIVE_WARN to libarchive (it then pads the file with NUL
      // bytes to its size): any result below ARCHIVE_OK fails the staging.
      if (archive_write_data_block(out.get(), block, size, offset) < ARCHIVE_OK) {
        throw base::StagingError("cannot write member \"" + name + "\" of " + archive_path + ": " +
                                 write_error(out.get()));
      }
    }
    if (rr < ARCHIVE_WARN) {
      throw base::StagingError("cannot read member \"" + name + "\" of " + archive_path + ": " +
                               archive_error_string(in.get()));
    }
    const int finished = archive_write_finish_entry(out.get());
    if (finished < ARCHIVE_WARN || (finished == ARCHIVE_WARN && is_write_errno(archive_errno(out.get())))) {
      throw base::StagingError("cannot finish member \"" + name + "\" of " + archive_path + ": " +
                               write_error(out.get()));
    }
  }
  if (archive_write_close(out.get()) < ARCHIVE_WARN) {
    throw base::StagingError("cannot finish extracting " + archive_path + ": " + archive_error_string(out.get()));
  }
  // Links are judged in the finished tree, not as they come: a later member can turn a
  // parent into a link (libarchive's SECURE_SYMLINKS keeps writes from going through one
  // meanwhile).
  if (const auto escaping = find_link_outside(destination)) {
    throw base::StagingError("refusing the code archive " + archive_path + ": member \"" + escaping->member +
                             "\" is a symbolic link to \"" + escaping->target +
                             "\", which lands outside the code directory");
  }
}

void
create_archive(const std::string& archive_path, const std::vector<std::string>& sources)
{
  namespace fs = std::filesystem;
  // Relative member path -> the file it comes from; a later source wins (std::map: sorted).
  std::map<std::string, std::string> members;
  for (const auto& source : sources) {
    std::error_code ec;
    if (!fs::is_directory(source, ec)) {
      continue;
    }
    for (auto it = fs::recursive_directory_iterator(source, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      members[it->path().lexically_relative(source).string()] = it->path().string();
    }
    if (ec) {
      throw base::ArchiveError("cannot read " + source + ": " + ec.message());
    }
  }
  std::unique_ptr<struct archive, decltype(&archive_write_free)> out(archive_write_new(), archive_write_free);
  archive_write_add_filter_gzip(out.get());
  archive_write_set_format_pax_restricted(out.get());
  if (archive_write_open_filename(out.get(), archive_path.c_str()) != ARCHIVE_OK) {
    throw base::ArchiveError(std::string("archive_write_open: ") + archive_path + ": " + write_error(out.get()));
  }
  std::vector<char> buffer(256 * 1024);
  for (const auto& [name, path] : members) {
    struct stat st
    {
    };
    if (::lstat(path.c_str(), &st) != 0) {
      continue; // removed meanwhile
    }
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(entry.get(), name.c_str());
    archive_entry_set_perm(entry.get(), st.st_mode & 07777);
    archive_entry_set_mtime(entry.get(), st.st_mtime, 0);
    int fd = -1;
    if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(entry.get(), AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      const auto target = fs::read_symlink(path, ec);
      archive_entry_set_filetype(entry.get(), AE_IFLNK);
      archive_entry_set_symlink(entry.get(), target.c_str());
    } else if (S_ISREG(st.st_mode)) {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) {
        continue;
      }
      archive_entry_set_filetype(entry.get(), AE_IFREG);
      archive_entry_set_size(entry.get(), st.st_size);
    } else {
      continue; // sockets, fifos, devices: not data
    }
    if (archive_write_header(out.get(), entry.get()) != ARCHIVE_OK) {
      if (fd >= 0) {
        ::close(fd);
      }
      throw base::ArchiveError(std::string("archive_write_header: ") + name + ": " + write_error(out.get()));
    }
    while (fd >= 0) {
      const ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n <= 0) {
        break;
      }
      if (archive_write_data(out.get(), buffer.data(), static_cast<std::size_t>(n)) < 0) {
        ::close(fd);
        throw base::ArchiveError(std::string("archive_write_data: ") + name + ": " + write_error(out.get()));
      }
    }
    if (fd >= 0) {
      ::close(fd);
    }
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) {
    throw base::ArchiveError(std::string("archive_write_close: ") + archive_path + ": " + write_error(out.get()));
  }
}

} // namespace fetch
