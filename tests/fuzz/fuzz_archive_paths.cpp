// fuzz_archive_paths: fetch::unsafe_member_reason against an independent model of
// where an archive member lands and where its link points. Input: one byte for the
// member type (value % 5: file, directory, symlink, hardlink, other), then the member
// name, a NUL byte, and the link target (a tar name cannot hold a NUL itself).
//
// The model follows what happens on disk: libarchive writes the member at its name with
// empty and "." components dropped (its cleanup_pathname), so "a/b/" and "a/." are the
// entries "a/b" and "a"; a symbolic link's target is resolved from the directory that
// holds that entry. Properties:
//  - safety (must hold): when unsafe_member_reason returns nullopt, the name is
//    non-empty, relative and without a ".." component; a hard link's target is too; a
//    symbolic link's target is relative and, resolved from the link's directory, never
//    climbs above the destination; devices, FIFOs and sockets are never accepted;
//  - no over-refusal: a member the model finds safe is accepted (a symbolic link with an
//    empty target is refused on purpose: symlink(2) refuses it too; so is any member but a
//    directory named "." or "./": it would replace the code directory itself).
// SMLAUNCH_FUZZ_SAFETY_ONLY=1 checks the safety property alone.
#include "fetch/archive.hpp"
#include "fuzz_common.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace {

using fetch::MemberType;

std::vector<std::string>
components(const std::string& path)
{
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto end = path.find('/', start);
    out.push_back(path.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) {
      return out;
    }
    start = end + 1;
  }
}

bool
has_dot_dot_component(const std::string& path)
{
  for (const auto& c : components(path)) {
    if (c == "..") {
      return true;
    }
  }
  return false;
}

bool
is_relative_without_dot_dot(const std::string& path)
{
  return !path.empty() && path[0] != '/' && !has_dot_dot_component(path);
}

// Depth of the directory holding the entry that `member` (relative, no "..") creates.
std::size_t
link_directory_depth(const std::string& member)
{
  std::size_t depth = 0;
  for (const auto& c : components(member)) {
    if (!c.empty() && c != ".") {
      ++depth;
    }
  }
  return depth == 0 ? 0 : depth - 1;
}

// True when `target`, resolved from a directory `depth` levels below the destination,
// never leaves it (".." at the destination itself would).
bool
stays_inside(std::size_t depth, const std::string& target)
{
  if (target.empty() || target[0] == '/') {
    return false;
  }
  for (const auto& c : components(target)) {
    if (c == "..") {
      if (depth == 0) {
        return false;
      }
      --depth;
    } else if (!c.empty() && c != ".") {
      ++depth;
    }
  }
  return true;
}

bool
model_says_safe(const std::string& path, MemberType type, const std::string& target)
{
  if (!is_relative_without_dot_dot(path)) {
    return false;
  }
  // A member other than a directory whose name is the destination itself ("." or "./") is
  // refused by design: it would replace the code directory with a file or link.
  bool names_root = true;
  for (const auto& part : fuzz::split(path, '/', 1 << 20)) {
    names_root = names_root && (part.empty() || part == ".");
  }
  if (names_root && type != MemberType::directory) {
    return false;
  }
  switch (type) {
  case MemberType::file:
  case MemberType::directory:
    return true;
  case MemberType::hardlink:
    return is_relative_without_dot_dot(target);
  case MemberType::symlink:
    return stays_inside(link_directory_depth(path), target);
  case MemberType::other:
    return false;
  }
  return false;
}

const char*
type_name(MemberType type)
{
  switch (type) {
  case MemberType::file:
    return "file";
  case MemberType::directory:
    return "directory";
  case MemberType::symlink:
    return "symlink";
  case MemberType::hardlink:
    return "hardlink";
  case MemberType::other:
    return "other";
  }
  return "?";
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size == 0) {
    return 0;
  }
  static const bool safety_only = [] {
    const char* v = std::getenv("SMLAUNCH_FUZZ_SAFETY_ONLY");
    return v != nullptr && std::string(v) == "1";
  }();
  const auto type = static_cast<MemberType>(data[0] % 5);
  const auto parts = fuzz::split(fuzz::as_text(data + 1, size - 1), '\0', 2);
  const std::string path(parts[0]);
  const std::string target(parts.size() > 1 ? parts[1] : std::string_view());

  const std::optional<std::string> reason = fetch::unsafe_member_reason(path, type, target);
  const bool model_safe = model_says_safe(path, type, target);
  const auto member = [&] {
    return std::string(type_name(type)) + " \"" + fuzz::escaped(path) + "\" -> \"" + fuzz::escaped(target) + "\"";
  };
  if (reason) {
    FUZZ_CHECK(!reason->empty(), "empty reason for " + member());
  }
  if (!reason && !model_safe) {
    fuzz::fail("unsafe member accepted: " + member());
  }
  if (!safety_only && reason && model_safe) {
    fuzz::fail("safe member refused (" + *reason + "): " + member());
  }
  return 0;
}
