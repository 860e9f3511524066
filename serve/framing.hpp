// The framing protocol between the HTTP front and its Python workers, over one Unix
// stream socket per worker. Every message is a 32-byte header, then `meta_size` bytes of
// UTF-8 metadata, then `body_size` bytes of body. Little-endian:
//
//   offset  size  field
//        0     4  magic "SMLS" (0x534c4d53 as u32)
//        4     2  kind (FrameKind)
//        6     2  status (responses: the HTTP status; else 0)
//        8     8  id (the request's id; a response carries its request's)
//       16     4  meta_size
//       20     4  reserved, 0
//       24     8  body_size
//
// Metadata by kind: request: "<content type>\n<accept>"; response: "<content type>";
// ready: a JSON object ({"pid": N, ...}); fatal: the error text. Pure.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace serve {

enum class FrameKind : std::uint16_t {
  request = 1,  // front -> worker
  response = 2, // worker -> front
  ready = 3,    // worker -> front: the model is loaded (model_fn returned)
  fatal = 4,    // worker -> front: the module or model_fn failed; the worker exits
};

constexpr std::uint32_t k_frame_magic = 0x534c4d53; // "SMLS" in memory
constexpr std::size_t k_frame_header_size = 32;
constexpr std::uint32_t k_max_meta_size = 64 * 1024;
// A response's metadata (its content type) becomes a header field: well under Beast's
// limit for one field value (65533 bytes), which it enforces by throwing.
constexpr std::uint32_t k_max_response_meta_size = 8 * 1024;

struct FrameHeader
{
  FrameKind kind = FrameKind::request;
  std::uint16_t status = 0;
  std::uint64_t id = 0;
  std::uint32_t meta_size = 0;
  std::uint64_t body_size = 0;
};

class FramingError : public std::runtime_error
{
public:
  using std::runtime_error::runtime_error;
};

std::array<char, k_frame_header_size> encode_header(const FrameHeader& header);

// Checks the magic, the kind and the sizes (metadata up to k_max_meta_size, a response's up
// to k_max_response_meta_size, body up to `max_body`); throws FramingError naming what is
// wrong.
FrameHeader decode_header(const std::array<char, k_frame_header_size>& bytes, std::uint64_t max_body);

// A request's metadata and its inverse (a content type or accept holds no newline: HTTP
// field values cannot).
std::string request_meta(std::string_view content_type, std::string_view accept);

// Whether an answer with this status may carry a body (and so be sent as a worker's
// answer): 200-599 except 204 and 304. 1xx, 204 and 304 never have one (RFC 9110).
bool response_status_allowed(unsigned status);

const char* to_string(FrameKind kind);

} // namespace serve
