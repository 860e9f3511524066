// Commands as text: quoting one word for a POSIX shell, splitting a command line into
// words as the shell would, and joining an argv for messages.
#pragma once

#include <string>
#include <vector>

namespace base {

// `word` as one word for a POSIX shell (the remote side of `ssh host command`, a command
// line in a config file): unchanged when it holds only characters no shell treats
// specially, else in single quotes (a quote inside becomes '\''). Note that no quoting
// helps Open MPI's plm_rsh_agent, which it splits on spaces and colons, ignoring quotes.
std::string shell_quote(const std::string& word);

// Split `text` as a POSIX shell would (quotes, backslashes), without expanding anything
// (--ssh-command, sagemaker_additional_mpi_options). Throws std::invalid_argument on an
// unbalanced quote or a trailing backslash.
std::vector<std::string> shell_split(const std::string& text);

// argv joined by single spaces, as the reference shows commands (no quoting).
std::string join_command(const std::vector<std::string>& argv);

} // namespace base
