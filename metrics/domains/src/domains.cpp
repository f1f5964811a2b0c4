#include "dnsmon/domains.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <stdexcept>
#include <type_traits>

#include <libpsl.h>

#include "dnsmon/common/hash.hpp"

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

PublicSuffixList::~PublicSuffixList() {
  if (owned_) {
    psl_free(ctx_);
  }
}

std::shared_ptr<const PublicSuffixList> PublicSuffixList::from_text(const std::string& text,
                                                                    const std::string& name) {
  std::shared_ptr<PublicSuffixList> list(new PublicSuffixList());
  list->description_ = name;
  // A compiled list (what psl-make-dafsa writes) starts with ".DAFSA@PSL_" and a version.
  if (text.rfind(".DAFSA@PSL_", 0) == 0) {
    // fmemopen takes a non-const buffer but only reads it in "rb" mode.
    std::FILE* f = fmemopen(const_cast<char*>(text.data()), text.size(), "rb");  // NOLINT
    list->ctx_ = f != nullptr ? psl_load_fp(f) : nullptr;
    if (f != nullptr) {
      std::fclose(f);
    }
    list->owned_ = list->ctx_ != nullptr;
    if (list->ctx_ == nullptr) {
      throw std::runtime_error("cannot load the public suffix list " + name +
                               ": libpsl refused the compiled list");
    }
    return list;
  }
  if (text.size() > kMaxListBytes) {
    throw std::runtime_error("cannot load the public suffix list " + name + ": larger than 16 MiB");
  }
  if (const std::string error = list->read_text(text); !error.empty()) {
    throw std::runtime_error("cannot load the public suffix list " + name + ": " + error);
  }
  if (list->rules_ == 0) {
    throw std::runtime_error("cannot load the public suffix list " + name +
                             ": no rule in it (not a list)");
  }
  return list;
}

std::shared_ptr<const PublicSuffixList> PublicSuffixList::load(const std::string& path) {
  const std::string file = !path.empty()                       ? path
                           : std::ifstream(kSystemList).good() ? std::string(kSystemList)
                                                               : std::string();
  std::shared_ptr<PublicSuffixList> list(new PublicSuffixList());
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    std::string text;
    std::error_code size_error;
    const std::uintmax_t size = std::filesystem::file_size(file, size_error);
    if (!size_error) {
      text.reserve(static_cast<std::size_t>(std::min<std::uintmax_t>(size, kMaxListBytes) + 1));
    }
    std::array<char, 65536> chunk{};
    while (in && text.size() <= kMaxListBytes) {
      in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      text.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
    }
    if (!in.eof() || in.bad() || text.empty() || text.size() > kMaxListBytes) {
      throw std::runtime_error(
          "cannot load the public suffix list " + file + ": " +
          (text.size() > kMaxListBytes ? "larger than 16 MiB" : "missing, unreadable or empty"));
    }
    return from_text(text, file);
  }
  // psl_latest() picks the newer of the distribution's file and the built-in copy.
  if (psl_ctx_t* ctx = psl_latest(nullptr); ctx != nullptr) {
    const char* dist = psl_dist_filename();
    list->ctx_ = ctx;
    list->owned_ = true;
    list->description_ =
        dist != nullptr && *dist != '\0' ? std::string(dist) : "libpsl built-in list";
    return list;
  }
  const psl_ctx_t* builtin = psl_builtin();
  if (builtin == nullptr) {
    throw std::runtime_error(
        "no public suffix list: libpsl has no built-in list and the system has none (install "
        "the publicsuffix package or set analytics.public_suffix_list)");
  }
  list->ctx_ = const_cast<psl_ctx_t*>(builtin);
  list->description_ = "libpsl built-in list";
  return list;
}

// Lines as libpsl 0.21 reads them: leading white space skipped, "//" comments, the rule up to the
// next white space; "!a.b" an exception, "*.a.b" a wildcard ("*" followed by anything else is
// ignored), anything else a plain rule, a single label too. A rule of 127 bytes or more is
// ignored, as are ASCII forms of that length.
std::string PublicSuffixList::read_text(const std::string& text) {
  constexpr std::string_view kSpace = " \t\r\n";
  constexpr std::size_t kLongestRule = 126;
  keys_.reserve(text.size() / 2);
  // At most half full for a list of ten short rules per 230 bytes or so (the real one: 32,768
  // slots for about 10,000 keys); add() doubles it when needed.
  slots_.assign(std::bit_ceil(std::max<std::size_t>(text.size() / 8, 1024)), Slot{});
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) {
      end = text.size();
    }
    std::string_view line(text.data() + at, end - at);
    at = end + 1;
    line = line.substr(0, line.find('\0'));  // libpsl reads a line as a C string
    const std::size_t first = line.find_first_not_of(kSpace);
    if (first == std::string_view::npos) {
      continue;
    }
    line.remove_prefix(first);
    if (line.starts_with("//")) {
      continue;
    }
    std::string_view rule = line.substr(0, line.find_first_of(kSpace));
    std::uint8_t flags = Plain;
    if (rule.front() == '!') {
      rule.remove_prefix(1);
      flags = Exception;
    } else if (rule.front() == '*') {
      if (rule.size() < 2 || rule[1] != '.') {
        continue;
      }
      rule.remove_prefix(2);
      flags = Wildcard | Plain;
    }
    if (rule.empty() || rule.size() > kLongestRule) {
      continue;  // libpsl stores an empty rule, which no lookup can reach
    }
    // The domain cache keys its answers by a name's last kMaxRuleLabels + 1 labels: a deeper rule
    // would make them wrong.
    const std::size_t labels = static_cast<std::size_t>(std::count(rule.begin(), rule.end(), '.')) +
                               ((flags & Wildcard) != 0 ? 2 : 1);
    if (labels > kMaxRuleLabels) {
      return "the rule \"" + std::string(line.substr(0, line.find_first_of(kSpace))) + "\" has " +
             std::to_string(labels) + " labels; at most " + std::to_string(kMaxRuleLabels) +
             " are supported";
    }
    ++rules_;
    add_rule(rule, flags);
    // The ASCII form of an internationalised rule, label by label; the names on the wire use it.
    if (std::any_of(rule.begin(), rule.end(), [](char c) { return (c & 0x80) != 0; })) {
      std::string ascii;
      bool ok = true;
      for (std::size_t from = 0; ok && from <= rule.size();) {
        std::size_t dot = rule.find('.', from);
        if (dot == std::string_view::npos) {
          dot = rule.size();
        }
        const std::string_view label = rule.substr(from, dot - from);
        std::string converted = punycode_label(label);
        const bool plain =
            std::all_of(label.begin(), label.end(), [](char c) { return (c & 0x80) == 0; });
        ok = plain || !converted.empty();
        ascii += plain ? std::string(label) : converted;
        if (dot < rule.size()) {
          ascii += '.';
        }
        from = dot + 1;
      }
      if (ok && ascii.size() <= kLongestRule) {
        add_rule(ascii, flags);
      }
    }
  }
  return overflow_ ? "its rules need more than 32 MiB of keys (not a public suffix list)" : "";
}

void PublicSuffixList::add_rule(std::string_view rule, std::uint8_t flags) {
  // A wildcard "*.a.b" has rules below "a.b" itself; every rule has them below its parents.
  add(rule, static_cast<std::uint8_t>(flags | ((flags & Wildcard) != 0 ? Above : 0)));
  for (std::size_t dot = rule.find('.'); dot != std::string_view::npos;
       dot = rule.find('.', dot + 1)) {
    add(rule.substr(dot + 1), Above);
  }
}

namespace {

std::uint16_t tag_of(std::uint64_t hash) noexcept {
  return static_cast<std::uint16_t>(hash >> 48U);
}

}  // namespace

void PublicSuffixList::add(std::string_view key, std::uint8_t flags) {
  if (key.empty() || key.size() > 0xff) {
    return;
  }
  if (keys_.size() + key.size() > kMaxKeyBytes) {
    overflow_ = true;  // read_text() refuses the list
    return;
  }
  if ((used_ + 1) * 2 > slots_.size()) {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    used_ = 0;
    for (const Slot& s : old) {
      if (s.length != 0) {
        const std::string_view k(keys_.data() + s.offset, s.length);
        const std::uint64_t h = hash_bytes(k, kSuffixRuleSeed);
        for (std::size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
          if (slots_[i].length == 0) {
            slots_[i] = s;
            ++used_;
            break;
          }
        }
      }
    }
  }
  const std::uint64_t h = hash_bytes(key, kSuffixRuleSeed);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.length == 0) {
      s.offset = static_cast<std::uint32_t>(keys_.size());
      s.length = static_cast<std::uint8_t>(key.size());
      s.flags = flags;
      s.tag = tag_of(h);
      keys_.append(key);
      ++used_;
      return;
    }
    if (s.tag == tag_of(h) && s.length == key.size() &&
        std::memcmp(keys_.data() + s.offset, key.data(), key.size()) == 0) {
      s.flags |= flags;
      return;
    }
  }
}

std::uint8_t PublicSuffixList::flags_of(std::string_view key) const noexcept {
  if (key.empty() || key.size() > 0xff || slots_.empty()) {
    return 0;
  }
  const std::uint64_t h = hash_bytes(key, kSuffixRuleSeed);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.length == 0) {
      return 0;
    }
    if (s.tag == tag_of(h) && s.length == key.size() &&
        std::memcmp(keys_.data() + s.offset, key.data(), key.size()) == 0) {
      return s.flags;
    }
  }
}

// libpsl's is_public_suffix() for a list read from text: a single label is one (the implicit
// "*" rule); else the name's own rule decides (an exception: no, any other: yes), and without
// one, a wildcard rule of its parent makes it one.
bool PublicSuffixList::is_public_suffix(std::string_view domain) const noexcept {
  if (domain.starts_with('.')) {
    domain.remove_prefix(1);
  }
  const std::size_t dot = domain.find('.');
  if (dot == std::string_view::npos) {
    return true;
  }
  const std::uint8_t own = flags_of(domain);
  if ((own & kRule) != 0) {
    return (own & Exception) == 0;
  }
  return (flags_of(domain.substr(dot + 1)) & Wildcard) != 0;
}

bool PublicSuffixList::stable(std::string_view domain) const noexcept {
  return rules_ != 0 && (flags_of(domain) & Above) == 0;
}

std::size_t PublicSuffixList::registrable_length(std::string_view name,
                                                 bool* public_suffix) const noexcept {
  if (public_suffix != nullptr) {
    *public_suffix = true;
  }
  if (name.empty() || name.size() > 255) {
    return name.size();
  }
  if (ctx_ != nullptr) {
    return libpsl_registrable_length(name, public_suffix);
  }
  // psl_registrable_domain(): no name that starts with a dot; only the last eight labels count;
  // then, from the left, the label before the first suffix that is public.
  if (name.front() == '.') {
    return name.size();
  }
  std::size_t start = 0;
  std::size_t dots = 0;
  for (std::size_t i = name.size(); i-- > 0;) {
    if (name[i] == '.' && ++dots > 8) {
      start = i + 1;
      break;
    }
  }
  std::size_t registrable = std::string_view::npos;
  while (!is_public_suffix(name.substr(start))) {
    const std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) {
      break;
    }
    registrable = start;
    start = dot + 1;
  }
  if (registrable == std::string_view::npos) {
    return name.size();
  }
  if (public_suffix != nullptr) {
    *public_suffix = false;
  }
  return name.size() - registrable;
}

std::size_t PublicSuffixList::libpsl_registrable_length(std::string_view name,
                                                        bool* public_suffix) const noexcept {
  std::array<char, 256> buffer{};
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

namespace {

// RFC 3492, section 6.1: the bias after each encoded code point.
std::uint32_t adapt_bias(std::uint32_t delta, std::uint32_t points, bool first) noexcept {
  constexpr std::uint32_t kBase = 36;
  constexpr std::uint32_t kTmin = 1;
  constexpr std::uint32_t kTmax = 26;
  delta = first ? delta / 700 : delta / 2;
  delta += delta / points;
  std::uint32_t k = 0;
  while (delta > ((kBase - kTmin) * kTmax) / 2) {
    delta /= kBase - kTmin;
    k += kBase;
  }
  return k + (kBase - kTmin + 1) * delta / (delta + 38);
}

// Code points of strict UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
bool decode_utf8(std::string_view in, std::vector<std::uint32_t>& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size();) {
    const auto b = static_cast<unsigned char>(in[i]);
    std::size_t extra = 0;
    std::uint32_t cp = 0;
    std::uint32_t least = 0;
    if (b < 0x80) {
      cp = b;
    } else if ((b & 0xE0U) == 0xC0U) {
      extra = 1;
      cp = b & 0x1FU;
      least = 0x80;
    } else if ((b & 0xF0U) == 0xE0U) {
      extra = 2;
      cp = b & 0x0FU;
      least = 0x800;
    } else if ((b & 0xF8U) == 0xF0U) {
      extra = 3;
      cp = b & 0x07U;
      least = 0x10000;
    } else {
      return false;
    }
    if (i + extra >= in.size() && extra > 0) {
      return false;  // cut short
    }
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto c = static_cast<unsigned char>(in[i + k]);
      if ((c & 0xC0U) != 0x80U) {
        return false;
      }
      cp = (cp << 6U) | (c & 0x3FU);
    }
    if (cp < least || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    out.push_back(cp);
    i += extra + 1;
  }
  return true;
}

}  // namespace

std::string punycode_label(std::string_view utf8) {
  constexpr std::uint32_t kBase = 36;
  constexpr std::uint32_t kTmin = 1;
  constexpr std::uint32_t kTmax = 26;
  constexpr std::size_t kMaxLabel = 63;
  std::vector<std::uint32_t> input;
  if (!decode_utf8(utf8, input)) {
    return {};
  }
  std::string out = "xn--";
  for (std::uint32_t cp : input) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    }
  }
  const auto basic = static_cast<std::uint32_t>(out.size() - 4);
  if (basic == input.size()) {
    return {};  // nothing to encode
  }
  if (basic > 0) {
    out += '-';
  }
  const auto digit = [](std::uint32_t d) {
    return static_cast<char>(d < 26 ? 'a' + d : '0' + (d - 26));
  };
  std::uint32_t n = 0x80;
  std::uint32_t delta = 0;
  std::uint32_t bias = 72;
  std::uint32_t handled = basic;
  while (handled < input.size()) {
    std::uint32_t m = UINT32_MAX;
    for (std::uint32_t cp : input) {
      if (cp >= n && cp < m) {
        m = cp;
      }
    }
    // Labels are at most 63 code points of at most U+10FFFF: delta stays far below 2^32.
    delta += (m - n) * (handled + 1);
    n = m;
    for (std::uint32_t cp : input) {
      if (cp < n) {
        ++delta;
      }
      if (cp != n) {
        continue;
      }
      std::uint32_t q = delta;
      for (std::uint32_t k = kBase;; k += kBase) {
        const std::uint32_t t = k <= bias ? kTmin : k >= bias + kTmax ? kTmax : k - bias;
        if (q < t) {
          break;
        }
        out += digit(t + (q - t) % (kBase - t));
        q = (q - t) / (kBase - t);
      }
      out += digit(q);
      bias = adapt_bias(delta, handled + 1, handled == basic);
      delta = 0;
      ++handled;
      if (out.size() > kMaxLabel) {
        return {};
      }
    }
    ++delta;
    ++n;
  }
  return out.size() > kMaxLabel ? std::string() : out;
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
    if (e.matches(hash, tail_length)) {
      return &e;
    }
    if (e.empty()) {
      break;  // ways fill in order and are never emptied: none further on
    }
  }
  return nullptr;
}

// NOLINTNEXTLINE(readability-make-member-function-const): writes into the cache's own table
void DomainCache::insert(Entry* table, std::uint64_t hash, const Entry& entry) noexcept {
  const std::size_t set = hash & mask_ & ~(kWays - 1);
  for (std::size_t w = 0; w < kWays; ++w) {
    if (table[set + w].empty()) {
      table[set + w] = entry;
      return;
    }
  }
  // A full set: the victim is picked by the three top hash bits, which the set index does not
  // use, so it is not always the same way.
  static_assert(kWays == 8, "three hash bits pick the way");
  table[set + (hash >> 61U)] = entry;
}

DomainCache::Hint DomainCache::prepare(std::string_view name) const noexcept {
  Hint hint;
  hint.name_size = name.size();
  if (name.empty() || name == "." || name.size() > 255 ||
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
    return name.substr(tail_start(name, 2));  // escaped (or over 255, which no name is)
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
    return name.substr(name.size() - e->domain_length());
  }
  ++misses_;
  bool public_suffix = false;
  const std::size_t length = list_->registrable_length(tail, &public_suffix);
  const std::string_view domain = name.substr(name.size() - length);
  if (!public_suffix && list_->stable(domain)) {
    const std::uint64_t dh = hash_bytes(domain, seed_);
    insert(stable_.get(), dh, Entry::make(dh, domain.size(), domain.size()));
  } else {
    insert(entries_.get(), h, Entry::make(h, tail.size(), length));
  }
  return domain;
}

}  // namespace dnsmon::detail

namespace dnsmon {

SuffixList load_public_suffix_list(const std::string& path) {
  return detail::PublicSuffixList::load(path);
}

}  // namespace dnsmon
