// What the HTTP front decides before a request reaches a worker: the route, the request's
// content type, the accept to answer with, and the JSON body of an error. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace serve {

enum class Route {
  ping,               // GET or HEAD /ping
  invocations,        // POST /invocations
  method_not_allowed, // a known path with another method (405, with Allow)
  not_found,          // any other path (404)
};

// `target` is the request target; a query string is ignored.
Route route_for(std::string_view method, std::string_view target);

// The methods a known path allows (for 405's Allow header), "" for unknown paths.
std::string_view allowed_methods(std::string_view target);

// The reference's order: header `ContentType`, else `Content-Type`, else application/json;
// an empty value counts as missing. The value is passed on as given (parameters too).
std::string resolve_content_type(std::optional<std::string_view> sagemaker_content_type,
                                 std::optional<std::string_view> content_type);

// `Accept` as given; missing, empty or `*/*` -> `default_accept`
// (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT).
std::string resolve_accept(std::optional<std::string_view> accept, std::string_view default_accept);

// {"error": error, "message": message}: the body of every error the front answers itself.
std::string error_body(std::string_view error, std::string_view message);

} // namespace serve
