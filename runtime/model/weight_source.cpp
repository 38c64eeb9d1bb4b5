#include "runtime/model/weight_source.h"

namespace moe {

TensorView PackedSource::tensor(std::string_view name) const {
  const PackedTensor t = store_.tensor(name);
  TensorView v;
  v.name = t.name;
  v.file = t.file;
  v.dtype = t.dtype;
  v.shape = t.shape;
  v.data = t.data;
  v.nbytes = t.bytes;
  v.quant = t.quant;
  return v;
}

}  // namespace moe
