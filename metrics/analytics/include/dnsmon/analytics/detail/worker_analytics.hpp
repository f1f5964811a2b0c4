// What a worker's WorkerCounters holds beyond its plain counters: the query matcher and the
// sliding-window analytics, which the exporter's collector reads at scrape time.
//
// Thread-safety: as WorkerCounters: the owning worker writes, readers use the stats() and
//   published snapshots. Allocation: the constructor allocates every table.
#pragma once

#include <cstdint>
#include <memory>

#include "dnsmon/analytics.hpp"
#include "dnsmon/analytics/detail/matcher.hpp"
#include "dnsmon/analytics/detail/windows.hpp"
#include "dnsmon/domains.hpp"

namespace dnsmon {

struct WorkerCounters::Analytics {
  // book: where a reload publishes new server addresses (null: the options' for good).
  Analytics(const MetricsOptions& o, SuffixList list, std::uint64_t hash_seed,
            const ServerAddressBook* book = nullptr);

  detail::QueryMatcher matcher;
  ServerAddresses server_addresses;  // this worker's copy, read on every message
  const ServerAddressBook* address_book;
  std::uint64_t address_generation = 0;               // of server_addresses in the book
  std::unique_ptr<detail::TrafficAnalytics> traffic;  // null when disabled
  detail::NameKey name;                               // scratch: the lower-cased qname
};

}  // namespace dnsmon
