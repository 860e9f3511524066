// A rank's output in whole lines. mpirun --tag-output tags every chunk a rank writes, so
// an unbuffered Python (PYTHONUNBUFFERED=1, as SageMaker images set it) that writes a
// line and its newline separately gets "text[1,0]<stdout>:" lines and torn tracebacks.
// `smlaunch rank` therefore runs the program as its child and passes its stdout and stderr
// on a line at a time (a partial line after a short pause: progress bars still move).
#pragma once

#include <string>
#include <vector>

namespace launcher {

// Assembles one stream: feed() what arrived, take() what may be written now.
class LineAssembler
{
public:
  // Appends `data`; returns everything up to and including its last newline (with what
  // was held before), or "" when no line is complete.
  std::string feed(const char* data, std::size_t size);
  // What is held (a partial line), emptied.
  std::string take_partial();
  bool holds_partial() const { return !m_partial.empty(); }
  std::size_t partial_size() const { return m_partial.size(); }

private:
  std::string m_partial;
};

// Fork and exec `path` with `argv`/`envp`, relay its stdout and stderr through
// LineAssemblers, forward TERM, INT, HUP, QUIT, USR1, USR2 to it, and end as it ended
// (its exit code, or killed by its signal). Returns only when the fork or exec failed
// (126/127, with errno's message on stderr).
int run_with_line_output(const std::string& path, std::vector<char*>& argv, std::vector<char*>& envp);

} // namespace launcher
