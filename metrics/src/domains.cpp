#include "domains.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cstring>
#include <fstream>
#include <new>
#include <stdexcept>
#include <type_traits>

#include <libpsl.h>

#include "sketches.hpp"

namespace dnsmon::detail {

namespace {

// Start of the last `labels` labels of name (0 if it has no more), skipping escaped dots.
std::size_t tail_start(std::string_view name, std::size_t labels) noexcept {
  std::size_t seen = 0;
  for (std::size_t i = name.size(); i-- > 0;) {
    if (name[i] != '.') {
      continue;
    }
    std::size_t backslashes = 0;  // "\." is a dot inside a label, "\\." is a label end
    for (std::size_t j = i; j-- > 0 && name[j] == '\\';) {
      ++backslashes;
    }
    if (backslashes % 2 == 0 && ++seen == labels) {
      return i + 1;
    }
  }
  return 0;
}

}  // namespace

PublicSuffixList::PublicSuffixList(psl_ctx_st* ctx, std::string description, bool owned)
    : ctx_(ctx), description_(std::move(description)), owned_(owned) {
}

PublicSuffixList::~PublicSuffixList() {
  if (owned_) {
    psl_free(ctx_);
  }
}

std::shared_ptr<const PublicSuffixList> PublicSuffixList::load(const std::string& path) {
  const std::string file = !path.empty()                       ? path
                           : std::ifstream(kSystemList).good() ? std::string(kSystemList)
                                                               : std::string();
  if (!file.empty()) {
    // From the text even when libpsl has a compiled copy of the same list (Debian's
    // public_suffix_list.dafsa loads in 0.5 ms where the text takes 12 ms): a lookup in the
    // compiled form costs about three times as many instructions (4,500 against 1,500), which a
    // replay of a million queries with twenty thousand domains pays back several times over.
    psl_ctx_t* ctx = psl_load_file(file.c_str());
    if (ctx == nullptr) {
      throw std::runtime_error("cannot load the public suffix list " + file +
                               ": missing, unreadable or not a list");
    }
    std::shared_ptr<PublicSuffixList> list(new PublicSuffixList(ctx, file, true));
    list->read_rules(file);
    return list;
  }
  // psl_latest() picks the newer of the distribution's file and the built-in copy.
  if (psl_ctx_t* ctx = psl_latest(nullptr); ctx != nullptr) {
    const char* dist = psl_dist_filename();
    return std::shared_ptr<const PublicSuffixList>(new PublicSuffixList(
        ctx, dist != nullptr && *dist != '\0' ? std::string(dist) : "libpsl built-in list", true));
  }
  const psl_ctx_t* builtin = psl_builtin();
  if (builtin == nullptr) {
    throw std::runtime_error(
        "no public suffix list: libpsl has no built-in list and the system has none (install "
        "the publicsuffix package or set analytics.public_suffix_list)");
  }
  return std::shared_ptr<const PublicSuffixList>(
      new PublicSuffixList(const_cast<psl_ctx_t*>(builtin), "libpsl built-in list", false));
}

void PublicSuffixList::read_rules(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  if (!std::getline(in, line) || line.rfind(".DAFSA@PSL_", 0) == 0) {
    return;  // a DAFSA: libpsl reads it, but its rules are not text
  }
  do {
    if (line.empty() || line.rfind("//", 0) == 0) {
      continue;
    }
    std::string rule = line.substr(0, line.find_first_of(" \t\r"));
    if (!rule.empty() && rule.front() == '!') {
      rule.erase(0, 1);
    }
    for (std::size_t dot = rule.find('.'); dot != std::string::npos;
         dot = rule.find('.', dot + 1)) {
      above_rules_.insert(rule.substr(dot + 1));
    }
  } while (std::getline(in, line));
  rules_known_ = true;
}

bool PublicSuffixList::stable(std::string_view domain) const {
  return rules_known_ && above_rules_.find(domain) == above_rules_.end();
}

std::size_t PublicSuffixList::registrable_length(std::string_view name,
                                                 bool* public_suffix) const noexcept {
  std::array<char, 256> buffer{};
  if (public_suffix != nullptr) {
    *public_suffix = true;
  }
  if (name.empty() || name.size() >= buffer.size()) {
    return name.size();
  }
  std::memcpy(buffer.data(), name.data(), name.size());
  const char* domain = psl_registrable_domain(ctx_, buffer.data());
  if (domain == nullptr) {
    return name.size();  // the name is a public suffix itself
  }
  if (public_suffix != nullptr) {
    *public_suffix = false;
  }
  return name.size() - static_cast<std::size_t>(domain - buffer.data());
}

DomainCache::DomainCache(std::shared_ptr<const PublicSuffixList> list, std::size_t entries,
                         std::uint64_t seed)
    : list_(std::move(list)),
      entries_(zeroed_table(table_entries(entries))),
      stable_(zeroed_table(table_entries(entries))),
      seed_(seed),
      mask_(table_entries(entries) - 1) {
}

DomainCache::Table DomainCache::zeroed_table(std::size_t entries) {
  static_assert(std::is_trivially_copyable_v<Entry>);
  Table table(static_cast<Entry*>(std::calloc(entries, sizeof(Entry))));
  if (!table) {
    throw std::bad_alloc();
  }
  return table;
}

std::size_t DomainCache::planned_bytes(std::size_t entries) noexcept {
  return sizeof(DomainCache) + 2 * table_entries(entries) * sizeof(Entry);
}

const DomainCache::Entry* DomainCache::find(const Entry* table, std::uint64_t hash,
                                            std::size_t tail_length) const noexcept {
  const std::size_t set = hash & mask_ & ~(kWays - 1);
  for (std::size_t w = 0; w < kWays; ++w) {
    const Entry& e = table[set + w];
    if (e.tail_length == tail_length && e.hash == hash) {
      return &e;
    }
    if (e.tail_length == 0) {
      break;  // ways fill in order and are never emptied: none further on
    }
  }
  return nullptr;
}

void DomainCache::insert(Entry* table, const Entry& entry) noexcept {
  const std::size_t set = entry.hash & mask_ & ~(kWays - 1);
  for (std::size_t w = 0; w < kWays; ++w) {
    if (table[set + w].tail_length == 0) {
      table[set + w] = entry;
      return;
    }
  }
  // A full set: the victim is picked by the two top hash bits, which the set index does not use,
  // so it is not always the same way.
  static_assert(kWays == 4, "two hash bits pick the way");
  table[set + (entry.hash >> 62U)] = entry;
}

DomainCache::Hint DomainCache::prepare(std::string_view name) const noexcept {
  Hint hint;
  hint.name_size = name.size();
  if (name.empty() || name == "." || name.size() > 0xffff ||
      name.find('\\') != std::string_view::npos) {
    return hint;
  }
  hint.lookup = true;
  for (std::size_t i = name.size(); i-- > 0 && hint.labels < Hint::kTail;) {
    if (name[i] == '.') {
      hint.starts[hint.labels++] = static_cast<std::uint16_t>(i + 1);
    }
  }
  if (hint.labels < Hint::kTail) {
    hint.starts[hint.labels++] = 0;  // the whole name
  }
  if (hint.labels >= 2) {
    hint.two_label_hash = hash_bytes(name.substr(hint.starts[1]), seed_);
    __builtin_prefetch(&stable_[hint.two_label_hash & mask_ & ~(kWays - 1)]);
  }
  return hint;
}

std::string_view DomainCache::registrable(std::string_view name, const Hint& hint) noexcept {
  assert(hint.name_size == name.size() && "the hint comes from prepare(name)");
  if (!hint.lookup) {
    if (name.empty() || name == ".") {
      return name;
    }
    return name.substr(tail_start(name, 2));  // escaped (or over 64 KiB, which no name is)
  }
  const auto& starts = hint.starts;
  const std::size_t labels = hint.labels;
  for (std::size_t k = 1; k < labels; ++k) {  // the last 2, 3, ... labels
    const std::string_view tail = name.substr(starts[k]);
    const std::uint64_t h = k == 1 ? hint.two_label_hash : hash_bytes(tail, seed_);
    if (find(stable_.get(), h, tail.size()) != nullptr) {
      ++hits_;
      return tail;
    }
  }
  const std::string_view tail = name.substr(starts[labels - 1]);
  const std::uint64_t h = hash_bytes(tail, seed_);
  if (const Entry* e = find(entries_.get(), h, tail.size())) {
    ++hits_;
    return name.substr(name.size() - e->domain_length);
  }
  ++misses_;
  bool public_suffix = false;
  const std::size_t length = list_->registrable_length(tail, &public_suffix);
  const std::string_view domain = name.substr(name.size() - length);
  if (!public_suffix && list_->stable(domain)) {
    const std::uint64_t dh = hash_bytes(domain, seed_);
    insert(stable_.get(), Entry{dh, static_cast<std::uint16_t>(domain.size()),
                                static_cast<std::uint16_t>(domain.size())});
  } else {
    insert(entries_.get(),
           Entry{h, static_cast<std::uint16_t>(tail.size()), static_cast<std::uint16_t>(length)});
  }
  return domain;
}

}  // namespace dnsmon::detail
