// Exact decimal numbers for the C++ consumer: a sign, the digits of the
// magnitude and a scale (value = digits / 10^scale), added digit by digit.
// The service sends every decimal as the canonical text of
// jericommerce.loyalty.v1.Decimal ("-12.5", never an exponent); a double
// would round anything past 2^53 and most fractions, so none is used.
#pragma once

#include <algorithm>
#include <regex>
#include <stdexcept>
#include <string>

class Decimal {
 public:
  Decimal() = default;

  // Parses "-123.4500": an optional "-", digits, an optional fraction.
  static Decimal Parse(const std::string& text) {
    static const std::regex kText(R"((-?)(\d+)(?:\.(\d+))?)");
    std::smatch m;
    if (!std::regex_match(text, m, kText)) throw std::invalid_argument("not a decimal: " + text);
    Decimal d;
    d.negative_ = m[1].length() > 0;
    d.digits_ = m[2].str() + m[3].str();
    d.scale_ = m[3].length();
    return d.Normalized();
  }

  Decimal Plus(const Decimal& other) const {
    size_t scale = std::max(scale_, other.scale_);
    std::string a = digits_ + std::string(scale - scale_, '0');
    std::string b = other.digits_ + std::string(scale - other.scale_, '0');
    Decimal out;
    out.scale_ = scale;
    if (negative_ == other.negative_) {
      out.negative_ = negative_;
      out.digits_ = Add(a, b);
    } else if (Compare(a, b) >= 0) {
      out.negative_ = negative_;
      out.digits_ = Subtract(a, b);
    } else {
      out.negative_ = other.negative_;
      out.digits_ = Subtract(b, a);
    }
    return out.Normalized();
  }

  Decimal Negated() const {
    Decimal out = *this;
    out.negative_ = !negative_ && !IsZero();
    return out;
  }

  int Sign() const { return IsZero() ? 0 : (negative_ ? -1 : 1); }

  // Canonical text, the same as the service's: no trailing zeros in the
  // fraction, no fraction when it is zero, never "-0".
  std::string ToString() const {
    std::string digits = digits_;
    if (digits.size() <= scale_) digits.insert(0, scale_ - digits.size() + 1, '0');
    std::string whole = digits.substr(0, digits.size() - scale_);
    std::string fraction = digits.substr(digits.size() - scale_);
    return (negative_ ? "-" : "") + whole + (fraction.empty() ? "" : "." + fraction);
  }

 private:
  bool IsZero() const { return digits_ == "0"; }

  Decimal Normalized() const {
    Decimal out = *this;
    while (out.scale_ > 0 && out.digits_.size() > 1 && out.digits_.back() == '0') {
      out.digits_.pop_back();
      --out.scale_;
    }
    size_t first = out.digits_.find_first_not_of('0');
    out.digits_ = first == std::string::npos ? "0" : out.digits_.substr(first);
    if (out.digits_ == "0") {
      out.negative_ = false;
      out.scale_ = 0;
    }
    return out;
  }

  // Magnitudes: without leading zeros, the longer is the greater.
  static int Compare(const std::string& a, const std::string& b) {
    auto significant = [](const std::string& s) {
      size_t first = s.find_first_not_of('0');
      return first == std::string::npos ? std::string() : s.substr(first);
    };
    std::string x = significant(a), y = significant(b);
    if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
    return x.compare(y);
  }

  static std::string Add(const std::string& a, const std::string& b) {
    std::string out;
    int carry = 0;
    for (size_t i = 0; i < std::max(a.size(), b.size()) || carry; ++i) {
      int sum = carry;
      if (i < a.size()) sum += a[a.size() - 1 - i] - '0';
      if (i < b.size()) sum += b[b.size() - 1 - i] - '0';
      out.push_back(static_cast<char>('0' + sum % 10));
      carry = sum / 10;
    }
    std::reverse(out.begin(), out.end());
    return out;
  }

  static std::string Subtract(const std::string& a, const std::string& b) {  // a >= b
    std::string out;
    int borrow = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      int diff = a[a.size() - 1 - i] - '0' - borrow - (i < b.size() ? b[b.size() - 1 - i] - '0' : 0);
      borrow = diff < 0;
      out.push_back(static_cast<char>('0' + diff + (borrow ? 10 : 0)));
    }
    std::reverse(out.begin(), out.end());
    return out;
  }

  bool negative_ = false;
  std::string digits_ = "0";
  size_t scale_ = 0;
};
