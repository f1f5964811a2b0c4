// libFuzzer target for the public suffix list (metrics/domains), in two parts.
//
// 1. Hostile lists: the raw input is loaded as a text list (PublicSuffixList::from_text). It may
//    be refused with std::runtime_error; anything else (a crash, a sanitizer report, a leak) is a
//    bug. The input's lines are then looked up as names. (Compiled lists go to libpsl: skipped.)
// 2. Differential: the input also drives a generator of well-formed lists (comments, blank and
//    indented lines, trailing words, plain, wildcard and exception rules, internationalised
//    labels) and of names over the same labels, and our answer for every name must equal
//    libpsl's for the same list (psl_load_fp, psl_registrable_domain). The generator keeps to
//    what libpsl 0.21 handles as documented: one line per rule under 100 bytes, no NUL, each
//    rule's key (and its ASCII form) once, internationalised labels that IDNA accepts as they
//    are (lower case, normalised), rules of at most 5 labels (deeper ones we refuse). Outside
//    that libpsl has quirks of its own (a long line is split by fgets; a repeated rule may be
//    stored twice, since it looks rules up in a vector it has not sorted yet; Unicode is
//    normalised and mapped before the ASCII form is taken).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <libpsl.h>

#include "dnsmon/domains.hpp"

#include "fuzz_check.hpp"

namespace {

using dnsmon::detail::PublicSuffixList;

constexpr std::size_t kMaxInput = 4096;

struct PslFree {
  void operator()(psl_ctx_t* p) const noexcept { psl_free(p); }
};

// Reads the input a byte at a time; zeros once it is used up.
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::uint8_t next() noexcept { return at_ < size_ ? data_[at_++] : 0; }

  [[nodiscard]] bool more() const noexcept { return at_ < size_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

// Labels of rules (UTF-8 where internationalised) and their ASCII forms for names.
constexpr std::array<std::string_view, 9> kRuleLabels{"a",  "b", "c",    "ab",    "0",
                                                      "co", "ü", "公司", "bücher"};
constexpr std::array<std::string_view, 12> kNameLabels{
    "a", "b", "c", "ab", "0", "co", "x", "xn--tda", "xn--55qx5d", "xn--bcher-kva", "ü", "www"};

std::string ascii_form(std::string_view label) {
  if (label == "ü") {
    return "xn--tda";
  }
  if (label == "公司") {
    return "xn--55qx5d";
  }
  if (label == "bücher") {
    return "xn--bcher-kva";
  }
  return std::string(label);
}

void hostile(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (text.starts_with(".DAFSA@PSL_")) {
    return;  // a compiled list is libpsl's to read, not ours
  }
  std::shared_ptr<const PublicSuffixList> list;
  try {
    list = PublicSuffixList::from_text(text, "fuzz");
  } catch (const std::runtime_error&) {
    return;
  }
  // Names: the input's lines, as they are (registrable_length takes any bytes up to 255).
  std::size_t from = 0;
  while (from < text.size()) {
    std::size_t end = text.find('\n', from);
    end = end == std::string::npos ? text.size() : end;
    const std::string_view name(text.data() + from, std::min<std::size_t>(end - from, 255));
    bool public_suffix = false;
    const std::size_t length = list->registrable_length(name, &public_suffix);
    FUZZ_CHECK(length <= name.size());
    FUZZ_CHECK(!public_suffix || length == name.size());
    (void)list->stable(name);
    from = end + 1;
  }
}

void differential(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  std::string text;
  std::set<std::string> keys;  // each rule's key and ASCII form once
  const std::size_t rules = 1 + in.next() % 24;
  for (std::size_t r = 0; r < rules && in.more(); ++r) {
    const std::uint8_t shape = in.next();
    if (shape % 11 == 0) {
      text += shape % 2 == 0 ? "// comment ===BEGIN PRIVATE DOMAINS===\n" : "\n";
      continue;
    }
    std::string key;
    std::string ascii;
    const std::size_t labels = 1 + in.next() % 4;  // with "*.", at most kMaxRuleLabels
    for (std::size_t l = 0; l < labels; ++l) {
      const std::string_view label = kRuleLabels[in.next() % kRuleLabels.size()];
      key += (l == 0 ? "" : ".") + std::string(label);
      ascii += (l == 0 ? "" : ".") + ascii_form(label);
    }
    if (!keys.insert(key).second || (ascii != key && !keys.insert(ascii).second)) {
      continue;
    }
    const std::uint8_t kind = in.next();
    const char* prefix = kind % 4 == 1 ? "!" : kind % 4 == 2 ? "*." : "";
    const char* indent = (kind & 0x10U) != 0 ? " \t" : "";
    const char* trailer = (kind & 0x20U) != 0 ? " trailing words\r" : "";
    text += std::string(indent) + prefix + key + trailer + "\n";
  }
  std::shared_ptr<const PublicSuffixList> ours;
  try {
    ours = PublicSuffixList::from_text(text, "fuzz");
  } catch (const std::runtime_error&) {
    FUZZ_CHECK(keys.empty());  // only a list without rules is refused
    return;
  }
  FUZZ_CHECK(!keys.empty());
  std::FILE* f = fmemopen(text.data(), text.size(), "rb");
  FUZZ_CHECK(f != nullptr);
  const std::unique_ptr<psl_ctx_t, PslFree> theirs(psl_load_fp(f));
  std::fclose(f);
  FUZZ_CHECK(theirs != nullptr);
  while (in.more()) {
    std::string name;
    const std::uint8_t form = in.next();
    const std::size_t labels = 1 + form % 10;
    for (std::size_t l = 0; l < labels; ++l) {
      name += (l == 0 ? "" : ".") + std::string(kNameLabels[in.next() % kNameLabels.size()]);
    }
    if ((form & 0x80U) != 0) {
      name = "." + name;  // libpsl: no registrable domain for a name that starts with a dot
    }
    bool public_suffix = false;
    const std::size_t got = ours->registrable_length(name, &public_suffix);
    const char* domain = psl_registrable_domain(theirs.get(), name.c_str());
    const std::size_t want = domain == nullptr
                                 ? name.size()
                                 : name.size() - static_cast<std::size_t>(domain - name.c_str());
    if (got != want || public_suffix != (domain == nullptr)) {
      std::fprintf(stderr, "list:\n%s\nname %s: ours %zu (public suffix %d), libpsl %zu\n",
                   text.c_str(), name.c_str(), got, public_suffix ? 1 : 0, want);
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) {
    return 0;
  }
  hostile(data, size);
  differential(data, size);
  return 0;
}
