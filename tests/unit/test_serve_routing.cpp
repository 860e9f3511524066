#include "serve/routing.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

using serve::Route;

TEST(ServeRouting, Routes)
{
  struct Case
  {
    const char* method;
    const char* target;
    Route route;
  };
  const Case cases[] = {
    {"GET", "/ping", Route::ping},
    {"HEAD", "/ping", Route::ping},
    {"GET", "/ping?x=1", Route::ping},
    {"POST", "/ping", Route::method_not_allowed},
    {"POST", "/invocations", Route::invocations},
    {"POST", "/invocations?model=a", Route::invocations},
    {"GET", "/invocations", Route::method_not_allowed},
    {"PUT", "/invocations", Route::method_not_allowed},
    {"GET", "/", Route::not_found},
    {"GET", "/pingx", Route::not_found},
    {"POST", "/invocations/", Route::not_found},
    {"GET", "/execution-parameters", Route::not_found},
    // Absolute form (RFC 9112 section 3.2.2).
    {"POST", "http://h/invocations", Route::invocations},
    {"POST", "HTTP://h:8080/invocations?x=1", Route::invocations},
    {"GET", "https://h/ping", Route::ping},
    {"GET", "http://h", Route::not_found},
    {"GET", "http://h/pingx", Route::not_found},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(serve::route_for(c.method, c.target), c.route) << c.method << " " << c.target;
  }
  EXPECT_EQ(serve::allowed_methods("/ping"), "GET, HEAD");
  EXPECT_EQ(serve::allowed_methods("/invocations?x"), "POST");
  EXPECT_EQ(serve::allowed_methods("/other"), "");
}

TEST(ServeRouting, ContentTypeOrderIsTheReferences)
{
  using std::nullopt;
  EXPECT_EQ(serve::resolve_content_type("text/csv", "application/x-npy"), "text/csv");
  EXPECT_EQ(serve::resolve_content_type(nullopt, "application/x-npy"), "application/x-npy");
  EXPECT_EQ(serve::resolve_content_type(nullopt, nullopt), "application/json");
  EXPECT_EQ(serve::resolve_content_type("", "text/csv"), "text/csv");
  EXPECT_EQ(serve::resolve_content_type(" ", ""), "application/json");
  EXPECT_EQ(serve::resolve_content_type(nullopt, " text/csv; charset=utf-8 "), "text/csv; charset=utf-8");
}

TEST(ServeRouting, AcceptDefaults)
{
  using std::nullopt;
  EXPECT_EQ(serve::resolve_accept(nullopt, "application/json"), "application/json");
  EXPECT_EQ(serve::resolve_accept("", "text/csv"), "text/csv");
  EXPECT_EQ(serve::resolve_accept("*/*", "text/csv"), "text/csv");
  EXPECT_EQ(serve::resolve_accept(" */* ", "text/csv"), "text/csv");
  EXPECT_EQ(serve::resolve_accept("application/x-npy", "text/csv"), "application/x-npy");
  // Lists are left to the worker's output_fn (the default one picks by q, then order).
  EXPECT_EQ(serve::resolve_accept("text/csv, */*", "application/json"), "text/csv, */*");
}

TEST(ServeRouting, ErrorBodyIsJson)
{
  const auto body = nlohmann::json::parse(serve::error_body("NotFound", "no such path: /a\"b\n"));
  EXPECT_EQ(body["error"], "NotFound");
  EXPECT_EQ(body["message"], "no such path: /a\"b\n");
  // Invalid UTF-8 from a request target is replaced, never thrown on.
  EXPECT_NO_THROW(nlohmann::json::parse(serve::error_body("NotFound", "\xff\xfe")));
}

} // namespace
