// Tests for the public suffix list's own matcher (metrics/domains): the ASCII forms of
// internationalised rules against RFC 3492's examples, and every answer against libpsl's for the
// same list, over every rule of the installed list with names built around it, random names, odd
// inputs and small crafted lists.
#include "dnsmon/domains.hpp"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include <libpsl.h>

#include <catch2/catch.hpp>

namespace dnsmon::detail {
namespace {

constexpr const char* kDafsa = "/usr/share/publicsuffix/public_suffix_list.dafsa";

struct PslFree {
  void operator()(psl_ctx_t* p) const noexcept { psl_free(p); }
};

using PslHandle = std::unique_ptr<psl_ctx_t, PslFree>;

// libpsl's answer, in registrable_length()'s terms.
std::size_t libpsl_length(const psl_ctx_t* ctx, const std::string& name, bool* public_suffix) {
  const char* domain = psl_registrable_domain(ctx, name.c_str());
  *public_suffix = domain == nullptr;
  return domain == nullptr ? name.size()
                           : name.size() - static_cast<std::size_t>(domain - name.c_str());
}

// Compares ours with libpsl's for every name; returns how many were compared.
std::size_t compare(const PublicSuffixList& ours, const psl_ctx_t* theirs,
                    const std::vector<std::string>& names) {
  std::size_t compared = 0;
  for (const auto& name : names) {
    if (name.empty() || name.size() > 255) {
      continue;
    }
    bool our_ps = false;
    bool their_ps = false;
    const std::size_t got = ours.registrable_length(name, &our_ps);
    const std::size_t want = libpsl_length(theirs, name, &their_ps);
    if (got != want || our_ps != their_ps) {
      CAPTURE(name, got, want, our_ps, their_ps);
      CHECK(got == want);
      CHECK(our_ps == their_ps);
    }
    ++compared;
  }
  return compared;
}

// A list file for one test, removed at the end.
struct TempList {
  std::string path;

  explicit TempList(const std::string& text) {
    std::array<char, 64> name{};
    std::snprintf(name.data(), name.size(), "/tmp/dnsmon-psl-test-XXXXXX");
    const int fd = mkstemp(name.data());
    REQUIRE(fd >= 0);
    close(fd);
    path = name.data();
    std::ofstream(path, std::ios::binary) << text;
  }

  ~TempList() { std::remove(path.c_str()); }

  TempList(const TempList&) = delete;
  TempList& operator=(const TempList&) = delete;
};

// Rules of a text list as written, and the names to try around each.
std::vector<std::string> names_around_rules(const std::string& text) {
  std::vector<std::string> names;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line.compare(first, 2, "//") == 0) {
      continue;
    }
    std::string rule = line.substr(first, line.find_first_of(" \t\r", first) - first);
    if (rule[0] == '!' || rule[0] == '*') {
      rule.erase(0, rule.size() > 1 && rule[1] == '.' ? 2 : 1);
    }
    // The ASCII form, as a name on the wire would carry it.
    std::string ascii;
    bool idn = false;
    for (std::size_t from = 0; from <= rule.size();) {
      std::size_t dot = rule.find('.', from);
      dot = dot == std::string::npos ? rule.size() : dot;
      const std::string label = rule.substr(from, dot - from);
      const std::string converted = punycode_label(label);
      idn = idn || !converted.empty();
      ascii += converted.empty() ? label : converted;
      ascii += dot < rule.size() ? "." : "";
      from = dot + 1;
    }
    for (const std::string& base :
         idn ? std::vector<std::string>{rule, ascii} : std::vector<std::string>{rule}) {
      for (const char* prefix : {"", "a.", "www.", "b.a.", "c.b.a.", "d.c.b.a.www."}) {
        names.push_back(prefix + base);
      }
      for (std::size_t dot = base.find('.'); dot != std::string::npos;
           dot = base.find('.', dot + 1)) {
        names.push_back(base.substr(dot + 1));
        names.push_back("x." + base.substr(dot + 1));
      }
    }
  }
  return names;
}

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("Punycode follows RFC 3492", "[metrics][domains]") {
  CHECK(punycode_label("bücher") == "xn--bcher-kva");
  CHECK(punycode_label("münchen") == "xn--mnchen-3ya");
  CHECK(punycode_label("公司") == "xn--55qx5d");
  CHECK(punycode_label("中国") == "xn--fiqs8s");
  CHECK(punycode_label("香港") == "xn--j6w193g");
  // RFC 3492, section 7.1, samples (B) and (L): basic code points keep their case.
  CHECK(punycode_label("他们为什么不说中文") == "xn--ihqwcrb4cv8a8dqg056pqjye");
  CHECK(punycode_label("3年B組金八先生") == "xn--3B-ww4c5e180e575a65lsy2b");
  CHECK(punycode_label("example").empty());       // ASCII: nothing to encode
  CHECK(punycode_label("\xff\xfe").empty());      // not UTF-8
  CHECK(punycode_label("\xc3").empty());          // cut short
  CHECK(punycode_label("\xc0\xaf").empty());      // overlong
  CHECK(punycode_label("\xed\xa0\x80").empty());  // a surrogate
  CHECK(punycode_label(std::string(40, 'a') + "ü" + std::string(30, 'b')).empty());  // > 63
}

TEST_CASE("the own matcher answers as libpsl does for every rule of the installed list",
          "[metrics][domains]") {
  const std::string text = read_file(PublicSuffixList::kSystemList);
  if (text.empty()) {
    WARN("no " << PublicSuffixList::kSystemList << " (package publicsuffix): not checked");
    return;
  }
  const auto ours = PublicSuffixList::load(PublicSuffixList::kSystemList);
  const PslHandle theirs(psl_load_file(PublicSuffixList::kSystemList));
  REQUIRE(theirs != nullptr);
  CHECK(ours->rules() > 5000);
  const auto names = names_around_rules(text);
  CHECK(compare(*ours, theirs.get(), names) > 50'000);

  // Random names from the list's own labels and a few others, up to ten labels deep.
  std::vector<std::string> labels{"a", "www", "x", "com", "uk", "xn--p1ai", "zz", "1", "-"};
  for (const auto& name : names) {
    for (std::size_t from = 0; from < name.size();) {
      std::size_t dot = name.find('.', from);
      dot = dot == std::string::npos ? name.size() : dot;
      labels.push_back(name.substr(from, dot - from));
      from = dot + 1;
    }
  }
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  std::mt19937_64 rng(11);
  std::vector<std::string> random;
  for (int i = 0; i < 200'000; ++i) {
    std::string name = labels[rng() % labels.size()];
    for (std::uint64_t n = rng() % 10; n > 0; --n) {
      const std::string& label = labels[rng() % labels.size()];
      name.insert(0, 1, '.');
      name.insert(0, label);
    }
    random.push_back(std::move(name));
  }
  CHECK(compare(*ours, theirs.get(), random) > 190'000);

  // Odd inputs: a leading dot, empty labels, a final dot, wildcard and exception marks.
  CHECK(compare(*ours, theirs.get(),
                {".", ".com", "a..com", "com.", "a.com.", "..", "*", "*.com", "!www.ck", "www.ck",
                 "a.www.ck", "a.b.ck", "ck", "a.b.c.d.e.f.g.h.i.j.k.co.uk",
                 "a.b.c.d.e.f.g.h.i.kawasaki.jp", std::string(255, 'a'),
                 std::string(100, 'a') + "." + std::string(100, 'b') + ".co.uk"}) == 17);
}

TEST_CASE("stable domains have no rule below them", "[metrics][domains]") {
  const auto list = PublicSuffixList::load(PublicSuffixList::kSystemList);
  CHECK_FALSE(list->stable("com"));            // "co.com" and many more
  CHECK_FALSE(list->stable("amazonaws.com"));  // "s3.amazonaws.com"
  CHECK_FALSE(list->stable("ck"));             // "*.ck"
  CHECK_FALSE(list->stable("kawasaki.jp"));    // "*.kawasaki.jp"
  CHECK(list->stable("example.com"));
  CHECK(list->stable("www.ck"));  // "!www.ck": registrable, nothing below it
}

TEST_CASE("small crafted lists: rule forms, internationalised rules, comments",
          "[metrics][domains]") {
  const TempList file(
      "// a comment\n"
      "   // an indented comment\n"
      "\n"
      "com\n"
      "  co.com   trailing words are ignored\r\n"
      "*.wild.test\n"
      "!keep.wild.test\n"
      "*bad.test\n"
      "公司.cn\n"
      "*.香港\n"
      "!例.香港\n"
      "\t深.a.test\n");
  const auto ours = PublicSuffixList::load(file.path);
  const PslHandle theirs(psl_load_file(file.path.c_str()));
  REQUIRE(theirs != nullptr);
  CHECK(ours->rules() == 8);  // "*bad.test" is not a rule form libpsl knows
  const std::string text = read_file(file.path.c_str());
  auto names = names_around_rules(text);
  for (const char* extra :
       {"x.bad.test", "bad.test", "a.keep.wild.test", "keep.wild.test", "z.wild.test", "wild.test",
        "a.b.xn--55qx5d.cn", "xn--55qx5d.cn", "a.xn--j6w193g", "b.a.xn--j6w193g",
        "xn--fsq.xn--j6w193g", "y.xn--fsq.xn--j6w193g", "x.xn--1lq.a.test", "a.co.com"}) {
    names.emplace_back(extra);
  }
  CHECK(compare(*ours, theirs.get(), names) > 100);
  CHECK(ours->registrable_length("x.y.xn--55qx5d.cn") ==
        std::string_view("y.xn--55qx5d.cn").size());
  CHECK_FALSE(ours->stable("a.test"));  // the ASCII form of "深.a.test" lies below it
  CHECK(ours->stable("b.a.test"));
}

TEST_CASE("lists that cannot be used are refused with a reason", "[metrics][domains]") {
  CHECK_THROWS_WITH(PublicSuffixList::load("/nonexistent/public_suffix_list.dat"),
                    Catch::Contains("missing, unreadable or empty"));
  const TempList empty("");
  CHECK_THROWS_WITH(PublicSuffixList::load(empty.path),
                    Catch::Contains("missing, unreadable or empty"));
  const TempList comments("// nothing\n\n   \n//else\n");
  CHECK_THROWS_WITH(PublicSuffixList::load(comments.path), Catch::Contains("no rule"));
  const TempList huge(std::string(PublicSuffixList::kMaxListBytes + 10, 'a'));
  CHECK_THROWS_WITH(PublicSuffixList::load(huge.path), Catch::Contains("larger than 16 MiB"));
  CHECK_THROWS_WITH(PublicSuffixList::load("/"), Catch::Contains("cannot load"));
}

TEST_CASE("rules deeper than the domain cache allows, and huge key sets, are refused",
          "[metrics][domains]") {
  const TempList deep("com\na.b.c.d.e.f\n");  // six labels: the cache keys by the last six
  CHECK_THROWS_WITH(PublicSuffixList::load(deep.path),
                    Catch::Contains("\"a.b.c.d.e.f\" has 6 labels; at most 5"));
  const TempList deep_wildcard("*.b.c.d.e.f\n");
  CHECK_THROWS_WITH(PublicSuffixList::load(deep_wildcard.path), Catch::Contains("has 6 labels"));
  const TempList five("*.b.c.d.e\n!x.b.c.d.e\na.b.c.d.e\n");
  CHECK(PublicSuffixList::load(five.path)->rules() == 3);
  // 123-byte rules of 5 labels with distinct tails: 365 bytes of keys per line of 124.
  std::string many;
  std::array<char, 8> hex{};
  for (unsigned i = 0; many.size() < 12'000'000; ++i) {
    std::snprintf(hex.data(), hex.size(), "%06x", i);
    const std::string l = std::string(hex.data()) + std::string(17, 'x');
    for (const std::string_view part : {"a.", "b.", "c.", "d."}) {
      many += l;
      many += part;
    }
    many += l;
    many += '\n';
  }
  const TempList huge(many);
  CHECK_THROWS_WITH(PublicSuffixList::load(huge.path), Catch::Contains("more than 32 MiB"));
}

TEST_CASE("a NUL ends a line's rule, as libpsl reads it", "[metrics][domains]") {
  const TempList file(std::string("com\nnul.com\0junk.more\n", 22));
  const auto ours = PublicSuffixList::load(file.path);
  const PslHandle theirs(psl_load_file(file.path.c_str()));
  REQUIRE(theirs != nullptr);
  CHECK(compare(*ours, theirs.get(), {"a.nul.com", "nul.com", "x.junk.more", "b.a.nul.com"}) == 4);
  CHECK(ours->registrable_length("a.nul.com") == 9);
}

TEST_CASE("a compiled list goes through libpsl and agrees with the text", "[metrics][domains]") {
  if (!std::ifstream(kDafsa) || !std::ifstream(PublicSuffixList::kSystemList)) {
    WARN("no " << kDafsa << " or text list (package publicsuffix): not checked");
    return;
  }
  const auto compiled = PublicSuffixList::load(kDafsa);
  const auto text = PublicSuffixList::load(PublicSuffixList::kSystemList);
  CHECK(compiled->rules() == 0);
  CHECK_FALSE(compiled->stable("example.com"));  // no text, no stable tier
  for (const char* name :
       {"www.example.com", "a.b.example.co.uk", "x.s3.amazonaws.com", "printer.lan", "com",
        "a.b.c.kawasaki.jp", "city.kawasaki.jp", "y.xn--55qx5d.cn"}) {
    CAPTURE(name);
    CHECK(compiled->registrable_length(name) == text->registrable_length(name));
  }
}

}  // namespace dnsmon::detail
