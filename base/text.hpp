// Text helpers shared by the folders that read files and outputs line by line.
#pragma once

#include <string>
#include <vector>

namespace base {

// `text` cut at each '\n', without it, and without a '\r' before it (CRLF files); a last
// line without '\n' counts, an empty text has no line.
std::vector<std::string> split_lines(const std::string& text);

} // namespace base
