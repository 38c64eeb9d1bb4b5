#include "runtime/io/tensor_view.h"

#include <sstream>

namespace moe {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s << ", ";
    s << shape[i];
  }
  s << ']';
  return s.str();
}

}  // namespace moe
