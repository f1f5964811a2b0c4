// dnstap input: the Frame Streams protocol that DNS servers speak on a dnstap socket, and the
// dnstap messages its data frames carry (capture/dnstap/dnstap.proto).
//
// Frame Streams (https://farsightsec.github.io/fstrm/): a data frame is a 32-bit big-endian length
// and that many bytes; a length of 0 escapes a control frame, which is a 32-bit length (at most
// 512), a 32-bit type and fields of a 32-bit type, a 32-bit length and bytes (field 1: a content
// type). On a socket the protocol is bidirectional: the writer (the DNS server) sends READY with
// the content types it offers, the reader answers ACCEPT with the one it takes, the writer sends
// START, the data frames, then STOP, which the reader answers with FINISH. A writer that starts
// with START (the unidirectional form) is taken too.
//
// Both layers read untrusted input: a data frame longer than kMaxDataFrameBytes is skipped and
// counted, a control frame out of place or out of shape ends the connection, a data frame that is
// not a dnstap message dnsmon can use is counted by FrameResult. Nothing is trusted beyond what
// was checked; no input makes the reader hold more than one frame.
//
// Thread-safety: a Session belongs to one thread; decode_message() is reentrant.
// Allocation: a Session's buffer grows to the largest frame it has held (at most
//   kMaxDataFrameBytes plus what one feed() brings); decode_message() allocates the decoded
//   protobuf (libprotobuf-c) and frees it before it returns, and out.wire keeps its capacity.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "dnsmon/common/message_record.hpp"

namespace dnsmon::dnstap {

inline constexpr std::string_view kContentType = "protobuf:dnstap.Dnstap";
// A dnstap message holds at most a query and a response of 64 KiB each, and a few addresses.
inline constexpr std::size_t kMaxDataFrameBytes = std::size_t{256} << 10U;
inline constexpr std::size_t kMaxControlFrameBytes = 512;
inline constexpr std::size_t kMaxContentTypeBytes = 256;

enum class ControlType : std::uint32_t { Accept = 1, Start = 2, Stop = 3, Ready = 4, Finish = 5 };

// Appends a control frame (the escape, its length, its type and, unless empty, one content type
// field) to out.
void append_control_frame(std::vector<std::byte>& out, ControlType type,
                          std::string_view content_type = {});

// Appends a data frame (its length, then the bytes) to out.
void append_data_frame(std::vector<std::byte>& out, std::span<const std::byte> payload);

// What became of a data frame. A fixed set: each is a metric label value.
enum class FrameResult : std::uint8_t {
  Message,    // a DNS message, handed on
  Ignored,    // a well-formed dnstap frame without a DNS message to hand on (another payload type,
              // or a message without the query or response bytes its type calls for)
  Malformed,  // not a dnstap frame (protobuf, field values), or longer than kMaxDataFrameBytes
  Count
};
inline constexpr std::size_t kFrameResultCount = static_cast<std::size_t>(FrameResult::Count);
std::string_view frame_result_name(FrameResult r) noexcept;

// The DNS message of a dnstap frame, as dnsmon's pipeline takes it.
struct Message {
  std::uint32_t type = 0;  // Message.Type: odd a query, even a response
  // The query's time for a query, the response's for a response: the server's own clock, so that
  // a response's latency is the server's (its response time less its query's).
  std::int64_t ts_ns = 0;
  // The addresses, ports and transport: the source is the initiator for a query and the responder
  // for a response. An address the frame leaves out is all zeros.
  record::Header header;
  std::uint32_t socket_protocol = 0;  // SocketProtocol as sent (0 when absent)
  std::vector<std::byte> wire;        // the DNS message; keeps its capacity between frames
};

// Decodes a data frame's payload. ts_ns falls back to fallback_ts_ns when the frame has no time
// for its side. Never throws.
[[nodiscard]] FrameResult decode_message(std::span<const std::byte> payload, Message& out,
                                         std::int64_t fallback_ts_ns) noexcept;

// Receives what a Session reads, as it reads it.
class SessionSink {
 public:
  // A complete data frame, valid during the call.
  virtual void on_data(std::span<const std::byte> payload) = 0;
  // A data frame longer than kMaxDataFrameBytes, skipped.
  virtual void on_oversized() = 0;

 protected:
  SessionSink() = default;
  ~SessionSink() = default;
  SessionSink(const SessionSink&) = default;
  SessionSink& operator=(const SessionSink&) = default;
  SessionSink(SessionSink&&) = default;
  SessionSink& operator=(SessionSink&&) = default;
};

// One connection's side of Frame Streams, as the reader.
class Session {
 public:
  enum class State : std::uint8_t {
    Handshake,  // waiting for READY (or START)
    Accepted,   // ACCEPT sent, waiting for START
    Started,    // reading data frames
    Finished,   // STOP read, FINISH sent: close the connection
    Failed      // a protocol error (error() says which): close the connection
  };

  // Reads bytes from the connection: every complete frame is handled (data frames to sink), and
  // the answers to send back are appended to replies. Returns false when the connection is to be
  // closed (after sending the replies): the writer stopped, or broke the protocol.
  bool feed(std::span<const std::byte> bytes, std::vector<std::byte>& replies, SessionSink& sink);

  [[nodiscard]] State state() const noexcept { return state_; }

  // Why the session failed (a constant string), empty otherwise.
  [[nodiscard]] std::string_view error() const noexcept { return error_; }

  // Bytes received but not yet a complete frame.
  [[nodiscard]] std::size_t buffered() const noexcept { return buffer_.size(); }

 private:
  bool control(std::span<const std::byte> frame, std::vector<std::byte>& replies);
  bool fail(std::string_view why) noexcept;

  State state_ = State::Handshake;
  std::string_view error_;
  std::vector<std::byte> buffer_;
  std::size_t skip_ = 0;  // bytes still to skip of an oversized data frame
};

}  // namespace dnsmon::dnstap
