// The coordinator's few security rules, as pure functions: which listen addresses are local, the
// shared-token comparison (constant time), the bearer metadata both sides use, and reading the
// PEM files for TLS.
#pragma once

#include <string>
#include <string_view>

namespace moe::coordinator {

// The metadata key and value that carry the shared token on every call.
inline constexpr const char* kAuthorizationKey = "authorization";  // lower case, as gRPC requires
std::string bearer(std::string_view token);                        // "Bearer <token>"

// True for addresses only this machine reaches: 127.0.0.0/8, [::1], localhost, unix: sockets.
// "0.0.0.0:7000", "[::]:7000", a host name or an interface address are not.
bool is_loopback_address(std::string_view listen_address);

// Compares in time that depends only on the lengths, not on where the first difference is.
bool constant_time_equal(std::string_view a, std::string_view b);

// The whole file; throws moe::Error naming `what` ("--tls-cert") and the path when it cannot be read
// or is empty.
std::string read_pem_file(const std::string& path, const char* what);

}  // namespace moe::coordinator
