#include "base/option_table.hpp"

#include <algorithm>

namespace launcher {

std::string
option_help(const OptionSpec& option, const std::string& default_text, std::size_t column)
{
  std::string flag = std::string("  --") + option.name + " " + option.value_name;
  flag.resize(std::max<std::size_t>(flag.size() + 2, column), ' ');
  std::string out = flag + option.help + "\n" + std::string(column, ' ') + "env: " + option.env_twin;
  if (option.fallback_env != nullptr) {
    out += std::string(", then ") + option.fallback_env;
  }
  return out + "; default: " + default_text + "\n";
}

std::string
setting_label(const Setting& setting)
{
  return "--" + setting.name + " (" + setting.origin + ")";
}

} // namespace launcher
