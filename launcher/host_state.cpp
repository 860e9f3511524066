#include "launcher/host_state.hpp"

#include "base/errors.hpp"
#include "env/config_files.hpp"
#include "env/py_format.hpp"

#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace launcher {

namespace {

std::string
state_dir(const std::string& base_dir)
{
  return base_dir + "/.smlaunch";
}

void
write_atomically(const std::string& path, const std::string& text, mode_t mode)
{
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    throw SystemError("open", tmp, errno);
  }
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int err = errno;
      ::close(fd);
      throw SystemError("write", tmp, err);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    throw SystemError("rename", path, errno);
  }
}

int
int_at(const env::Value& obj, const char* key)
{
  const env::Value* v = obj.find(key);
  return v != nullptr && v->kind() == env::Value::Kind::integer ? std::stoi(v->text()) : 0;
}

} // namespace

void
write_host_state(const std::string& base_dir, const HostState& state)
{
  env::Value environment = env::Value::object();
  for (const auto& [k, v] : state.environment.entries()) {
    environment.append_unique(k, env::Value::string(v));
  }
  env::Value machine = env::Value::object();
  machine.append_unique("num_cpus", env::Value::integer(state.machine.num_cpus));
  machine.append_unique("num_gpus", env::Value::integer(state.machine.num_gpus));
  machine.append_unique("num_neurons", env::Value::integer(state.machine.num_neurons));
  machine.append_unique("smddprun_installed", env::Value::boolean(state.machine.smddprun_installed));
  machine.append_unique("smddpmprun_installed", env::Value::boolean(state.machine.smddpmprun_installed));
  env::Value doc = env::Value::object();
  doc.append_unique("environment", environment);
  doc.append_unique("machine", machine);
  write_atomically(state_dir(base_dir) + "/host.json", env::py_json_dumps(doc), 0600);
}

HostState
read_host_state(const std::string& base_dir)
{
  env::Value doc;
  try {
    doc = env::read_json_file(state_dir(base_dir) + "/host.json");
  } catch (const std::exception& e) {
    throw StagingError(std::string("this host's launcher state is missing (is `smlaunch train` running here?): ") +
                       e.what());
  }
  HostState state;
  if (const env::Value* environment = doc.find("environment")) {
    for (std::size_t i = 0; i < environment->size(); ++i) {
      state.environment.set(environment->keys()[i], environment->items()[i].text());
    }
  }
  if (const env::Value* m = doc.find("machine")) {
    state.machine.num_cpus = int_at(*m, "num_cpus");
    state.machine.num_gpus = int_at(*m, "num_gpus");
    state.machine.num_neurons = int_at(*m, "num_neurons");
    const env::Value* a = m->find("smddprun_installed");
    const env::Value* b = m->find("smddpmprun_installed");
    state.machine.smddprun_installed = a != nullptr && a->truthy();
    state.machine.smddpmprun_installed = b != nullptr && b->truthy();
  }
  return state;
}

std::string
job_outcome_path(const std::string& base_dir)
{
  return state_dir(base_dir) + "/job-outcome.json";
}

void
write_job_outcome(const std::string& base_dir, const JobOutcome& outcome)
{
  env::Value doc = env::Value::object();
  doc.append_unique("exit_code", env::Value::integer(outcome.exit_code));
  doc.append_unique("message", env::Value::string(outcome.message));
  write_atomically(job_outcome_path(base_dir), env::py_json_dumps(doc), 0644);
}

std::optional<JobOutcome>
read_job_outcome(const std::string& base_dir)
{
  if (::access(job_outcome_path(base_dir).c_str(), F_OK) != 0) {
    return std::nullopt;
  }
  try {
    const env::Value doc = env::read_json_file(job_outcome_path(base_dir));
    const env::Value* message = doc.find("message");
    return JobOutcome{int_at(doc, "exit_code"), message != nullptr && message->is_string() ? message->text() : ""};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

} // namespace launcher
