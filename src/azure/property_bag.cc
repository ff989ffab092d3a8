#include "azure/property_bag.h"

#include <utility>

#include "common/url.h"

namespace iothub::azure {

Result<PropertyBag> ParsePropertyBag(std::string_view bag) {
  PropertyBag out;
  if (bag == "/") {
    return out;
  }
  while (!bag.empty()) {
    const auto amp = bag.find('&');
    const std::string_view entry = bag.substr(0, amp);
    bag = amp == std::string_view::npos ? std::string_view{} : bag.substr(amp + 1);
    if (entry.empty()) {
      continue;  // "a=1&&b=2" or a trailing '&': tolerated, as the SDKs do.
    }
    const auto eq = entry.find('=');
    auto name = UrlDecode(entry.substr(0, eq));
    if (!name) {
      return MakeError("InvalidPropertyBag", "bad percent-escape in property name '" +
                                                 std::string(entry.substr(0, eq)) + "'");
    }
    if (name->empty()) {
      return MakeError("InvalidPropertyBag", "property bag entry with an empty name");
    }
    Property property{std::move(*name), std::nullopt};
    if (eq != std::string_view::npos) {
      auto value = UrlDecode(entry.substr(eq + 1));
      if (!value) {
        return MakeError("InvalidPropertyBag",
                         "bad percent-escape in the value of property '" + property.name + "'");
      }
      property.value = std::move(*value);
    }
    out.push_back(std::move(property));
  }
  return out;
}

std::string EncodePropertyBag(const PropertyBag& bag) {
  std::string out;
  for (const Property& property : bag) {
    if (&property != &bag.front()) {
      out += '&';
    }
    out += UrlEncode(property.name);
    if (property.value) {
      out += '=' + UrlEncode(*property.value);
    }
  }
  return out;
}

bool IsSystemProperty(std::string_view name) { return name.starts_with("$."); }

std::optional<std::string> FindProperty(const PropertyBag& bag, std::string_view name) {
  for (const Property& property : bag) {
    if (property.name == name) {
      return property.value;
    }
  }
  return std::nullopt;
}

}  // namespace iothub::azure
