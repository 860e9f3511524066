#include "env/config_files.hpp"

#include "base/kernel_limits.hpp"
#include "env/config_error.hpp"
#include "env/hyperparameters.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace env {

Value
read_json_file(const std::string& path)
{
  struct stat st
  {
  };
  if (stat(path.c_str(), &st) != 0) {
    throw ConfigError(path, "",
                      errno == ENOENT ? "file is missing" : "cannot read: " + std::system_category().message(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw ConfigError(path, "", "is not a regular file");
  }
  if (static_cast<std::size_t>(st.st_size) > k_max_config_file_bytes) {
    throw ConfigError(path, "",
                      "is " + std::to_string(st.st_size) + " bytes, larger than the " +
                          std::to_string(k_max_config_file_bytes / (1024 * 1024)) + " MiB limit");
  }
  std::string text;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw ConfigError(path, "", "cannot open: " + std::system_category().message(errno));
  }
  char buffer[65536];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0 || (n < 0 && errno == EINTR)) {
    text.append(buffer, static_cast<std::size_t>(n > 0 ? n : 0));
    if (text.size() > k_max_config_file_bytes) {
      break; // it grew after stat(): the size check below still applies
    }
  }
  ::close(fd);
  if (text.size() > k_max_config_file_bytes) {
    throw ConfigError(path, "",
                      "is larger than the " + std::to_string(k_max_config_file_bytes / (1024 * 1024)) + " MiB limit");
  }
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw ConfigError(path, "", "is empty; expected a JSON object");
  }
  if (!is_valid_utf8(text)) {
    throw ConfigError(path, "", "is not valid UTF-8; expected a JSON object in UTF-8");
  }
  try {
    return parse_json(text);
  } catch (const JsonError& e) {
    throw ConfigError(path, "", std::string("is not valid JSON: ") + e.what());
  }
}

bool
is_valid_host_name(const std::string& name)
{
  if (name.empty() || name.size() > 253) {
    return false;
  }
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

namespace {

class Checker
{
public:
  explicit Checker(std::string file) : m_file(std::move(file)) {}

  void
  add(const std::string& key, const std::string& message)
  {
    problems.push_back(Problem{m_file, key, message});
  }

  // Returns the string at `key` of `obj`, or nullptr after recording why not.
  const Value*
  string_at(const Value& obj, const std::string& key, bool required)
  {
    const Value* v = obj.find(key);
    if (v == nullptr) {
      if (required) {
        add("/" + key, "is missing; expected a string");
      }
      return nullptr;
    }
    if (!v->is_string()) {
      add("/" + key, std::string("is a ") + v->type_name() + "; expected a string");
      return nullptr;
    }
    return v;
  }

  bool
  host_list(const Value& list, const std::string& key)
  {
    if (!list.is_array()) {
      add(key, std::string("is a ") + list.type_name() + "; expected a list of host names");
      return false;
    }
    bool ok = true;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const Value& h = list.items()[i];
      const std::string item_key = key + "/" + std::to_string(i);
      if (!h.is_string()) {
        add(item_key, std::string("is a ") + h.type_name() + "; expected a host name string");
        ok = false;
      } else if (!is_valid_host_name(h.text())) {
        add(item_key, "\"" + h.text() + "\" is not a valid host name (letters, digits, '.', '-', '_')");
        ok = false;
      } else if (!seen.insert(h.text()).second) {
        add(item_key, "host \"" + h.text() + "\" is listed twice");
        ok = false;
      }
    }
    return ok;
  }

  std::vector<Problem> problems;

private:
  std::string m_file;
};

void
check_resource_config(const Value& rc, const std::string& file, std::vector<Problem>& out)
{
  Checker c(file);
  if (!rc.is_object()) {
    c.add("", std::string("is a JSON ") + rc.type_name() + "; expected an object");
    out.insert(out.end(), c.problems.begin(), c.problems.end());
    return;
  }
  const Value* current = c.string_at(rc, "current_host", true);
  const Value* hosts = rc.find("hosts");
  if (hosts == nullptr) {
    c.add("/hosts", "is missing; expected a list of host names");
  } else if (c.host_list(*hosts, "/hosts")) {
    if (hosts->size() == 0) {
      c.add("/hosts", "is empty; expected at least one host");
    } else if (current != nullptr) {
      bool found = false;
      for (const auto& h : hosts->items()) {
        found = found || h.text() == current->text();
      }
      if (!found) {
        c.add("/hosts", "does not contain the current host \"" + current->text() + "\"");
      }
    }
  }
  if (current != nullptr && !is_valid_host_name(current->text())) {
    c.add("/current_host", "\"" + current->text() + "\" is not a valid host name");
  }
  c.string_at(rc, "current_instance_type", false);
  c.string_at(rc, "current_group_name", false);
  if (const Value* nif = c.string_at(rc, "network_interface_name", false)) {
    if (!is_valid_host_name(nif->text())) {
      c.add("/network_interface_name", "\"" + nif->text() + "\" is not a valid interface name");
    }
  }
  if (const Value* groups = rc.find("instance_groups")) {
    if (!groups->is_array()) {
      c.add("/instance_groups", std::string("is a ") + groups->type_name() + "; expected a list of groups");
    } else {
      for (std::size_t i = 0; i < groups->size(); ++i) {
        const Value& g = groups->items()[i];
        const std::string gkey = "/instance_groups/" + std::to_string(i);
        if (!g.is_object()) {
          c.add(gkey, std::string("is a ") + g.type_name() + "; expected an object");
          continue;
        }
        const Value* name = g.find("instance_group_name");
        if (name == nullptr || !name->is_string()) {
          c.add(gkey + "/instance_group_name", "is missing or not a string");
        }
        const Value* ghosts = g.find("hosts");
        if (ghosts == nullptr) {
          c.add(gkey + "/hosts", "is missing; expected a list of host names");
        } else {
          c.host_list(*ghosts, gkey + "/hosts");
        }
      }
    }
  }
  out.insert(out.end(), c.problems.begin(), c.problems.end());
}

void
check_input_data_config(const Value& idc, const std::string& file, std::vector<Problem>& out)
{
  Checker c(file);
  if (!idc.is_object()) {
    c.add("", std::string("is a JSON ") + idc.type_name() + "; expected an object of channels");
  } else {
    for (const auto& name : idc.keys()) {
      // The name becomes a directory under input/data and a variable name.
      if (name.empty()) {
        c.add("/", "channel name is empty");
      } else if (name == "." || name == ".." || name.find('/') != std::string::npos) {
        c.add("/" + name, "channel name must not be '.', '..' or contain '/'");
      } else if (name.find('\0') != std::string::npos || name.find('=') != std::string::npos) {
        c.add("/" + name, "channel name must not contain a NUL byte or '='");
      }
    }
  }
  out.insert(out.end(), c.problems.begin(), c.problems.end());
}

void
check_hyperparameters(const Value& hps, const std::string& file, std::vector<Problem>& out)
{
  Checker c(file);
  if (!hps.is_object()) {
    c.add("", std::string("is a JSON ") + hps.type_name() + "; expected an object of name -> value");
  } else {
    // Every user hyperparameter lands in SM_HPS, one environment variable, which the kernel
    // caps at MAX_ARG_STRLEN: past that the script cannot be started, so say so now, before
    // SM_* are built (a million of them took 1.6 GB and 10 s to reach the same error). The
    // values are counted once decoded (build_training_environment).
    std::size_t least = 2; // {"name":v, ...}: quotes, colon, a value and a separator each
    std::size_t user = 0;
    for (const auto& name : hps.keys()) {
      if (!is_platform_key(name)) {
        least += name.size() + 4;
        ++user;
      }
    }
    if (least > base::k_max_arg_strlen) {
      c.add("", "holds " + std::to_string(user) + " hyperparameters for the script, at least " + std::to_string(least) +
                    " bytes in SM_HPS; expected at most " + std::to_string(base::k_max_arg_strlen) +
                    " bytes, the kernel's limit for one environment variable (MAX_ARG_STRLEN)");
    } else {
      for (const auto& name : hps.keys()) {
        // Names become SM_HP_<NAME> variables and --name arguments.
        if (name.empty()) {
          c.add("/", "hyperparameter name is empty");
        } else if (name.find('=') != std::string::npos || name.find('\0') != std::string::npos) {
          c.add("/" + name, "hyperparameter name must not contain '=' or a NUL byte");
        }
      }
    }
  }
  out.insert(out.end(), c.problems.begin(), c.problems.end());
}

} // namespace

void
validate_config_files(const ConfigFiles& files, const Paths& paths)
{
  std::vector<Problem> problems;
  check_hyperparameters(files.hyperparameters, paths.hyperparameters_file, problems);
  check_resource_config(files.resource_config, paths.resource_config_file, problems);
  check_input_data_config(files.input_data_config, paths.input_data_config_file, problems);
  if (!problems.empty()) {
    throw ConfigError(std::move(problems));
  }
}

ConfigFiles
read_config_files(const Paths& paths, const Value* resource_config)
{
  // Read all three before failing, so one run reports every broken file.
  std::vector<Problem> problems;
  ConfigFiles files;
  auto read = [&](const std::string& path, Value& into) {
    try {
      into = read_json_file(path);
    } catch (const ConfigError& e) {
      problems.insert(problems.end(), e.problems().begin(), e.problems().end());
    }
  };
  read(paths.hyperparameters_file, files.hyperparameters);
  if (resource_config != nullptr) {
    files.resource_config = *resource_config;
  } else {
    read(paths.resource_config_file, files.resource_config);
  }
  read(paths.input_data_config_file, files.input_data_config);
  if (!problems.empty()) {
    throw ConfigError(std::move(problems));
  }
  validate_config_files(files, paths);
  return files;
}

} // namespace env
