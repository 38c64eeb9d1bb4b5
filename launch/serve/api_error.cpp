#include "launch/serve/api_error.h"

namespace moe::serve {

const char* error_type(int status) {
  if (status == 401) return "authentication_error";
  if (status >= 500) return "server_error";
  if (status == 404) return "not_found_error";
  return "invalid_request_error";
}

nlohmann::json error_body(int status, const std::string& message, const std::string& param, const std::string& code) {
  nlohmann::json e = {{"message", message}, {"type", error_type(status)}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) e["param"] = param;
  if (!code.empty()) e["code"] = code;
  return {{"error", e}};
}

}  // namespace moe::serve
