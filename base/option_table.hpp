// The option tables of every command (train and plan in launcher/cli.cpp, serve in
// launcher/serve_options.cpp, local in local/local_plan.cpp): each row an option with its
// SMLAUNCH_* environment twin (an ENTRYPOINT's argv is fixed in the image), and each
// resolved value remembering where it came from (`smlaunch plan`, -v).
#pragma once

#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace base {

// One resolved setting and where its value came from.
struct Setting
{
  std::string name;
  std::string value;
  std::string origin; // "command line", "environment SMLAUNCH_X", "default", ...
};

// One row of an option table.
struct OptionSpec
{
  const char* name;
  const char* env_twin;     // nullptr: command line only (local's repeatable options)
  const char* fallback_env; // a variable of the reference's, used after the twin
  const char* default_value;
  const char* value_name; // "": a flag (local's --keep)
  const char* help;
};

// The option's value and where it came from: the command line (`command_line`, null when
// absent), its twin, its fallback variable, else its default. `Environment` is an
// env::EnvMap (a template: base/ comes before env/ and does not link it).
template <class Environment>
Setting
resolve_setting(const OptionSpec& option, const std::string* command_line, const Environment& environment)
{
  if (command_line != nullptr) {
    return {option.name, *command_line, "command line"};
  }
  for (const char* name : {option.env_twin, option.fallback_env}) {
    if (const std::string* v = name != nullptr ? environment.get(name) : nullptr; v != nullptr && !v->empty()) {
      return {option.name, *v, std::string("environment ") + name};
    }
  }
  return {option.name, option.default_value, "default"};
}

// One option of a help text: "  --NAME VALUE" padded to `column`, its help, then a line
// with its environment twin (and the fallback variable) and `default_text`.
std::string option_help(const OptionSpec& option, const std::string& default_text, std::size_t column);

// A flag of a command (no value), with its one-letter form ('\0': none).
struct FlagSpec
{
  const char* name;
  char letter;
};

// A command line read against an option table: each option's value, the flags given and
// the other words, in order.
struct OptionWords
{
  std::map<std::string, std::string> values;
  std::set<std::string> flags;
  std::vector<std::string> words;
};

// Reads argv[1..] as Boost.Program_options did for these tables: --NAME VALUE and
// --NAME=VALUE (a VALUE that starts with '-' must use the second form), a unique prefix of
// a long name, -x and grouped -xy for flags, and "--" before words that start with '-'.
// An unknown, ambiguous, repeated or incomplete option throws UsageError, naming it.
OptionWords read_option_words(int argc, const char* const* argv, std::span<const OptionSpec> options,
                              std::span<const FlagSpec> flags);

// "--NAME (ORIGIN)": how messages about a setting's value name it.
std::string setting_label(const Setting& setting);

} // namespace base
