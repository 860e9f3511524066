// `smlaunch local`: the pure half. Its options, and the job directory it will write: one
// SageMaker tree per host, exactly as the SageMaker Python SDK's local mode writes them
// (reference: chainer-container.md, section E), so a script sees what it would see there.
#pragma once

#include "base/logging.hpp"
#include "base/option_table.hpp"
#include "env/env_map.hpp"
#include "env/json_value.hpp"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace local {

struct LocalOptions
{
  std::string entry_point;          // the script; relative to source_dir when that is given
  std::string source_dir;           // "" : the entry point's directory
  std::string hyperparameters_file; // a JSON object of plain values, as given to an estimator
  std::vector<std::pair<std::string, std::string>> hyperparameters; // --hyperparameter K=V, in order
  std::vector<std::pair<std::string, std::string>> channels;        // --channel NAME=PATH, in order
  int instance_count = 1;
  std::string instance_type = "local";
  bool use_mpi = false;
  int processes_per_host = 0;         // 0: not given (the launcher's default: GPUs, or 1)
  int num_processes = 0;              // 0: not given (hosts x processes per host)
  std::string additional_mpi_options; // mpirun options, as the Chainer estimator's kwarg
  std::string job_dir;                // "" : ./<job name>
  std::string job_name;               // "" : smlaunch-local-<UTC time>
  std::string region;                 // "" : AWS_REGION, AWS_DEFAULT_REGION, else us-east-1
  bool keep = false;                  // keep the per-host trees after collecting artifacts
  std::string python;                 // passed to every host as SMLAUNCH_PYTHON
  std::chrono::milliseconds grace_period{60000};
  base::Verbosity verbosity = base::Verbosity::normal;
  bool help = false;
  std::vector<base::Setting> settings; // each option's value and its origin (logged with -v)
};

// `smlaunch local ARGS...` (args after "local"). Options have SMLAUNCH_* twins except the
// repeatable --hyperparameter and --channel. Throws UsageError naming the option.
LocalOptions parse_local_options(const std::vector<std::string>& args, const env::EnvMap& environment);

std::string local_help_text();

struct LocalFile
{
  std::string path;
  std::string content;
};

struct LocalLink
{
  std::string path;   // the link
  std::string target; // what it points to
};

struct LocalHost
{
  std::string name; // algo-1 ...
  std::string base; // <job dir>/<name>: this host's /opt/ml
  std::string role; // master, worker, or single (no MPI)
};

struct LocalJobPlan
{
  std::string job_name;
  std::string job_dir;
  std::string model_dir;  // <job dir>/model: the one model directory every host shares
  std::string source_dir; // absolute
  std::string code_copy;  // <job dir>/.smlaunch-local/source: the code as it was at the start
  std::string program;    // sagemaker_program
  std::string region;
  bool use_mpi = false; // whether the hosts will run one MPI job
  std::vector<LocalHost> hosts;
  std::vector<std::string> directories; // created in this order
  std::vector<LocalFile> files;
  std::vector<LocalLink> links;
  env::Value hyperparameters; // as written: every value a JSON text
};

// Decode a --hyperparameter value the way a user means it: JSON when it parses (3, 0.1,
// true, [1,2], "x"), else the text itself.
env::Value hyperparameter_value(const std::string& text);

// The Chainer estimator's MPI keyword arguments (each written only when truthy).
struct ChainerMpiArguments
{
  bool use_mpi = false;
  int num_processes = 0;
  int process_slots_per_host = 0;
  std::string additional_mpi_options;
};

// The SDK's encoding of an estimator's hyperparameters (json.dumps of each value), with
// the sagemaker_* keys the Chainer estimator adds, in the SDK's order. `user` is the
// decoded map (file entries, then --hyperparameter flags).
env::Value encode_local_hyperparameters(const env::Value& user, const std::string& submit_directory,
                                        const std::string& program, const std::string& job_name,
                                        const std::string& region, const ChainerMpiArguments& mpi);

// The user's hyperparameters: the --hyperparameters file's entries, then each
// --hyperparameter flag (a later one replaces an earlier one). Throws UsageError naming
// the file and what was expected.
env::Value load_user_hyperparameters(const LocalOptions& options);

// Everything `smlaunch local` writes before it starts the hosts. `user_hyperparameters` is
// the decoded map; `cwd` resolves relative paths. Checks that the entry point, the source
// directory and each channel exist; throws UsageError otherwise.
LocalJobPlan plan_local_job(const LocalOptions& options, const env::Value& user_hyperparameters, const std::string& cwd,
                            const env::EnvMap& environment, std::chrono::system_clock::time_point now);

// The SDK's job name form: <base>-YYYY-MM-DD-HH-MM-SS-mmm (UTC).
std::string local_job_name(std::chrono::system_clock::time_point now);

} // namespace local
