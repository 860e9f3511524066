#include "serve/routing.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace serve {

namespace {

std::string_view
path_of(std::string_view target)
{
  // Absolute form (RFC 9112 section 3.2.2: POST http://host/invocations): the path.
  for (const std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() && std::equal(scheme.begin(), scheme.end(), target.begin(), [](char a, char b) {
          return a == std::tolower(static_cast<unsigned char>(b));
        })) {
      const auto slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      break;
    }
  }
  const auto query = target.find('?');
  return query == std::string_view::npos ? target : target.substr(0, query);
}

std::string_view
trimmed(std::string_view s)
{
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

} // namespace

Route
route_for(std::string_view method, std::string_view target)
{
  const std::string_view path = path_of(target);
  if (path == "/ping") {
    return method == "GET" || method == "HEAD" ? Route::ping : Route::method_not_allowed;
  }
  if (path == "/invocations") {
    return method == "POST" ? Route::invocations : Route::method_not_allowed;
  }
  return Route::not_found;
}

std::string_view
allowed_methods(std::string_view target)
{
  const std::string_view path = path_of(target);
  if (path == "/ping") {
    return "GET, HEAD";
  }
  if (path == "/invocations") {
    return "POST";
  }
  return "";
}

std::string
resolve_content_type(std::optional<std::string_view> sagemaker_content_type,
                     std::optional<std::string_view> content_type)
{
  for (const auto& value : {sagemaker_content_type, content_type}) {
    if (value && !trimmed(*value).empty()) {
      return std::string(trimmed(*value));
    }
  }
  return "application/json";
}

std::string
resolve_accept(std::optional<std::string_view> accept, std::string_view default_accept)
{
  if (!accept || trimmed(*accept).empty() || trimmed(*accept) == "*/*") {
    return std::string(default_accept);
  }
  return std::string(trimmed(*accept));
}

std::string
error_body(std::string_view error, std::string_view message)
{
  const nlohmann::json body = {{"error", std::string(error)}, {"message", std::string(message)}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace serve
