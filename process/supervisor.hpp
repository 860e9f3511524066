// The one owner of every child process (probes, staging's helper, pip, the script, mpirun,
// sshd, ssh calls, the hosts of `smlaunch local`, a rank's program): tini's PID-1 design. Signals are blocked and
// collected through a signalfd (no async handlers), forwarded to the child's process group, orphans are reaped, and the
// exit status is the child's own.
#pragma once

#include "base/errors.hpp" // signal_name

#include <chrono>
#include <functional>
#include <signal.h> // NOLINT(modernize-deprecated-headers): for POSIX sigaction, sigset_t
#include <string>
#include <vector>

namespace process {

class OutputRelay;

enum class OutputMode {
  passthrough, // the child's output reaches ours whole; the end of stderr is kept
  capture,     // stdout is collected (probes such as nvidia-smi); stderr is dropped
  lines,       // stdout and stderr reach ours a whole line at a time (`smlaunch rank`:
               // mpirun --tag-output tags every chunk); see rank_relay.hpp
};

struct ChildSpec
{
  std::vector<std::string> argv; // argv[0]: a path, or a name looked up in envp's PATH
  std::vector<std::string> envp; // "NAME=value"
  std::string cwd;               // empty: the launcher's own
  OutputMode output = OutputMode::passthrough;
  std::chrono::milliseconds timeout{0}; // 0: none; otherwise SIGKILL after it (probes)
  std::function<void(pid_t)> on_start;  // called with the child's pid (= its process group)
  int output_fd = -1;                   // run_together(): stdout and stderr both go here
  bool stdin_null = false;              // /dev/null as stdin (the terminal stays the launcher's)
  bool die_with_parent = false;         // run(): never hand it the terminal (a rank); every child
                                        // dies with the launcher (PR_SET_PDEATHSIG) anyway
  // >= 0: of the launcher's descriptors above stderr, the child inherits only this one (a
  // serving worker: its channel, never the listening socket or a client's connection).
  int only_inherited_fd = -1;
  // > 0: SIGTERM reaches the child's group as this signal, and SIGTERM itself only when the
  // grace period ends, then SIGKILL k_term_to_kill later (mpirun: on SIGTERM it would kill
  // the ranks within 2 s, so it gets a signal it forwards to them instead; launcher/mpi_job.cpp).
  int term_as = 0;
};

// With ChildSpec::term_as: how long the child has between SIGTERM and SIGKILL once the grace
// period has ended (mpirun's own stop of the ranks takes about 2 s).
inline constexpr std::chrono::seconds k_term_to_kill{5};

struct ChildResult
{
  int exit_code = 0;               // the code; 128+N when killed by signal N; 126/127 when exec failed
  int term_signal = 0;             // N when the child was killed by a signal
  int exec_errno = 0;              // the errno of a failed exec, else 0
  int stop_signal = 0;             // the first SIGTERM/SIGINT/SIGHUP/SIGQUIT forwarded to it, else 0
  bool killed_after_grace = false; // it outlived the grace period and got SIGKILL
  bool timed_out = false;          // it outlived ChildSpec::timeout
  // A ChildSpec::term_as child outlived the grace period and got SIGTERM (SIGKILL only after k_term_to_kill).
  bool terminated_after_grace = false;
  int orphans_reaped = 0;
  std::string output_tail; // the end of its stderr (or of stdout+stderr when they share a file)
  std::string captured;    // OutputMode::capture: its stdout
  unsigned long long relayed_bytes = 0;
  double seconds = 0;
};

class Supervisor
{
public:
  struct Options
  {
    std::chrono::milliseconds grace_period{std::chrono::seconds(60)};
    std::size_t tail_bytes = 64 * 1024;
    // > 0: this signal is collected and handled exactly as SIGTERM (the rank step: mpirun
    // forwards it in place of the job's SIGTERM, see ChildSpec::term_as).
    int term_alias = 0;
  };

  // Block signals and become a child subreaper when not PID 1.
  explicit Supervisor(Options options);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Run one child to completion under the rules above.
  ChildResult run(const ChildSpec& spec);

  // Run several short children at once (probes over ssh), each collected as with
  // OutputMode::capture; returns their results in the order given.
  std::vector<ChildResult> run_all(const std::vector<ChildSpec>& specs);

  // Run several long children at once (the hosts of `smlaunch local`), each with stdout
  // and stderr on its spec's output_fd and stdin on /dev/null; they die with the launcher.
  // A stop signal reaches every child's group; SIGKILL follows after the grace period.
  // Each result's `seconds` is that child's own run time.
  std::vector<ChildResult> run_together(const std::vector<ChildSpec>& specs);

  // Start a long-running helper (sshd) in its own process group, with its output going
  // straight to ours; it dies with the launcher (PR_SET_PDEATHSIG). Throws SystemError.
  pid_t start_background(const ChildSpec& spec);
  // Whether a background child is still running (it is reaped like any other).
  bool background_running(pid_t pid);
  // SIGTERM its group, then SIGKILL after `grace`; reaps it.
  void stop_background(pid_t pid, std::chrono::milliseconds grace);

  // Sleep up to `duration` between retries, reaping orphans; returns a stop signal
  // (TERM, INT, HUP, QUIT) that arrived meanwhile, or 0.
  int sleep_for(std::chrono::milliseconds duration);

  // A stop signal received while no child was running, or 0 (checked between phases).
  int poll_stop_signal();

  // Whether orphans are reaped here (PID 1 or a subreaper).
  bool
  reaps_orphans() const
  {
    return m_reaps_orphans;
  }

  // The end-of-life sweep (also run by the destructor once any child was started): every
  // live descendant, in a child's process group or not (setsid daemons included), gets
  // SIGTERM, then SIGKILL after `grace` or at a further stop signal; all are reaped.
  // Returns how many were signalled.
  int end_descendants(std::chrono::milliseconds grace);

private:
  // The next signal of the wait set within `timeout` (0 when none came); with `fd` >= 0,
  // k_fd_readable as soon as `fd` has data (or an error), k_fd_hung_up when it is at end of
  // file with nothing to read (every writer closed it).
  static constexpr int k_fd_readable = -1;
  static constexpr int k_fd_hung_up = -2;
  int wait_signal(std::chrono::milliseconds timeout, int fd = -1);
  // run()'s main loop: forwards signals to `pid`'s group and walks its shutdown (running,
  // grace, killed) until it exits; returns its wait status. `terminal_fd`: the
  // pseudo-terminal that takes SIGWINCH's new size, or -1.
  // `relay`: the child's output relay, started here once the child has written.
  int wait_for_main(pid_t pid, const ChildSpec& spec, std::chrono::steady_clock::time_point start, int terminal_fd,
                    OutputRelay* relay, ChildResult& result);
  void reap(const std::function<bool(pid_t, int)>& claim, int& orphans);
  pid_t spawn(const ChildSpec& spec, int child_stdout, int child_stderr, int exec_error_fd, bool background);
  std::vector<pid_t> m_background;
  std::vector<pid_t> m_background_exited;
  // Ends what a finished child left in its group; returns a stop signal that arrived meanwhile.
  int end_process_group(pid_t pgid, int& orphans);
  // A signal collected outside a child's main loop: forwarded to `group` (when > 0); a stop
  // signal is kept for poll_stop_signal() and returned.
  int keep_signal(int sig, pid_t group);

  Options m_options;
  sigset_t m_original_mask{};
  sigset_t m_wait_set{};
  int m_signal_fd = -1; // the wait set as a descriptor: wait_signal's
  struct sigaction m_original_ttin
  {
  };
  struct sigaction m_original_ttou
  {
  };
  struct sigaction m_original_pipe
  {
  };
  bool m_reaps_orphans = false;
  int m_pending_stop = 0;
  bool m_spawned = false;
};

// A child's end as waitpid() reports it: `code` is its exit code, or 128+N when signal N
// killed it (then `term_signal` is N).
struct ExitStatus
{
  int code = 0;
  int term_signal = 0;
};
ExitStatus decode_wait_status(int status);

} // namespace process
