#include "serve/framing.hpp"

#include <gtest/gtest.h>

namespace {

using serve::FrameHeader;
using serve::FrameKind;

TEST(ServeFraming, RoundTripsEveryField)
{
  const FrameHeader in{FrameKind::response, 415, 0x0102030405060708ULL, 17, 0x1122334455ULL};
  const auto bytes = serve::encode_header(in);
  const FrameHeader out = serve::decode_header(bytes, 1ULL << 40);
  EXPECT_EQ(out.kind, FrameKind::response);
  EXPECT_EQ(out.status, 415);
  EXPECT_EQ(out.id, 0x0102030405060708ULL);
  EXPECT_EQ(out.meta_size, 17U);
  EXPECT_EQ(out.body_size, 0x1122334455ULL);
}

TEST(ServeFraming, LittleEndianLayoutAsPythonStructPacksIt)
{
  // struct.pack("<IHHQIIQ", 0x534C4D53, 1, 0, 7, 3, 0, 258) in worker.py.
  const auto bytes = serve::encode_header(FrameHeader{FrameKind::request, 0, 7, 3, 258});
  const std::string expected("SMLS\x01\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x02\x01\x00\x00\x00\x00\x00\x00",
                             32);
  EXPECT_EQ(std::string(bytes.data(), bytes.size()), expected);
}

TEST(ServeFraming, RefusesWhatIsNotAFrame)
{
  struct Case
  {
    const char* name;
    FrameHeader header;
    int patch_offset; // -1: none
    char patch;
    std::uint64_t max_body;
    const char* message;
  };
  const Case cases[] = {
    {"bad magic", FrameHeader{FrameKind::ready, 0, 0, 0, 0}, 0, 'X', 100, "magic"},
    {"kind 0", FrameHeader{FrameKind::ready, 0, 0, 0, 0}, 4, 0, 100, "unknown kind 0"},
    {"kind 9", FrameHeader{FrameKind::ready, 0, 0, 0, 0}, 4, 9, 100, "unknown kind 9"},
    {"meta too large", FrameHeader{FrameKind::ready, 0, 0, serve::k_max_meta_size + 1, 0}, -1, 0, 100, "metadata"},
    {"body too large", FrameHeader{FrameKind::response, 200, 0, 0, 101}, -1, 0, 100, "body of 101 bytes"},
    {"status 99", FrameHeader{FrameKind::response, 99, 0, 0, 0}, -1, 0, 100, "status 99"},
    {"status 600", FrameHeader{FrameKind::response, 600, 0, 0, 0}, -1, 0, 100, "status 600"},
    // Beast throws for a field value over 65533 bytes: a content type that long must not
    // reach it.
    {"content type too large", FrameHeader{FrameKind::response, 200, 0, serve::k_max_response_meta_size + 1, 0}, -1, 0,
     100, "content type of 8193 bytes"},
    {"content type of 65534", FrameHeader{FrameKind::response, 200, 0, 65534, 0}, -1, 0, 100, "content type"},
  };
  for (const auto& c : cases) {
    auto bytes = serve::encode_header(c.header);
    if (c.patch_offset >= 0) {
      bytes[static_cast<std::size_t>(c.patch_offset)] = c.patch;
    }
    try {
      serve::decode_header(bytes, c.max_body);
      ADD_FAILURE() << c.name << ": accepted";
    } catch (const serve::FramingError& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << c.name << ": " << e.what();
    }
  }
}

TEST(ServeFraming, BodyAtTheLimitIsAccepted)
{
  EXPECT_EQ(serve::decode_header(serve::encode_header(FrameHeader{FrameKind::response, 200, 1, 0, 100}), 100).body_size, 100U);
}

TEST(ServeFraming, ResponseMetaAtItsLimitIsAccepted)
{
  const FrameHeader h{FrameKind::response, 200, 1, serve::k_max_response_meta_size, 0};
  EXPECT_EQ(serve::decode_header(serve::encode_header(h), 100).meta_size, serve::k_max_response_meta_size);
  // Other kinds keep the larger limit (a fatal frame carries a traceback).
  const FrameHeader fatal{FrameKind::fatal, 0, 0, serve::k_max_response_meta_size + 1, 0};
  EXPECT_EQ(serve::decode_header(serve::encode_header(fatal), 100).meta_size, serve::k_max_response_meta_size + 1);
}

// Beast's prepare_payload() throws for a 1xx, 204 or 304 answer with a body.
TEST(ServeFraming, OnlyStatusesThatMayCarryABodyAreSent)
{
  struct Case
  {
    unsigned status;
    bool allowed;
  };
  const Case cases[] = {{100, false}, {101, false}, {199, false}, {200, true}, {201, true}, {203, true},
                        {204, false}, {205, true},  {299, true},  {303, true}, {304, false}, {305, true},
                        {404, true},  {500, true},  {599, true},  {600, false}, {0, false}};
  for (const auto& c : cases) {
    EXPECT_EQ(serve::response_status_allowed(c.status), c.allowed) << c.status;
  }
}

TEST(ServeFraming, RequestMetaIsContentTypeNewlineAccept)
{
  EXPECT_EQ(serve::request_meta("text/csv", "application/json"), "text/csv\napplication/json");
  EXPECT_EQ(serve::request_meta("", ""), "\n");
}

} // namespace
