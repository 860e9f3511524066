#include "fetch/tree_copy.hpp"

#include "base/errors.hpp"
#include "base/logging.hpp"

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <set>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace fetch {

namespace {

const char*
special_kind(mode_t mode)
{
  if (S_ISFIFO(mode)) {
    return "a FIFO";
  }
  if (S_ISSOCK(mode)) {
    return "a socket";
  }
  return "a device";
}

struct TreeCopy
{
  const TreeCopyOptions& options;
  std::vector<std::pair<std::pair<dev_t, ino_t>, std::string>> left_out; // (device, inode), why
  // Grown to the largest file met, up to 1 MiB, and never zero-filled: a zeroed 1 MiB
  // buffer cost 256 page faults (0.4-0.7 ms here) to copy a one-line script.
  std::unique_ptr<char[]> buffer;
  std::size_t buffer_size = 0;

  std::size_t
  reserve_buffer(off_t file_size)
  {
    constexpr std::size_t largest = std::size_t{1} << 20;
    constexpr std::size_t page = 4096;
    const std::size_t wanted =
        std::min(largest, (static_cast<std::size_t>(std::max<off_t>(file_size, 0)) / page + 1) * page);
    if (wanted > buffer_size) {
      buffer = std::make_unique_for_overwrite<char[]>(wanted);
      buffer_size = wanted;
    }
    return buffer_size;
  }

  void
  check_stop() const
  {
    if (options.stop_signal) {
      if (const int sig = options.stop_signal()) {
        throw base::StoppedError(sig, "staging");
      }
    }
  }

  const std::string*
  left_out_reason(const struct stat& st) const
  {
    for (const auto& [id, why] : left_out) {
      if (id.first == st.st_dev && id.second == st.st_ino) {
        return &why;
      }
    }
    return nullptr;
  }

  void
  copy_file(const std::string& from, const std::string& to, mode_t mode)
  {
    const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (in < 0) {
      throw base::StagingError("cannot read " + from + ": " + base::errno_text(errno));
    }
    const auto close_in = std::unique_ptr<const int, void (*)(const int*)>(&in, [](const int* fd) { ::close(*fd); });
    struct stat st
    {
    };
    if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
      throw base::StagingError("cannot copy " + from + ": it is no longer a regular file");
    }
    const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777);
    if (out < 0) {
      throw base::StagingError("cannot create " + to + " (copying " + from + "): " + base::errno_text(errno));
    }
    const auto fail = [&](const std::string& what, int err) {
      ::close(out);
      throw base::StagingError("cannot copy " + from + " into " + to + ": " + what + base::errno_text(err));
    };
    const std::size_t chunk = reserve_buffer(st.st_size);
    // Copies from the current offsets up to `end` (or the end of the file when negative).
    const auto copy_bytes = [&](off_t end) {
      off_t pos = end < 0 ? 0 : ::lseek(in, 0, SEEK_CUR);
      while (end < 0 || pos < end) {
        const std::size_t want = end < 0 ? chunk : std::min(chunk, static_cast<std::size_t>(end - pos));
        const ssize_t n = ::read(in, buffer.get(), want);
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n < 0) {
          fail("reading: ", errno);
        }
        if (n == 0) {
          break;
        }
        for (ssize_t done = 0; done < n;) {
          const ssize_t w = ::write(out, buffer.get() + done, static_cast<std::size_t>(n - done));
          if (w < 0 && errno != EINTR) {
            fail("", errno);
          }
          done += w > 0 ? w : 0;
        }
        pos += n;
        check_stop();
      }
    };
    // A sparse file (fewer blocks than its size) is copied extent by extent: its holes
    // stay holes instead of gigabytes of zeros written at every start.
    const bool sparse = st.st_blocks * 512 < st.st_size;
    off_t data = sparse ? ::lseek(in, 0, SEEK_DATA) : -1;
    if (!sparse || (data < 0 && errno != ENXIO)) {
      copy_bytes(-1); // not sparse, or SEEK_DATA unsupported (EINVAL): the plain loop
    } else {
      while (data >= 0) {
        const off_t hole = ::lseek(in, data, SEEK_HOLE);
        if (hole < 0 || ::lseek(in, data, SEEK_SET) < 0 || ::lseek(out, data, SEEK_SET) < 0) {
          fail("seeking: ", errno);
        }
        copy_bytes(hole);
        data = ::lseek(in, hole, SEEK_DATA);
      }
      if (errno != ENXIO) {
        fail("seeking: ", errno);
      }
      if (::ftruncate(out, st.st_size) != 0) {
        fail("", errno);
      }
    }
    // A full disk on some file systems (NFS, quotas) shows only at close.
    if (::close(out) != 0) {
      throw base::StagingError("cannot copy " + from + " into " + to + ": " + base::errno_text(errno));
    }
    ::chmod(to.c_str(), mode & 0777);
  }

  void
  copy_dir(const std::string& from, const std::string& to)
  {
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(from.c_str()), ::closedir);
    if (!dir) {
      throw base::StagingError("cannot read the folder " + from + ": " + base::errno_text(errno));
    }
    std::set<std::string> names; // sorted: the same order on every run
    errno = 0;
    // NOLINTNEXTLINE(concurrency-mt-unsafe): readdir is safe on a stream no other thread uses
    while (const dirent* entry = ::readdir(dir.get())) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") {
        names.insert(name);
      }
    }
    if (errno != 0) {
      throw base::StagingError("cannot read the folder " + from + ": " + base::errno_text(errno));
    }
    dir.reset();
    for (const auto& name : names) {
      check_stop();
      const std::string source = from + "/" + name;
      const std::string target = to + "/" + name;
      struct stat st
      {
      };
      if (::lstat(source.c_str(), &st) != 0) {
        if (errno == ENOENT) {
          continue; // removed meanwhile
        }
        throw base::StagingError("cannot read " + source + ": " + base::errno_text(errno));
      }
      if (S_ISDIR(st.st_mode)) {
        if (const std::string* why = left_out_reason(st)) {
          spdlog::warn("leaving {} out of the copy: {}", source, *why);
          continue;
        }
        if (::mkdir(target.c_str(), 0700) != 0) {
          throw base::StagingError("cannot create " + target + " (copying " + source + "): " + base::errno_text(errno));
        }
        copy_dir(source, target);
        ::chmod(target.c_str(), (st.st_mode & 0777) | 0700);
      } else if (S_ISLNK(st.st_mode)) {
        std::string link(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
        const ssize_t n = ::readlink(source.c_str(), link.data(), link.size());
        if (n < 0) {
          throw base::StagingError("cannot read the link " + source + ": " + base::errno_text(errno));
        }
        link.resize(static_cast<std::size_t>(n));
        if (::symlink(link.c_str(), target.c_str()) != 0) {
          throw base::StagingError("cannot create the link " + target + " (copying " + source +
                                   "): " + base::errno_text(errno));
        }
      } else if (S_ISREG(st.st_mode)) {
        copy_file(source, target, st.st_mode);
      } else {
        spdlog::warn("skipping {}: {} is not code", source, special_kind(st.st_mode));
      }
    }
  }
};

} // namespace

void
copy_source_tree(const std::string& from, const std::string& to, const TreeCopyOptions& options)
{
  TreeCopy copy{options, {}, nullptr, 0};
  for (const auto& [path, why] : options.leave_out) {
    struct stat st
    {
    };
    if (::stat(path.c_str(), &st) == 0) {
      copy.left_out.push_back({{st.st_dev, st.st_ino}, why});
    }
  }
  struct stat source
  {
  };
  if (::stat(from.c_str(), &source) != 0 || !S_ISDIR(source.st_mode)) {
    throw base::StagingError("cannot copy " + from + ": not a folder");
  }
  if (const std::string* why = copy.left_out_reason(source)) {
    throw base::StagingError("cannot copy " + from + ": " + *why);
  }
  if (::mkdir(to.c_str(), 0700) != 0 && errno != EEXIST) {
    throw base::StagingError("cannot create " + to + ": " + base::errno_text(errno));
  }
  // The copy itself never enters its own destination (a destination inside the source).
  struct stat destination
  {
  };
  if (::stat(to.c_str(), &destination) == 0) {
    copy.left_out.push_back({{destination.st_dev, destination.st_ino}, "it is the copy's own destination"});
  }
  copy.copy_dir(from, to);
}

} // namespace fetch
