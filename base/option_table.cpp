#include "base/option_table.hpp"

#include "base/errors.hpp"

#include <algorithm>
#include <cstring>

namespace base {

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

namespace {

// The option or flag that `name` names: itself, else the only one it is a prefix of.
struct Known
{
  const char* name = nullptr;
  bool takes_value = false;
};

Known
find_long(const std::string& name, std::span<const OptionSpec> options, std::span<const FlagSpec> flags)
{
  // Options, then flags, in table order; no copy of the tables (this runs at every start).
  const auto each_known = [&](const auto& visit) {
    for (const auto& o : options) {
      if (visit(Known{o.name, true})) {
        return;
      }
    }
    for (const auto& f : flags) {
      if (visit(Known{f.name, false})) {
        return;
      }
    }
  };
  const auto is_prefix = [&](const Known& k) {
    return !name.empty() && std::strncmp(k.name, name.c_str(), name.size()) == 0;
  };
  Known exact;
  Known first_prefixed;
  std::size_t prefixed = 0;
  each_known([&](const Known& k) {
    if (name == k.name) {
      exact = k;
      return true;
    }
    if (is_prefix(k) && prefixed++ == 0) {
      first_prefixed = k;
    }
    return false;
  });
  if (exact.name != nullptr) {
    return exact;
  }
  if (prefixed == 1) {
    return first_prefixed;
  }
  if (prefixed > 1) {
    std::string candidates;
    each_known([&](const Known& k) {
      if (is_prefix(k)) {
        candidates += std::string(candidates.empty() ? "" : ", ") + "'--" + k.name + "'";
      }
      return false;
    });
    throw UsageError("option '--" + name + "' is ambiguous and matches " + candidates);
  }
  throw UsageError("unrecognised option '--" + name + "'");
}

} // namespace

OptionWords
read_option_words(int argc, const char* const* argv, std::span<const OptionSpec> options,
                  std::span<const FlagSpec> flags)
{
  OptionWords out;
  const auto set_flag = [&](const char* name) {
    if (!out.flags.insert(name).second) {
      throw UsageError(std::string("option '--") + name + "' cannot be specified more than once");
    }
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      out.words.insert(out.words.end(), argv + i + 1, argv + argc);
      break;
    }
    if (arg.starts_with("--")) {
      const auto equals = arg.find('=');
      const std::string name = arg.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
      const Known known = find_long(name, options, flags);
      if (!known.takes_value) {
        if (equals != std::string::npos) {
          throw UsageError(std::string("option '--") + known.name + "' does not take any arguments");
        }
        set_flag(known.name);
        continue;
      }
      std::string value;
      if (equals != std::string::npos) {
        value = arg.substr(equals + 1);
      } else if (i + 1 < argc && (argv[i + 1][0] != '-' || argv[i + 1][1] == '\0')) {
        value = argv[++i];
      } else {
        throw UsageError(std::string("the required argument for option '--") + known.name + "' is missing");
      }
      if (!out.values.emplace(known.name, std::move(value)).second) {
        throw UsageError(std::string("option '--") + known.name + "' cannot be specified more than once");
      }
    } else if (arg.size() > 1 && arg[0] == '-') {
      for (std::size_t c = 1; c < arg.size(); ++c) {
        const auto flag =
            std::find_if(flags.begin(), flags.end(), [&](const FlagSpec& f) { return f.letter == arg[c]; });
        if (flag == flags.end() || flag->letter == '\0') {
          throw UsageError("unrecognised option '-" + std::string(1, arg[c]) + "'");
        }
        set_flag(flag->name);
      }
    } else {
      out.words.push_back(arg);
    }
  }
  return out;
}

std::string
setting_label(const Setting& setting)
{
  return "--" + setting.name + " (" + setting.origin + ")";
}

} // namespace base
