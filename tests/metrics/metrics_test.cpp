#include "dnsmon/metrics.hpp"

#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <netinet/in.h>
#include <random>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>

namespace {

using dnsmon::DnsMessage;
using dnsmon::MetricsHub;
using dnsmon::ParseStatus;

MetricsHub make_hub() {
  return MetricsHub(dnsmon::BuildInfo{"1.2.3", "ldns-x", "pcap-y"});
}

// A plain HTTP/1.0 GET over loopback; returns the whole response.
std::string http_get(std::uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);  // NOLINT
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  std::string out;
  std::array<char, 4096> buf{};
  for (;;) {
    const auto n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
      break;
    }
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

TEST_CASE("qtypes and rcodes map to a fixed label set with OTHER", "[metrics]") {
  CHECK(dnsmon::qtype_slot_name(dnsmon::qtype_slot(1)) == "A");
  CHECK(dnsmon::qtype_slot_name(dnsmon::qtype_slot(28)) == "AAAA");
  CHECK(dnsmon::qtype_slot_name(dnsmon::qtype_slot(65)) == "HTTPS");
  CHECK(dnsmon::qtype_slot_name(dnsmon::qtype_slot(99)) == "OTHER");
  CHECK(dnsmon::qtype_slot_name(dnsmon::qtype_slot(65535)) == "OTHER");
  CHECK(dnsmon::rcode_slot_name(dnsmon::rcode_slot(3)) == "NXDOMAIN");
  CHECK(dnsmon::rcode_slot_name(dnsmon::rcode_slot(16)) == "BADVERS");
  CHECK(dnsmon::rcode_slot_name(dnsmon::rcode_slot(4095)) == "OTHER");
}

TEST_CASE("worker counters are summed into the exposition", "[metrics]") {
  auto hub = make_hub();
  auto& w1 = hub.add_worker();
  auto& w2 = hub.add_worker();
  DnsMessage q;
  q.qtype = 28;
  q.size = 40;
  DnsMessage r;
  r.qr = true;
  r.rcode = 3;
  r.size = 100;
  w1.record_frame(80, ParseStatus::Ok);
  w1.record_message(q);
  w2.record_frame(80, ParseStatus::Ok);
  w2.record_message(q);
  w2.record_frame(140, ParseStatus::Ok);
  w2.record_message(r);
  w2.record_frame(60, ParseStatus::Malformed);
  const auto text = hub.render_text();
  CHECK_THAT(text, Catch::Contains("dnsmon_queries_total{qtype=\"AAAA\"} 2"));
  CHECK_THAT(text, Catch::Contains("dnsmon_queries_total{qtype=\"OTHER\"} 0"));
  CHECK_THAT(text, Catch::Contains("dnsmon_responses_total{rcode=\"NXDOMAIN\"} 1"));
  CHECK_THAT(text, Catch::Contains("dnsmon_packets_total{result=\"ok\"} 3"));
  CHECK_THAT(text, Catch::Contains("dnsmon_packets_total{result=\"malformed\"} 1"));
  CHECK_THAT(text, Catch::Contains("dnsmon_packet_bytes_total 360"));
  CHECK_THAT(text, Catch::Contains("dnsmon_build_info{version=\"1.2.3\""));
  CHECK_THAT(text, Catch::Contains("# TYPE dnsmon_queries_total counter"));
}

TEST_CASE("capture sources and rings are read at scrape time", "[metrics]") {
  auto hub = make_hub();
  std::uint64_t drops = 5;
  hub.set_source_reader([&] {
    dnsmon::SourceSnapshot s;
    s.name = "eth0";
    s.up = true;
    s.received = 10;
    s.ring_dropped = drops;
    return std::vector<dnsmon::SourceSnapshot>{s};
  });
  hub.set_ring_reader([] { return std::vector<dnsmon::RingSnapshot>{{3, 8192, 416, 4198400}}; });
  auto text = hub.render_text();
  CHECK_THAT(text,
             Catch::Contains("dnsmon_capture_dropped_total{source=\"eth0\",where=\"ring\"} 5"));
  CHECK_THAT(text, Catch::Contains("dnsmon_capture_up{source=\"eth0\"} 1"));
  CHECK_THAT(text, Catch::Contains("dnsmon_ring_occupancy_slots{worker=\"0\"} 3"));
  CHECK_THAT(text, Catch::Contains("dnsmon_ring_used_bytes{worker=\"0\"} 416"));
  CHECK_THAT(text, Catch::Contains("dnsmon_ring_capacity_bytes{worker=\"0\"} 4198400"));
  drops = 7;
  text = hub.render_text();
  CHECK_THAT(text,
             Catch::Contains("dnsmon_capture_dropped_total{source=\"eth0\",where=\"ring\"} 7"));
}

TEST_CASE("the exporter serves /metrics on loopback and refuses a taken port", "[metrics]") {
  auto hub = make_hub();
  auto& w = hub.add_worker();
  w.record_frame(60, ParseStatus::NotDns);
  dnsmon::Exporter exporter(hub, "127.0.0.1:0");
  const auto port = exporter.port();
  REQUIRE(port != 0);
  const auto response = http_get(port, "/metrics");
  CHECK_THAT(response, Catch::StartsWith("HTTP/1.1 200"));
  CHECK_THAT(response, Catch::Contains("dnsmon_packets_total{result=\"not_dns\"} 1"));
  CHECK_THROWS_WITH(dnsmon::Exporter(hub, "127.0.0.1:" + std::to_string(port)),
                    Catch::Contains("cannot serve metrics on 127.0.0.1:" + std::to_string(port)));
}

TEST_CASE("the message log writes one JSON object per line", "[metrics]") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  DnsMessage m;
  m.ts_ns = 1'500'000'000'000'000'123;
  m.src.family = m.dst.family = 4;
  m.src.bytes = {192, 0, 2, 1};
  m.dst.bytes = {192, 0, 2, 53};
  m.sport = 5353;
  m.dport = 53;
  m.id = 7;
  m.has_question = true;
  const std::string name = "quote\"and\\.x";
  std::copy(name.begin(), name.end(), m.qname.text.begin());
  m.qname.length = static_cast<std::uint16_t>(name.size());
  m.qtype = 16;
  m.qclass = 1;
  m.edns.present = true;
  m.edns.udp_size = 1232;
  {
    dnsmon::MessageWriter writer(fileno(f));
    writer.write(m);
  }
  std::rewind(f);
  std::array<char, 2048> line{};
  REQUIRE(std::fgets(line.data(), line.size(), f) != nullptr);
  std::fclose(f);
  const std::string s = line.data();
  CHECK_THAT(
      s, Catch::StartsWith(R"({"ts":1500000000.000000123,"src":"192.0.2.1","dst":"192.0.2.53")"));
  CHECK_THAT(s, Catch::Contains(R"("qname":"quote\"and\\.x","qtype":16)"));
  CHECK_THAT(s, Catch::Contains(R"("edns":{"udp_size":1232,"version":0,"do":false)"));
  CHECK_THAT(s, Catch::EndsWith("}\n"));
  CHECK_THAT(s, !Catch::Contains("latency"));  // queries carry none
}

TEST_CASE("responses in the message log carry the matched query's latency", "[metrics]") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  DnsMessage m;
  m.qr = true;
  m.src.family = m.dst.family = 4;
  {
    dnsmon::MessageWriter writer(fileno(f));
    writer.write(m, 1'234'567);
    writer.write(m, 2'000'000'001);
    writer.write(m);
  }
  std::rewind(f);
  std::array<char, 2048> line{};
  std::vector<std::string> lines;
  while (std::fgets(line.data(), line.size(), f) != nullptr) {
    lines.emplace_back(line.data());
  }
  std::fclose(f);
  REQUIRE(lines.size() == 3);
  CHECK_THAT(lines[0], Catch::EndsWith(R"("latency":0.001234567}
)"));
  CHECK_THAT(lines[1], Catch::EndsWith(R"("latency":2.000000001}
)"));
  CHECK_THAT(lines[2], Catch::EndsWith(R"("latency":null}
)"));
}

TEST_CASE("a failed write ends the message log and counts every line not written", "[metrics]") {
  DnsMessage m;
  m.src.family = m.dst.family = 4;
  SECTION("a full device") {
    const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);  // NOLINT: POSIX varargs
    REQUIRE(fd >= 0);
    {
      dnsmon::MessageWriter writer(fd);
      for (int i = 0; i < 3; ++i) {
        writer.write(m);
      }
      CHECK(writer.error() == 0);  // still buffered
      CHECK_FALSE(writer.flush());
      CHECK(writer.error() == ENOSPC);
      CHECK(writer.lost_lines() == 3);
      writer.write(m);  // after the failure: counted, not tried
      CHECK(writer.lost_lines() == 4);
      CHECK(writer.error() == ENOSPC);
    }
    ::close(fd);
  }
  SECTION("a reader that went away") {
    std::array<int, 2> fds{};
    REQUIRE(::pipe(fds.data()) == 0);
    ::close(fds[0]);
    const auto old_handler = std::signal(SIGPIPE, SIG_IGN);
    {
      dnsmon::MessageWriter writer(fds[1]);
      // More than one buffer's worth: the first full buffer is written from write() itself.
      std::uint64_t written = 0;
      while (writer.error() == 0 && written < 100'000) {
        writer.write(m);
        ++written;
      }
      CHECK(writer.error() == EPIPE);
      writer.flush();
      CHECK(writer.lost_lines() == written);
    }
    std::signal(SIGPIPE, old_handler);
    ::close(fds[1]);
  }
}

TEST_CASE("the message log writes every line whole, across buffer flushes", "[metrics]") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  DnsMessage m;
  m.src.family = m.dst.family = 4;
  constexpr int kLines = 5000;  // several buffers' worth
  {
    dnsmon::MessageWriter writer(fileno(f));
    for (int i = 0; i < kLines; ++i) {
      m.id = static_cast<std::uint16_t>(i);
      writer.write(m);
    }
    CHECK(writer.flush());
    CHECK(writer.lost_lines() == 0);
  }
  std::rewind(f);
  std::array<char, 2048> line{};
  int n = 0;
  while (std::fgets(line.data(), line.size(), f) != nullptr) {
    CHECK_THAT(std::string(line.data()),
               Catch::Contains(R"("id":)" + std::to_string(n) + ",") && Catch::EndsWith("}\n"));
    ++n;
  }
  std::fclose(f);
  CHECK(n == kLines);
}

TEST_CASE("NODATA responses count apart, by question type, and stay in the rcode family",
          "[metrics]") {
  auto hub = make_hub();
  auto& w = hub.add_worker();
  DnsMessage r;
  r.qr = true;
  r.has_question = true;
  r.qdcount = 1;
  r.qtype = 28;  // AAAA
  r.answers.decoded = true;
  r.size = 100;
  DnsMessage with_data = r;
  with_data.answers.qtype_answers = 1;
  DnsMessage nxdomain = r;
  nxdomain.rcode = 3;
  DnsMessage truncated = r;
  truncated.flags = dnsmon::kFlagTc;
  DnsMessage undecoded = r;
  undecoded.answers.decoded = false;
  DnsMessage a_nodata = r;
  a_nodata.qtype = 1;
  DnsMessage query = r;
  query.qr = false;
  for (const DnsMessage* m :
       {&r, &r, &with_data, &nxdomain, &truncated, &undecoded, &a_nodata, &query}) {
    w.record_message(*m);
  }
  const auto text = hub.render_text();
  CHECK_THAT(text, Catch::Contains("dnsmon_responses_nodata_total{qtype=\"AAAA\"} 2\n"));
  CHECK_THAT(text, Catch::Contains("dnsmon_responses_nodata_total{qtype=\"A\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("dnsmon_responses_nodata_total{qtype=\"MX\"} 0\n"));
  // Every response is in the rcode family once, NODATA ones under NOERROR.
  CHECK_THAT(text, Catch::Contains("dnsmon_responses_total{rcode=\"NOERROR\"} 6\n"));
  CHECK_THAT(text, Catch::Contains("dnsmon_responses_total{rcode=\"NXDOMAIN\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("# TYPE dnsmon_responses_nodata_total counter"));
}

TEST_CASE("breakdowns and histograms count each message once in the right series", "[metrics]") {
  auto hub = make_hub();
  auto& w = hub.add_worker();
  DnsMessage q;
  q.has_question = true;
  q.qname.length = 15;
  q.size = 100;
  q.edns.present = true;
  q.edns.do_bit = true;
  q.edns.udp_size = 1232;
  q.src.family = 6;
  DnsMessage r = q;
  r.qr = true;
  r.rcode = 2;
  r.qtype = 1;
  r.flags = dnsmon::kFlagTc;
  r.size = 512;
  r.src.family = 4;
  w.record_message(q);
  w.record_message(r);
  const auto text = hub.render_text();
  CHECK_THAT(text, Catch::Contains("dnsmon_query_edns_total{edns=\"do\"} 1"));
  CHECK_THAT(text, Catch::Contains("dnsmon_query_edns_udp_size_total{size=\"1232\"} 1"));
  CHECK_THAT(text, Catch::Contains("dnsmon_truncated_responses_total 1"));
  CHECK_THAT(text, Catch::Contains(
                       "dnsmon_responses_by_qtype_total{qtype=\"A\",rcode_class=\"servfail\"} 1"));
  CHECK_THAT(text, Catch::Contains(
                       "dnsmon_messages_by_family_total{family=\"ipv6\",transport=\"udp\"} 1"));
  // 512 is on a bound: it counts in that bucket (le semantics), 100 in the 128 one.
  CHECK_THAT(text, Catch::Contains(
                       "dnsmon_message_size_bytes_bucket{direction=\"response\",le=\"512\"} 1"));
  CHECK_THAT(text, Catch::Contains(
                       "dnsmon_message_size_bytes_bucket{direction=\"response\",le=\"256\"} 0"));
  CHECK_THAT(text,
             Catch::Contains("dnsmon_message_size_bytes_bucket{direction=\"query\",le=\"128\"} 1"));
  CHECK_THAT(text, Catch::Contains("dnsmon_qname_length_bytes_bucket{le=\"16\"} 2"));
  CHECK_THAT(text, Catch::Contains("dnsmon_qname_length_bytes_count 2"));
}

TEST_CASE("the OpenMetrics snapshot stamps every sample and follows the format's names",
          "[metrics]") {
  auto hub = make_hub();
  auto& w = hub.add_worker();
  DnsMessage q;
  q.has_question = true;
  q.qname.length = 15;
  q.size = 100;
  q.src.family = 4;
  w.record_message(q);
  const auto text = hub.render_openmetrics(1462366800);
  // A counter family is named without _total, its samples with it.
  CHECK_THAT(text, Catch::Contains("# TYPE dnsmon_truncated_responses counter\n"));
  CHECK_THAT(text, Catch::Contains("\ndnsmon_truncated_responses_total 0 1462366800\n"));
  CHECK_THAT(text, Catch::Contains("# TYPE dnsmon_qname_length_bytes histogram\n"));
  CHECK_THAT(text, Catch::Contains("\ndnsmon_qname_length_bytes_bucket{le=\"16\"} 1 1462366800\n"));
  CHECK_THAT(text,
             Catch::Contains("\ndnsmon_qname_length_bytes_bucket{le=\"+Inf\"} 1 1462366800\n"));
  CHECK_THAT(text, Catch::Contains("\ndnsmon_qname_length_bytes_count 1 1462366800\n"));
  CHECK_THAT(text, Catch::EndsWith("\n# EOF\n"));
  CHECK(text.find("_total counter") == std::string::npos);
  // Every sample line carries the timestamp; a fractional one is written as it is.
  std::istringstream lines(hub.render_openmetrics(1462366800.25));
  std::string line;
  int samples = 0;
  while (std::getline(lines, line)) {
    if (!line.empty() && line[0] != '#') {
      ++samples;
      CHECK_THAT(line, Catch::EndsWith(" 1462366800.25"));
    }
  }
  CHECK(samples > 50);
}

TEST_CASE("a query and its response are matched and their latency exported", "[metrics]") {
  auto hub = make_hub();
  auto& w = hub.add_worker();
  DnsMessage q;
  q.ts_ns = 1'000'000'000;
  q.src.family = q.dst.family = 4;
  q.src.bytes = {192, 0, 2, 1};
  q.dst.bytes = {192, 0, 2, 53};
  q.sport = 40000;
  q.dport = 53;
  q.id = 9;
  q.has_question = true;
  q.qtype = 1;
  q.qclass = 1;
  DnsMessage r = q;
  r.qr = true;
  r.ts_ns = q.ts_ns + 3'000'000;  // 3 ms later
  std::swap(r.src, r.dst);
  std::swap(r.sport, r.dport);
  w.record_message(q);
  w.record_message(r);
  const auto text = hub.render_text();
  CHECK_THAT(text,
             Catch::Contains("dnsmon_query_matching_total{leg=\"unknown\",result=\"matched\"} 1"));
  CHECK_THAT(text, Catch::Contains(
                       "dnsmon_response_latency_seconds_bucket{leg=\"unknown\",transport=\"udp\","
                       "rcode_class=\"noerror\",le=\"0.002\"} 0"));
  CHECK_THAT(text, Catch::Contains(
                       "dnsmon_response_latency_seconds_bucket{leg=\"unknown\",transport=\"udp\","
                       "rcode_class=\"noerror\",le=\"0.003\"} 1"));
}

TEST_CASE("a reload's server addresses decide the leg from the worker's next message",
          "[metrics][legs]") {
  auto hub = make_hub();
  auto& w = hub.add_worker();
  const auto exchange = [&w](std::int64_t ts_ns, std::uint16_t id) {
    DnsMessage q;
    q.ts_ns = ts_ns;
    q.src.family = q.dst.family = 4;
    q.src.bytes = {192, 0, 2, 1};
    q.dst.bytes = {192, 0, 2, 53};
    q.sport = 40000;
    q.dport = 53;
    q.id = id;
    q.has_question = true;
    q.qtype = 1;
    q.qclass = 1;
    DnsMessage r = q;
    r.qr = true;
    r.ts_ns = q.ts_ns + 3'000'000;
    std::swap(r.src, r.dst);
    std::swap(r.sport, r.dport);
    w.record_message(q);
    w.record_message(r);
  };
  exchange(1'000'000'000, 1);
  std::string text = hub.render_text();
  CHECK_THAT(text,
             Catch::Contains("dnsmon_query_matching_total{leg=\"unknown\",result=\"matched\"} 1"));
  CHECK_THAT(text, !Catch::Contains("leg=\"client\""));  // no server address: no client leg

  dnsmon::ServerAddresses server;
  REQUIRE(server.add("192.0.2.53"));
  hub.set_server_addresses(server);  // a new address of the host, read again by a reload
  exchange(2'000'000'000, 2);
  text = hub.render_text();
  CHECK_THAT(text,
             Catch::Contains("dnsmon_query_matching_total{leg=\"client\",result=\"matched\"} 1"));
  CHECK_THAT(text,
             Catch::Contains("dnsmon_query_matching_total{leg=\"unknown\",result=\"matched\"} 1"));
}

namespace {

DnsMessage query(std::int64_t ts, const std::string& name, std::uint8_t client_byte) {
  DnsMessage q;
  q.ts_ns = ts;
  q.src.family = q.dst.family = 4;
  q.src.bytes = {198, 51, 100, client_byte};
  q.dst.bytes = {192, 0, 2, 53};
  q.sport = 40000;
  q.dport = 53;
  q.has_question = true;
  q.qtype = 1;
  q.qclass = 1;
  std::copy(name.begin(), name.end(), q.qname.text.begin());
  q.qname.length = static_cast<std::uint16_t>(name.size());
  return q;
}

std::vector<std::string> series(const std::string& text, const std::string& prefix = "") {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#' && line.rfind(prefix, 0) == 0) {
      out.push_back(line);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("top-N and distinct gauges are exported per window", "[metrics]") {
  auto hub = make_hub();
  auto& w = hub.add_worker();
  const std::int64_t t0 = 1'700'000'000'000'000'000;
  for (int i = 0; i < 30; ++i) {
    w.record_message(query(t0 + std::int64_t{i} * 1'000'000, "www.Example.com", 1));
  }
  for (int i = 0; i < 10; ++i) {
    w.record_message(query(t0 + std::int64_t{i} * 1'000'000, "mail.example.co.uk", 2));
  }
  w.record_message(query(t0, "odd\"name.example.org", 3));
  w.finish();
  const auto text = hub.render_text();
  CHECK_THAT(text, Catch::Contains(
                       R"(dnsmon_window_top_domain_queries{window="1m",domain="example.com"} 30)"));
  CHECK_THAT(text,
             Catch::Contains(
                 R"(dnsmon_window_top_domain_queries{window="1h",domain="example.co.uk"} 10)"));
  CHECK_THAT(text,
             Catch::Contains(
                 R"(dnsmon_window_top_qname_queries{window="5m",qname="www.example.com"} 30)"));
  CHECK_THAT(
      text, Catch::Contains(
                R"(dnsmon_window_top_qname_queries{window="5m",qname="odd\"name.example.org"} 1)"));
  CHECK_THAT(
      text,
      Catch::Contains(R"(dnsmon_window_top_client_queries{window="1m",client="198.51.100.1"} 30)"));
  CHECK_THAT(text, Catch::Contains(R"(dnsmon_window_distinct_clients{window="1m"} 3)"));
  CHECK_THAT(text, Catch::Contains(R"(dnsmon_window_distinct_domains{window="1m"} 3)"));
  CHECK_THAT(text, Catch::Contains(R"(dnsmon_window_messages{window="1m",table="qname"} 41)"));
  CHECK_THAT(text, Catch::Contains(R"(dnsmon_memory_bytes{table="top_qnames"})"));
}

TEST_CASE("clients can be aggregated to prefixes and pseudonymised", "[metrics]") {
  dnsmon::MetricsOptions o;
  o.analytics.client_ipv4_prefix = 24;
  {
    MetricsHub hub(dnsmon::BuildInfo{"1", "l", "p"}, o);
    auto& w = hub.add_worker();
    w.record_message(query(1'000'000'000, "a.example.com", 1));
    w.record_message(query(1'000'000'000, "a.example.com", 2));
    w.finish();
    CHECK_THAT(hub.render_text(),
               Catch::Contains(
                   R"(dnsmon_window_top_client_queries{window="1m",client="198.51.100.0/24"} 2)"));
  }
  o.analytics.pseudonymise_clients = true;
  o.analytics.pseudonymise_key = "a key of sixteen or more characters";
  std::vector<std::string> pseudonyms;
  for (int run = 0; run < 2; ++run) {
    MetricsHub hub(dnsmon::BuildInfo{"1", "l", "p"}, o);
    auto& w = hub.add_worker();
    w.record_message(query(1'000'000'000, "a.example.com", 1));
    w.finish();
    const auto lines = series(hub.render_text(), "dnsmon_window_top_client_queries{window=\"1m\"");
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Contains("client=\"anon-"));
    CHECK_THAT(lines[0], !Catch::Contains("198.51.100"));
    pseudonyms.push_back(lines[0]);
  }
  CHECK(pseudonyms[0] == pseudonyms[1]);  // the same key gives the same pseudonym across restarts
}

TEST_CASE("the exposition never holds more than the documented number of series", "[metrics]") {
  dnsmon::MetricsOptions o;
  o.analytics.top_n = 7;
  MetricsHub hub(dnsmon::BuildInfo{"1", "l", "p"}, o);
  auto& w = hub.add_worker();
  const std::size_t idle = series(hub.render_text()).size();
  // High-cardinality traffic: every name, client and rcode different, over two minutes.
  std::mt19937_64 rng(3);
  const std::int64_t t0 = 1'700'000'000'000'000'000;
  for (int i = 0; i < 100'000; ++i) {
    auto m = query(t0 + std::int64_t{i} * 1'200'000,
                   std::to_string(rng()) + ".d" + std::to_string(rng() % 5000) + ".com",
                   static_cast<std::uint8_t>(rng()));
    m.qtype = static_cast<std::uint16_t>(rng());
    m.src.bytes[2] = static_cast<std::uint8_t>(rng());
    w.record_message(m);
    auto r = m;
    r.qr = true;
    r.rcode = static_cast<std::uint16_t>(rng() % 4096);
    std::swap(r.src, r.dst);
    std::swap(r.sport, r.dport);
    w.record_message(r);
  }
  w.finish();
  const auto text = hub.render_text();
  const auto all = series(text);
  const std::size_t windows = o.analytics.windows_s.size();
  // The idle exposition already holds every fixed series; traffic adds only top-N entries:
  // 5 tables x top_n per window.
  CHECK(all.size() <= idle + windows * 5 * o.analytics.top_n);
  for (const char* family : {"dnsmon_window_top_domain_queries{window=\"1m\"",
                             "dnsmon_window_top_qname_queries{window=\"5m\"",
                             "dnsmon_window_top_client_queries{window=\"1h\"",
                             "dnsmon_window_top_nxdomain_responses{window=\"1m\"",
                             "dnsmon_window_top_servfail_responses{window=\"1m\""}) {
    CAPTURE(family);
    CHECK(series(text, family).size() == o.analytics.top_n);
  }
}
