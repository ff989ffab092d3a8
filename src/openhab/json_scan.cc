#include "openhab/json_scan.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <utility>

namespace iothub::openhab {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The bytes that stand for themselves inside a JSON string: printable ASCII but '"' and '\'.
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> plain{};
  for (std::size_t b = 0x20; b < 0x80; ++b) plain[b] = b != '"' && b != '\\';
  return plain;
}();

bool IsPlain(char c) { return kPlain[static_cast<unsigned char>(c)]; }

// Writes the UTF-8 form of `code_point` (at most U+10FFFF) at `w`; returns the end.
char* AppendUtf8(std::uint32_t code_point, char* w) {
  if (code_point < 0x80) {
    *w++ = static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    *w++ = static_cast<char>(0xC0 | (code_point >> 6));
    *w++ = static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    *w++ = static_cast<char>(0xE0 | (code_point >> 12));
    *w++ = static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    *w++ = static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    *w++ = static_cast<char>(0xF0 | (code_point >> 18));
    *w++ = static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    *w++ = static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    *w++ = static_cast<char>(0x80 | (code_point & 0x3F));
  }
  return w;
}

// The length of the well-formed UTF-8 sequence (RFC 3629, as nlohmann's lexer checks it:
// no overlong forms, no surrogates, nothing above U+10FFFF) that starts with a byte >= 0x80
// at `p`, or 0 when it is ill-formed or cut off by `end`.
std::size_t Utf8Length(const char* p, const char* end) {
  const auto left = static_cast<std::size_t>(end - p);
  const auto in = [&](std::size_t i, unsigned lo, unsigned hi) {
    if (i >= left) return false;
    const auto b = static_cast<unsigned char>(p[i]);
    return b >= lo && b <= hi;
  };
  const auto lead = static_cast<unsigned char>(p[0]);
  if (lead >= 0xC2 && lead <= 0xDF) return in(1, 0x80, 0xBF) ? 2 : 0;
  if (lead == 0xE0) return in(1, 0xA0, 0xBF) && in(2, 0x80, 0xBF) ? 3 : 0;
  if (lead == 0xED) return in(1, 0x80, 0x9F) && in(2, 0x80, 0xBF) ? 3 : 0;
  if (lead >= 0xE1 && lead <= 0xEF) return in(1, 0x80, 0xBF) && in(2, 0x80, 0xBF) ? 3 : 0;
  if (lead == 0xF0) return in(1, 0x90, 0xBF) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
  if (lead >= 0xF1 && lead <= 0xF3) {
    return in(1, 0x80, 0xBF) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
  }
  if (lead == 0xF4) return in(1, 0x80, 0x8F) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
  return 0;
}

// A cursor over the text. Every method returns false when the text is not what the flat
// grammar expects; the position is then meaningless.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool AtEnd() const { return p_ == end_; }

  void SkipSpace() {
    while (p_ != end_ && IsSpace(*p_)) ++p_;
  }

  bool Consume(char c) {
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }

  // A string, from its opening quote, unescaped into `out`. Most strings have no escapes
  // and are copied as they stand; the others are unescaped into `scratch_` first.
  bool String(std::string& out) {
    if (!Consume('"')) return false;
    const char* const start = p_;
    char* no_copy = nullptr;
    if (!Unescaped</*kCopy=*/false>(no_copy)) return false;
    if (*p_ == '"') {
      out = std::string(start, p_);  // constructing costs less than assign()
      ++p_;
      return true;
    }
    // At the first backslash. No escape is shorter than what it stands for, so the rest of
    // the text bounds the unescaped string, and `w` stays within `scratch_`.
    const auto bound = static_cast<std::size_t>(end_ - start);
    if (scratch_.size() < bound) scratch_.resize(bound);
    char* w = std::copy(start, p_, scratch_.data());
    do {
      if (!Escape(w) || !Unescaped</*kCopy=*/true>(w)) return false;
    } while (*p_ != '"');
    out = std::string(scratch_.data(), w);
    ++p_;
    return true;
  }

  bool Value(FlatValue& value) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '"':
        value.kind = FlatValue::Kind::kString;
        return String(value.text);
      case 'n':
        value.kind = FlatValue::Kind::kNull;
        return Literal("null");
      case 't':
        value.kind = FlatValue::Kind::kTrue;
        return Literal("true");
      case 'f':
        value.kind = FlatValue::Kind::kFalse;
        return Literal("false");
      default:
        return Integer(value);
    }
  }

 private:
  // Over plain bytes and well-formed UTF-8 up to a quote or a backslash (true, `p_` at it),
  // or to anything a JSON string may not hold raw (false). With kCopy the bytes passed over
  // are also written at `w`, which must have room for as many as are left in the text.
  template <bool kCopy>
  bool Unescaped(char*& w) {
    for (;;) {
      while (p_ != end_ && IsPlain(*p_)) {
        if constexpr (kCopy) *w++ = *p_;
        ++p_;
      }
      if (p_ == end_) return false;  // no closing quote
      const char c = *p_;
      if (c == '"' || c == '\\') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;  // a raw control character
      const std::size_t length = Utf8Length(p_, end_);
      if (length == 0) return false;
      for (std::size_t i = 0; i < length; ++i) {
        if constexpr (kCopy) *w++ = *p_;
        ++p_;
      }
    }
  }

  // At a backslash; the character it stands for is written at `w`, which is advanced.
  bool Escape(char*& w) {
    ++p_;
    if (p_ == end_) return false;
    switch (*p_++) {
      case '"':
        *w++ = '"';
        return true;
      case '\\':
        *w++ = '\\';
        return true;
      case '/':
        *w++ = '/';
        return true;
      case 'b':
        *w++ = '\b';
        return true;
      case 'f':
        *w++ = '\f';
        return true;
      case 'n':
        *w++ = '\n';
        return true;
      case 'r':
        *w++ = '\r';
        return true;
      case 't':
        *w++ = '\t';
        return true;
      case 'u':
        break;
      default:
        return false;
    }
    std::uint32_t code_point = 0;
    if (!Hex4(code_point)) return false;
    if (code_point >= 0xD800 && code_point <= 0xDBFF) {
      // A high surrogate must be followed by an escaped low one.
      std::uint32_t low = 0;
      if (!Consume('\\') || !Consume('u') || !Hex4(low) || low < 0xDC00 || low > 0xDFFF) {
        return false;
      }
      code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
    } else if (code_point >= 0xDC00 && code_point <= 0xDFFF) {
      return false;  // a lone low surrogate
    }
    w = AppendUtf8(code_point, w);
    return true;
  }

  bool Hex4(std::uint32_t& out) {
    if (end_ - p_ < 4) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = *p_++;
      std::uint32_t digit = 0;
      if (c >= '0' && c <= '9') {
        digit = static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
      out = out * 16 + digit;
    }
    return true;
  }

  bool Literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  // `-?(0|[1-9][0-9]*)` of at most 18 digits, so that it fits either integer type; a fraction
  // or an exponent makes it a double, which is left to nlohmann.
  bool Integer(FlatValue& value) {
    const bool negative = Consume('-');
    const char* digits = p_;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    const auto count = static_cast<std::size_t>(p_ - digits);
    if (count == 0 || count > 18 || (count > 1 && *digits == '0')) return false;
    if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    std::uint64_t magnitude = 0;
    for (const char* d = digits; d != p_; ++d) {
      magnitude = magnitude * 10 + static_cast<std::uint64_t>(*d - '0');
    }
    if (negative) {
      value.kind = FlatValue::Kind::kInteger;
      value.integer_value = -static_cast<std::int64_t>(magnitude);
    } else {
      value.kind = FlatValue::Kind::kUnsigned;
      value.unsigned_value = magnitude;
    }
    return true;
  }

  const char* p_;
  const char* end_;
  std::string scratch_;  // strings with escapes are unescaped here
};

}  // namespace

bool ScanFlatObject(std::string_view text, std::vector<FlatMember>& members) {
  members.clear();
  members.reserve(8);  // enough for an envelope and a state payload
  Scanner s(text);
  s.SkipSpace();
  if (!s.Consume('{')) return false;
  s.SkipSpace();
  if (!s.Consume('}')) {
    for (;;) {
      FlatMember& member = members.emplace_back();
      if (!s.String(member.key)) return false;
      s.SkipSpace();
      if (!s.Consume(':')) return false;
      s.SkipSpace();
      if (!s.Value(member.value)) return false;
      s.SkipSpace();
      if (s.Consume('}')) break;
      if (!s.Consume(',')) return false;
      s.SkipSpace();
    }
  }
  s.SkipSpace();
  return s.AtEnd();
}

nlohmann::json FlatObjectToJson(std::vector<FlatMember>&& members) {
  nlohmann::json object = nlohmann::json::object();
  for (FlatMember& member : members) {
    nlohmann::json& slot = object[std::move(member.key)];
    FlatValue& value = member.value;
    switch (value.kind) {
      case FlatValue::Kind::kNull:
        slot = nullptr;
        break;
      case FlatValue::Kind::kFalse:
        slot = false;
        break;
      case FlatValue::Kind::kTrue:
        slot = true;
        break;
      case FlatValue::Kind::kUnsigned:
        slot = value.unsigned_value;
        break;
      case FlatValue::Kind::kInteger:
        slot = value.integer_value;
        break;
      case FlatValue::Kind::kString:
        slot = std::move(value.text);
        break;
    }
  }
  return object;
}

}  // namespace iothub::openhab
