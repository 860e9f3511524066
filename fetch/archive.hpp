// Safe extraction of the user's code archive (.tar.gz, .tar): unlike the reference's
// tarfile.extractall (CVE-2007-4559), no member may write outside the destination.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace fetch {

enum class MemberType { file, directory, symlink, hardlink, other };

// Why an archive member must be refused, or nullopt when it is safe. `link_target` is
// the symlink's target or the hard link's member name.
std::optional<std::string> unsafe_member_reason(const std::string& path, MemberType type,
                                                const std::string& link_target);

struct EscapingLink
{
  std::string member; // relative to the root
  std::string target; // as the link reads
};

// The first symbolic link under `root` that resolves outside it once every link in the
// tree is followed, or nullopt. A dangling link is judged by its path (it may not climb
// out of `root`); absolute targets are outside. Throws StagingError when a folder cannot
// be read.
std::optional<EscapingLink> find_link_outside(const std::string& root);

// Extract `archive_path` into the existing empty directory `destination`. Keeps the
// permission bits (without setuid/setgid), not the owners. Throws StagingError naming
// the first unsafe member, or the first link of the extracted tree that leads outside
// it; the caller removes `destination` then.
void extract_archive(const std::string& archive_path, const std::string& destination);

// Write a .tar.gz of the contents of `sources` (directories), merged as the SDK merges
// the hosts' output directories: a path in a later source replaces the same path in an
// earlier one. Members are relative ("data/log"), sorted, without owners; symbolic links
// are stored as links, never followed. Throws LauncherError (ArchiveError).
void create_archive(const std::string& archive_path, const std::vector<std::string>& sources);

} // namespace fetch
