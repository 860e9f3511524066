#include "base/state_file.hpp"

#include "base/errors.hpp"

#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace base {

namespace {

void
write_whole(int fd, std::string_view text, const std::string& path)
{
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw SystemError("write", path, errno);
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

bool
valid_utf8(const std::string& text)
{
  try {
    (void)nlohmann::json(text).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

} // namespace

void
write_file_atomically(const std::string& path, std::string_view text, mode_t mode, Durability durability)
{
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) {
    throw SystemError("mkdir", folder.string(), ec.value());
  }
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) {
    throw SystemError("mkostemp", tmp, errno);
  }
  try {
    if (::fchmod(fd, mode) != 0) {
      throw SystemError("fchmod", tmp, errno);
    }
    write_whole(fd, text, tmp);
    if (durability == Durability::crash_safe && ::fsync(fd) != 0) {
      throw SystemError("fsync", tmp, errno);
    }
    if (::close(fd) != 0) {
      throw SystemError("close", tmp, errno);
    }
  } catch (...) {
    ::close(fd); // EBADF after a failed close: harmless
    ::unlink(tmp.c_str());
    throw;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw SystemError("rename", path, err);
  }
}

void
write_json_atomically(const std::string& path, const nlohmann::ordered_json& document, mode_t mode,
                      Durability durability)
{
  write_file_atomically(path, document.dump(2) + "\n", mode, durability);
}

nlohmann::json
read_json_state(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot read " + path + ": " + std::generic_category().message(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + " is not JSON: " + e.what());
  }
}

nlohmann::json
bytes_to_json(const std::string& bytes)
{
  if (valid_utf8(bytes)) {
    return bytes;
  }
  static constexpr char k_digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    hex += k_digits[b >> 4U];
    hex += k_digits[b & 0xFU];
  }
  return nlohmann::json{{"hex", hex}};
}

std::string
bytes_from_json(const nlohmann::json& value)
{
  if (value.is_string()) {
    return value.get<std::string>();
  }
  const auto hex = value.is_object() ? value.find("hex") : value.end();
  if (hex == value.end() || !hex->is_string() || hex->get_ref<const std::string&>().size() % 2 != 0) {
    throw std::runtime_error(R"(expected a string or {"hex": "<bytes>"}, got )" + value.dump());
  }
  const auto& digits = hex->get_ref<const std::string&>();
  std::string bytes;
  const auto nibble = [&](char c) {
    const auto at = std::string_view("0123456789abcdef").find(c);
    if (at == std::string_view::npos) {
      throw std::runtime_error(std::string("bad hex digit '") + c + "' in " + value.dump());
    }
    return static_cast<unsigned>(at);
  };
  for (std::size_t i = 0; i < digits.size(); i += 2) {
    bytes += static_cast<char>((nibble(digits[i]) << 4U) | nibble(digits[i + 1]));
  }
  return bytes;
}

} // namespace base
