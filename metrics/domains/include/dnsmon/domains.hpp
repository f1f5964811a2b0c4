// Registrable domains ("example.co.uk" for "www.example.co.uk") by the Public Suffix List.
//
// PublicSuffixList holds the list's rules, loaded once per process and shared read-only by the
// workers: a text list in a table of its own (it loads in about a millisecond, libpsl's loader
// took 12), a compiled list (DAFSA) or libpsl's built-in copy through libpsl. A lookup walks the
// name's labels with up to a dozen table probes (libpsl: 300-1,500 ns), more than the whole
// budget of a packet, so each worker puts a DomainCache in front of it. The cache is exact, not
// a heuristic, in two tiers:
// - Stable domains. When the list's rules come as text (the system's public_suffix_list.dat),
//   the table also marks every name that has a rule strictly below it ("amazonaws.com" has
//   "s3.amazonaws.com"). A registrable domain R without one is stable: every name under R has R
//   as its registrable domain, because a longer rule matching such a name would have R as a
//   proper suffix (PSL wildcards are only ever the leftmost label). The cache remembers stable
//   domains and finds them by trying the name's last 2, 3, ... labels. A random-subdomain flood
//   under one domain therefore costs one rule lookup in total.
// - Other names (a public suffix itself, names under domains with deeper rules, or every name
//   when the list came as a DAFSA without its text): keyed by their last kMaxRuleLabels + 1
//   labels, on which the answer alone depends, since no rule is deeper than kMaxRuleLabels.
//   A unit test checks that depth against the list installed on the machine.
//
// Names are expected lower-cased and in presentation form without the final dot. A name that is
// itself a public suffix ("com", "co.uk") or the root counts as its own domain. A name with an
// escaped character ('\' in presentation form) is not looked up: its domain is taken as its last
// two labels, so such names still group, and hostile names never reach the rules.
//
// Thread-safety: PublicSuffixList is immutable after load() and shared; a DomainCache belongs to
//   one worker. Allocation: load() and the DomainCache constructor only.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct psl_ctx_st;

namespace dnsmon::detail {

class PublicSuffixList {
 public:
  // The deepest rule of the list, in labels ("*.compute.amazonaws.com" has 4). Checked by a test.
  static constexpr std::size_t kMaxRuleLabels = 5;

  // The text list of Debian's publicsuffix package, preferred when path is "".
  static constexpr const char* kSystemList = "/usr/share/publicsuffix/public_suffix_list.dat";

  // A text list larger than this is refused (the real one is about 230 KB), and so is one whose
  // rules and their suffixes need more than kMaxKeyBytes (the real one: about 120 KB).
  static constexpr std::size_t kMaxListBytes = 16U << 20U;
  static constexpr std::size_t kMaxKeyBytes = 32U << 20U;

  // path "" loads kSystemList if it is there, or else libpsl's newest (its distribution file or
  // its built-in copy); otherwise the file at path (text list or DAFSA). Throws
  // std::runtime_error.
  static std::shared_ptr<const PublicSuffixList> load(const std::string& path);

  // The same from a list's bytes (text or DAFSA); name is for messages and description().
  static std::shared_ptr<const PublicSuffixList> from_text(const std::string& text,
                                                           const std::string& name);

  ~PublicSuffixList();
  PublicSuffixList(const PublicSuffixList&) = delete;
  PublicSuffixList& operator=(const PublicSuffixList&) = delete;

  // The length of the registrable-domain suffix of name (lower case, no final dot, no escapes,
  // at most 255 characters), or name.size() when name is itself a public suffix, which
  // *public_suffix then tells.
  [[nodiscard]] std::size_t registrable_length(std::string_view name,
                                               bool* public_suffix = nullptr) const noexcept;

  // Whether every name under domain has domain as its registrable domain, given that domain is
  // registrable: false when some rule lies below it, or when the rules are not known as text.
  [[nodiscard]] bool stable(std::string_view domain) const noexcept;

  // Where the list came from, for the startup log.
  [[nodiscard]] const std::string& description() const noexcept { return description_; }

  // Rules read from a text list (0 for a DAFSA or libpsl's built-in list).
  [[nodiscard]] std::size_t rules() const noexcept { return rules_; }

 private:
  PublicSuffixList() = default;

  // A text list is matched here, the way libpsl 0.21 matches a list it loaded from text (the
  // same rule forms, the same "check from the left" walk, the same ASCII forms of
  // internationalised rules), without libpsl's sorted vector of ten thousand small allocations
  // and its binary search: an open-addressing table of every rule and every proper suffix of
  // one, with what each is. Internationalised rules are taken as written, in lower case and
  // normalised as the published list has them; libpsl first normalises (NFKC) and maps them
  // (IDNA2008), so a list with other Unicode forms can get other ASCII forms from each. Two
  // refusals libpsl does not make: a rule of more than kMaxRuleLabels labels (the domain cache
  // depends on that bound) and rules that need more than kMaxKeyBytes.
  enum Flag : std::uint8_t {
    Plain = 1,      // "a.b", or the "a.b" of "*.a.b"
    Wildcard = 2,   // "*.a.b"
    Exception = 4,  // "!a.b"
    Above = 8,      // some rule lies strictly below this name
  };

  static constexpr std::uint8_t kRule = Plain | Wildcard | Exception;

  struct Slot {
    std::uint32_t offset = 0;  // in keys_
    std::uint8_t length = 0;   // 0: empty (no key is empty)
    std::uint8_t flags = 0;
    std::uint16_t tag = 0;  // the hash's top bits
  };

  // "" or why the list is refused.
  [[nodiscard]] std::string read_text(const std::string& text);
  void add_rule(std::string_view rule, std::uint8_t flags);
  void add(std::string_view key, std::uint8_t flags);
  [[nodiscard]] std::uint8_t flags_of(std::string_view key) const noexcept;
  [[nodiscard]] bool is_public_suffix(std::string_view domain) const noexcept;
  [[nodiscard]] std::size_t libpsl_registrable_length(std::string_view name,
                                                      bool* public_suffix) const noexcept;

  psl_ctx_st* ctx_ = nullptr;  // libpsl, for a list that is not text
  bool owned_ = false;
  std::string description_;
  std::size_t rules_ = 0;
  std::string keys_;         // every key's bytes, back to back
  std::vector<Slot> slots_;  // a power of two, at most half full
  std::size_t used_ = 0;
  bool overflow_ = false;  // keys_ would have passed kMaxKeyBytes
};

// The ASCII form ("xn--" and RFC 3492 Punycode) of one label of lower-case UTF-8, or "" when the
// label is not valid UTF-8, is plain ASCII already, or would exceed 63 characters.
[[nodiscard]] std::string punycode_label(std::string_view utf8);

class DomainCache {
 public:
  // entries is rounded up to a power of two (at least 4).
  DomainCache(std::shared_ptr<const PublicSuffixList> list, std::size_t entries,
              std::uint64_t seed);

  // What registrable() first computes from a name: where its last labels start and the hash of
  // its last two. Meaningful only for the name it was prepared from.
  struct Hint {
    static constexpr std::size_t kTail = PublicSuffixList::kMaxRuleLabels + 1;
    std::array<std::uint16_t, kTail> starts{};  // starts[k]: where the last k + 1 labels begin
    std::uint8_t labels = 0;                    // entries of starts in use
    bool lookup = false;  // false: registrable() needs no table (empty, root or escaped name)
    std::uint64_t two_label_hash = 0;  // hash_bytes() of the last two labels, if labels >= 2
    std::size_t name_size = 0;         // of the name prepared; registrable() asserts it is the same
  };

  // The hint for name (lower case, no final dot), and starts loading the cache line
  // that registrable() will look at first. The tables are too large to stay cached next to the
  // rest of a worker's state, so that line is usually a cache miss: a caller with other work can
  // prepare() a name early and overlap the miss with that work. Changes nothing.
  [[nodiscard]] Hint prepare(std::string_view name) const noexcept;

  // The registrable domain of name, as a suffix of name.
  [[nodiscard]] std::string_view registrable(std::string_view name) noexcept {
    return registrable(name, prepare(name));
  }

  // The same, with hint == prepare(name) (a hint of another name gives a wrong answer; debug
  // builds assert the length).
  [[nodiscard]] std::string_view registrable(std::string_view name, const Hint& hint) noexcept;

  [[nodiscard]] std::uint64_t hits() const noexcept { return hits_; }

  [[nodiscard]] std::uint64_t misses() const noexcept { return misses_; }

  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return sizeof(*this) + 2 * (mask_ + 1) * sizeof(Entry);
  }

  [[nodiscard]] static std::size_t planned_bytes(std::size_t entries) noexcept;

 private:
  // One word: the top 48 bits of the hash, the length of the tail looked up (0: empty; names
  // are at most 255 characters) and of its registrable domain. The set index comes from the low
  // bits, so with the tag about 60 bits of the hash must agree, as many as the 64-bit hash of
  // the earlier 16-byte entries gave.
  struct Entry {
    std::uint64_t word = 0;

    static Entry make(std::uint64_t hash, std::size_t tail_length,
                      std::size_t domain_length) noexcept {
      return Entry{(hash & ~std::uint64_t{0xffff}) | (std::uint64_t{tail_length} << 8U) |
                   domain_length};
    }

    [[nodiscard]] bool matches(std::uint64_t hash, std::size_t tail_length) const noexcept {
      return (word ^ (hash & ~std::uint64_t{0xffff}) ^ (std::uint64_t{tail_length} << 8U)) >> 8U ==
             0;
    }

    [[nodiscard]] bool empty() const noexcept { return (word & 0xff00U) == 0; }

    [[nodiscard]] std::size_t domain_length() const noexcept { return word & 0xffU; }
  };

  // Sets of kWays entries (64 bytes): a name may sit in any way of its set, so a few
  // domains that share a set do not evict each other (a direct-mapped cache missed 5 % of the
  // benchmark's queries, most of them such conflicts).
  static constexpr std::size_t kWays = 8;
  static_assert(kWays * sizeof(Entry) == 64);

  [[nodiscard]] const Entry* find(const Entry* table, std::uint64_t hash,
                                  std::size_t tail_length) const noexcept;
  void insert(Entry* table, std::uint64_t hash, const Entry& entry) noexcept;

  // calloc'd: the kernel hands out zeroed pages as they are first touched, so a table of 512 KiB
  // costs nothing at start-up and becomes resident only as far as names fill it. All-zero bytes
  // are an empty Entry.
  struct Free {
    void operator()(Entry* p) const noexcept { std::free(p); }
  };

  using Table = std::unique_ptr<Entry[], Free>;
  static Table zeroed_table(std::size_t entries);

  // Entries per table for the constructor's `entries`.
  static std::size_t table_entries(std::size_t entries) noexcept {
    return std::bit_ceil(std::max(entries, kWays));
  }

  std::shared_ptr<const PublicSuffixList> list_;
  Table entries_;  // by the name's last kMaxRuleLabels + 1 labels
  Table stable_;   // stable registrable domains, by themselves
  std::uint64_t seed_;
  std::uint64_t mask_;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace dnsmon::detail

namespace dnsmon {

// A loaded Public Suffix List, shared read-only by the workers' domain caches.
using SuffixList = std::shared_ptr<const detail::PublicSuffixList>;

// Loads a public suffix list ("" = the system's, else libpsl's). Throws std::runtime_error saying
// what is wrong with the file; the caller adds which key named it.
SuffixList load_public_suffix_list(const std::string& path);

}  // namespace dnsmon
