#include "base/shell.hpp"

#include <stdexcept>

namespace base {

std::string
shell_quote(const std::string& word)
{
  if (!word.empty() &&
      word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@") ==
          std::string::npos) {
    return word;
  }
  std::string out = "'";
  for (char c : word) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

std::string
join_command(const std::vector<std::string>& argv)
{
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) {
      out += ' ';
    }
    out += a;
  }
  return out;
}

std::vector<std::string>
shell_split(const std::string& text)
{
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) {
        words.push_back(word);
        word.clear();
        in_word = false;
      }
      ++i;
    } else if (c == '\'') {
      const auto end = text.find('\'', i + 1);
      if (end == std::string::npos) {
        throw std::invalid_argument("unbalanced single quote at character " + std::to_string(i + 1));
      }
      word += text.substr(i + 1, end - i - 1);
      in_word = true;
      i = end + 1;
    } else if (c == '"') {
      std::size_t j = i + 1;
      for (;; ++j) {
        if (j >= text.size()) {
          throw std::invalid_argument("unbalanced double quote at character " + std::to_string(i + 1));
        }
        if (text[j] == '"') {
          break;
        }
        // Inside double quotes a backslash escapes only $ ` " \ and newline.
        if (text[j] == '\\' && j + 1 < text.size() && std::string("$`\"\\\n").find(text[j + 1]) != std::string::npos) {
          ++j;
        }
        word += text[j];
      }
      in_word = true;
      i = j + 1;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) {
        throw std::invalid_argument("trailing backslash");
      }
      word += text[i + 1];
      in_word = true;
      i += 2;
    } else {
      word += c;
      in_word = true;
      ++i;
    }
  }
  if (in_word) {
    words.push_back(word);
  }
  return words;
}

} // namespace base
