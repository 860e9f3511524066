// Copying a source folder (train's code/, `smlaunch local`'s copy of --source-dir): one
// rule for both. Links are copied as links, FIFOs, sockets and devices are skipped with a
// warning, folders to leave out (the base dir, the job dir) are recognised by device and
// inode whatever path reaches them, and every write error names the file.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace fetch {

struct TreeCopyOptions
{
  // Folders never copied (nor entered), each with the reason logged when it is met.
  std::vector<std::pair<std::string, std::string>> leave_out;
  // Polled between files and while copying a large one: a non-zero signal number stops the
  // copy with StoppedError.
  std::function<int()> stop_signal;
};

// Copy the contents of `from` (a folder, or a link to one) into `to` (created when
// missing). Throws StagingError naming the file and the system's error.
void copy_source_tree(const std::string& from, const std::string& to, const TreeCopyOptions& options);

} // namespace fetch
