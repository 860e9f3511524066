// `smlaunch serve` (also `serve` on PATH): parse -> plan -> execute. Stages the code named
// by SAGEMAKER_SUBMIT_DIRECTORY and installs its requirements as `train` does, unpacks
// --model-data, then runs serve/'s HTTP front with Python workers started by the
// supervisor.
#pragma once

#include "env/blas_core.hpp"
#include "env/env_map.hpp"
#include "env/thread_budget.hpp"
#include "fetch/code_source.hpp"
#include "launcher/serve_options.hpp"

#include <string>
#include <vector>

namespace launcher {

// What planning needs from the machine (gathered once, so planning stays pure).
struct ServeFacts
{
  std::string cwd;
  std::string python;       // --python resolved on PATH
  std::string python_share; // the smlaunch_serving package's folder
  int cpus = 1;
  env::VectorIsa vector_isa = env::VectorIsa::other;
  bool code_dir_has_files = false;
  bool staged_by_smlaunch = false;
};

struct ServePlan
{
  std::string base_dir;
  std::string code_dir;
  std::string model_dir;     // what model_fn receives
  std::string model_archive; // --model-data to unpack into model_dir ("" : none)
  bool model_from_s3 = false;
  fetch::CodeSource source;
  fetch::StagingAction staging = fetch::StagingAction::none;
  std::string program; // SAGEMAKER_PROGRAM as given (train.py)
  std::string module;  // imported by every worker (train)
  int workers = 1;
  std::vector<std::string> worker_argv;
  env::EnvMap worker_env;          // without the per-worker SMLAUNCH_SERVE_FD / _WORKER
  env::ThreadBudget thread_budget; // cpus / workers, applied to worker_env (user values kept)
  env::BlasCoreType blas_core;     // OPENBLAS_CORETYPE, applied to worker_env (a user value kept)
};

// Throws UsageError or StagingError.
ServePlan make_serve_plan(const ServeOptions& options, const env::EnvMap& inherited, const ServeFacts& facts);

// <dir of this binary>/../share/smlaunch/python.
std::string serving_python_dir();

// The whole command; returns the exit status (README: "Serving").
int run_serve(int argc, const char* const* argv, const env::EnvMap& inherited);

} // namespace launcher
