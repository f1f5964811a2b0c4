// The answers of a DNS response as ldns decodes them (ldns_wire2pkt, the full message built), and
// their comparison with what the parser's fast path put in DnsMessage::answers. Shared by the
// parser's differential test and the dns_answers fuzzer. Links ldns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
// Before ldns, whose common.h otherwise defines true and false as ints.
#include <stdbool.h>  // NOLINT(modernize-deprecated-headers)
#include <string>
#include <vector>

#include <ldns/ldns.h>

#include "dnsmon/parser.hpp"

namespace dnsmon::test {

struct ReferenceAnswers {
  bool accepted = false;                 // ldns_wire2pkt decoded the message
  bool response = false;                 // QR=1
  std::vector<AnswerAddress> addresses;  // at most DnsAnswers::kMaxAddresses
  std::uint16_t qtype_answers = 0;
  std::uint16_t cnames = 0;
  bool soa = false;
  std::uint32_t soa_ttl = 0, soa_minimum = 0;
};

namespace reference_detail {

inline bool same_owner(const ldns_rr* rr, const ldns_rdf* name) {
  return ldns_dname_compare(ldns_rr_owner(rr), name) == 0;
}

}  // namespace reference_detail

// Decodes the answers of `message` with ldns: A/AAAA answer RRs with their address, the CNAME chain
// from the question name (the first CNAME owned by each name in turn, at most
// DnsAnswers::kMaxCnameHops), the RRs of the asked type owned by its end, and the first complete
// SOA of the authority section.
inline ReferenceAnswers reference_answers(std::span<const std::byte> message) {
  ReferenceAnswers out;
  ldns_pkt* pkt = nullptr;
  const auto* wire = reinterpret_cast<const std::uint8_t*>(message.data());  // NOLINT
  if (ldns_wire2pkt(&pkt, wire, message.size()) != LDNS_STATUS_OK) {
    return out;
  }
  out.accepted = true;
  out.response = ldns_pkt_qr(pkt);
  const ldns_rr_list* answer = ldns_pkt_answer(pkt);
  const std::size_t n = ldns_rr_list_rr_count(answer);
  for (std::size_t i = 0; i < n; ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(answer, i);
    const ldns_rr_type type = ldns_rr_get_type(rr);
    if (type == LDNS_RR_TYPE_CNAME) {
      ++out.cnames;
    }
    if ((type == LDNS_RR_TYPE_A || type == LDNS_RR_TYPE_AAAA) && ldns_rr_rd_count(rr) > 0 &&
        out.addresses.size() < DnsAnswers::kMaxAddresses) {
      const ldns_rdf* rdf = ldns_rr_rdf(rr, 0);
      AnswerAddress a;
      a.addr.family = type == LDNS_RR_TYPE_A ? 4 : 6;
      std::memcpy(a.addr.bytes.data(), ldns_rdf_data(rdf), ldns_rdf_size(rdf));
      a.ttl = ldns_rr_ttl(rr);
      out.addresses.push_back(a);
    }
  }
  const ldns_rr_list* question = ldns_pkt_question(pkt);
  if (ldns_rr_list_rr_count(question) > 0) {
    const ldns_rr* q = ldns_rr_list_rr(question, 0);
    const ldns_rr_type qtype = ldns_rr_get_type(q);
    const ldns_rdf* target = ldns_rr_owner(q);
    if (qtype != LDNS_RR_TYPE_CNAME && qtype != LDNS_RR_TYPE_ANY) {
      for (unsigned hop = 0; hop < DnsAnswers::kMaxCnameHops; ++hop) {
        const ldns_rdf* next = nullptr;
        for (std::size_t i = 0; i < n && next == nullptr; ++i) {
          const ldns_rr* rr = ldns_rr_list_rr(answer, i);
          if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && ldns_rr_rd_count(rr) > 0 &&
              reference_detail::same_owner(rr, target)) {
            next = ldns_rr_rdf(rr, 0);
          }
        }
        if (next == nullptr) {
          break;
        }
        target = next;
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      const ldns_rr* rr = ldns_rr_list_rr(answer, i);
      if ((qtype == LDNS_RR_TYPE_ANY || ldns_rr_get_type(rr) == qtype) &&
          reference_detail::same_owner(rr, target)) {
        ++out.qtype_answers;
      }
    }
  }
  const ldns_rr_list* authority = ldns_pkt_authority(pkt);
  for (std::size_t i = 0; i < ldns_rr_list_rr_count(authority); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(authority, i);
    if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && ldns_rr_rd_count(rr) >= 7) {
      out.soa = true;
      out.soa_ttl = ldns_rr_ttl(rr);
      out.soa_minimum = ldns_rdf2native_int32(ldns_rr_rdf(rr, 6));
      break;
    }
  }
  ldns_pkt_free(pkt);
  return out;
}

// What differs between the fast path's answers (message decoded by Parser::parse_dns with status
// Ok or not) and ldns' for the same bytes; empty when they agree. A message ldns refuses must
// yield no records; a query none.
inline std::string compare_answers(const DnsMessage& m, bool parsed_ok,
                                   const ReferenceAnswers& ref) {
  const DnsAnswers& a = m.answers;
  const bool empty =
      !a.decoded && a.address_count == 0 && a.qtype_answers == 0 && a.cnames == 0 && !a.soa;
  if (!parsed_ok || !ref.accepted || !ref.response) {
    if (!empty) {
      return !ref.accepted ? "ldns refuses the message, the fast path yields records"
                           : "not a decoded response, the fast path yields records";
    }
    if (parsed_ok && ref.accepted && m.qr != ref.response) {
      return "QR differs";
    }
    if (!parsed_ok && ref.accepted) {
      return "ldns decodes a message the fast path refuses";
    }
    return {};
  }
  if (!a.decoded) {
    return "ldns decodes the response, the fast path does not";
  }
  std::string why;
  if (a.address_count != ref.addresses.size()) {
    why += "address count " + std::to_string(a.address_count) + " vs " +
           std::to_string(ref.addresses.size()) + "; ";
  } else {
    for (std::size_t i = 0; i < ref.addresses.size(); ++i) {
      const AnswerAddress& x = a.addresses[i];
      const AnswerAddress& y = ref.addresses[i];
      const std::size_t len = y.addr.family == 4 ? 4 : 16;
      if (x.addr.family != y.addr.family || x.ttl != y.ttl ||
          std::memcmp(x.addr.bytes.data(), y.addr.bytes.data(), len) != 0) {
        why += "address " + std::to_string(i) + " differs; ";
      }
    }
  }
  if (a.qtype_answers != ref.qtype_answers) {
    why += "qtype_answers " + std::to_string(a.qtype_answers) + " vs " +
           std::to_string(ref.qtype_answers) + "; ";
  }
  if (a.cnames != ref.cnames) {
    why += "cnames " + std::to_string(a.cnames) + " vs " + std::to_string(ref.cnames) + "; ";
  }
  if (a.soa != ref.soa ||
      (ref.soa && (a.soa_ttl != ref.soa_ttl || a.soa_minimum != ref.soa_minimum))) {
    why += "soa " + std::to_string(static_cast<int>(a.soa)) + "/" + std::to_string(a.soa_ttl) +
           "/" + std::to_string(a.soa_minimum) + " vs " +
           std::to_string(static_cast<int>(ref.soa)) + "/" + std::to_string(ref.soa_ttl) + "/" +
           std::to_string(ref.soa_minimum) + "; ";
  }
  return why;
}

}  // namespace dnsmon::test
