// output/failure: the CONTRACT's format, with a message that tells a user in its first
// 1024 bytes what went wrong.
#pragma once

#include "env/env_map.hpp"
#include "env/paths.hpp"
#include "process/supervisor.hpp"

#include <string>
#include <vector>

namespace process {

// "<Class>:\nExitCode <n>\nErrorMessage \"<message>\"\nCommand \"<command>\"\n"; for smlaunch's
// own classes the first line goes on with the message's first line.
std::string format_failure(const std::string& error_class, int exit_code, const std::string& message,
                           const std::string& command);

// The classes the reference toolkit writes (their first line stays "<Class>:").
bool is_reference_error_class(const std::string& error_class);

// For a Python traceback in `output`: the exception line, then the end of the traceback.
// Empty when `output` holds no traceback.
std::string python_error_summary(const std::string& output, std::size_t max_bytes);

// mpirun --tag-output's "[1,3]<stderr>:" tags removed, keeping only the stderr of the rank
// whose traceback came last (or every tagged line when none did); `output` unchanged when
// it has no tags.
std::string untag_mpi_output(const std::string& output);

// The last whole lines of `output`, at most `max_bytes`.
std::string last_lines(const std::string& output, std::size_t max_bytes);

// Why a script failed, from its result and the end of its output.
std::string describe_script_failure(const ChildResult& result, const std::string& program, double grace_seconds);

// Why pip failed: its ERROR lines first (they name the requirement), then its last lines.
std::string describe_install_failure(const ChildResult& result, const std::string& python = "");

// One run's outcome files in a tree: output/success, output/failure, the .smlaunch/outcome
// marker of what smlaunch wrote last, and the failure file's reserved space.
struct OutcomeFiles
{
  env::Paths paths;
  bool reserve_kept = false;        // the reserve is .smlaunch/failure-reserve, kept from run to run
  bool marker_says_success = false; // the marker says "success" (no need to write it again)
};

// The job's end on this host: an empty output/success for 0, else output/failure in the
// CONTRACT's format (secrets redacted, a file the user wrote kept). Returns `code`.
int record_outcome(OutcomeFiles& outcome, int code, const std::string& error_class, const std::string& message,
                   const std::string& command, const env::EnvMap& secrets);

// Write `text` to `path` unless the file exists (a failure file the user wrote is kept).
// Returns false when it was kept or could not be written.
bool write_failure_file(const std::string& path, const std::string& text);

// At the start of `train`: removes the success or failure file that smlaunch itself wrote
// in an earlier run on this tree (a failure file the user's script wrote stays), and
// reserves space in output/ for the failure file.
OutcomeFiles prepare_outcome(const env::Paths& paths);
// Give back the space prepare_outcome reserved, for a run that ends without an outcome
// (`train --stage-only`).
void release_failure_reserve(const OutcomeFiles& outcome);
// write_failure_file into the reserved space, remembered as smlaunch's own.
bool record_failure(OutcomeFiles& outcome, const std::string& text);

} // namespace process
