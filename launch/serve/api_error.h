// An error answered to an HTTP client in OpenAI's shape, with the status it belongs to:
// {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace moe::serve {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = {}, std::string code = {})
      : std::runtime_error(message), status_(status), param_(std::move(param)), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string param_;
  std::string code_;
};

// OpenAI's error type for a status: invalid_request_error (4xx but 401), authentication_error,
// server_error (5xx).
const char* error_type(int status);
// The JSON body of an error.
nlohmann::json error_body(int status, const std::string& message, const std::string& param = {},
                          const std::string& code = {});

// 400 with a parameter name: the usual validation failure.
[[noreturn]] inline void bad_request(const std::string& param, const std::string& message) {
  throw ApiError(400, message, param);
}

}  // namespace moe::serve
