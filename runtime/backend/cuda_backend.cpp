// The CUDA backend: construction, memory, copies, host waits and graph pieces. Ops are in
// cuda_backend_ops.cpp.
#include "runtime/backend/cuda_backend.h"

#include <cstdlib>
#include <cstring>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/quant_repack.cuh"
#include "runtime/backend/cuda_backend_impl.h"
#include "runtime/core/error.h"

namespace moe {
namespace {

constexpr size_t kRingBytes = size_t{8} << 20;

bool graphs_from_env(bool dflt) {
  const char* v = std::getenv("MOE_CUDA_GRAPHS");
  if (v == nullptr) return dflt;
  return std::strcmp(v, "0") != 0;
}

}  // namespace

cuda::QFormat qformat_of(QuantType t) {
  switch (t) {
    case QuantType::kQ8: return cuda::QFormat::kQ8;
    case QuantType::kQ4: return cuda::QFormat::kQ4;
    case QuantType::kQ3: return cuda::QFormat::kQ3;
    case QuantType::kQ2:
      return cuda::QFormat::kQ2;
    MOE_GGML_QUANT_CASES:
      break;
  }
  return cuda::QFormat::kNone;
}

cuda::GgmlType ggml_type_of(QuantType t) {
  switch (t) {
    case QuantType::kGgmlQ4_0: return cuda::GgmlType::kQ4_0;
    case QuantType::kGgmlQ4_1: return cuda::GgmlType::kQ4_1;
    case QuantType::kGgmlQ5_0: return cuda::GgmlType::kQ5_0;
    case QuantType::kGgmlQ5_1: return cuda::GgmlType::kQ5_1;
    case QuantType::kGgmlQ8_0: return cuda::GgmlType::kQ8_0;
    case QuantType::kGgmlQ2_K: return cuda::GgmlType::kQ2_K;
    case QuantType::kGgmlQ3_K: return cuda::GgmlType::kQ3_K;
    case QuantType::kGgmlQ4_K: return cuda::GgmlType::kQ4_K;
    case QuantType::kGgmlQ5_K: return cuda::GgmlType::kQ5_K;
    case QuantType::kGgmlQ6_K: return cuda::GgmlType::kQ6_K;
    case QuantType::kGgmlIQ4_XS: return cuda::GgmlType::kIQ4_XS;
    case QuantType::kQ8:
    case QuantType::kQ4:
    case QuantType::kQ3:
    case QuantType::kQ2: break;
  }
  fail("cuda backend: ", quant_format_name(QuantFormat{t, 0}), " is not a ggml type");
}

cuda::GgmlWeight ggml_operand(const Tensor& w, const char* op, const char* what) {
  MOE_CHECK(w.device == Device::kCuda, "cuda backend: ", op, ": ", what, " ", shape_str(w),
            " is not in device memory (load it with load_weight)");
  MOE_CHECK(is_ggml_weight(w), "cuda backend: ", op, ": ", what, " is not a ggml-typed weight");
  cuda::GgmlWeight o;
  o.data = w.data;
  o.type = ggml_type_of(w.quant->type);
  o.k = w.rank == 0 ? 1 : w.dim(w.rank - 1);
  o.n = o.k == 0 ? 0 : w.numel() / o.k;
  MOE_CHECK(o.k % cuda::ggml_block_elems(o.type) == 0, "cuda backend: ", op, ": ", what, " ", shape_str(w),
            ": row length is not a multiple of the ", quant_format_name(*w.quant), " block");
  return o;
}

cuda::Elem elem_of(DType t, const char* op, const char* what) {
  if (!dtype_is_compute(t))
    fail("cuda backend: ", op, ": ", what, " has dtype ", dtype_name(t),
         "; the CUDA backend computes over F32, F16, BF16", " and the quantized formats");
  switch (compute_type(t)) {
    case ComputeType::kF32: return cuda::Elem::kF32;
    case ComputeType::kF16: return cuda::Elem::kF16;
    case ComputeType::kBF16: return cuda::Elem::kBF16;
  }
  return cuda::Elem::kF32;
}

cuda::WeightOperand weight_operand(const Tensor& w, const char* op, const char* what) {
  MOE_CHECK(w.device == Device::kCuda, "cuda backend: ", op, ": ", what, " ", shape_str(w),
            " is not in device memory (load it with load_weight)");
  cuda::WeightOperand o;
  o.data = w.data;
  o.k = w.rank == 0 ? 1 : w.dim(w.rank - 1);
  o.n = o.k == 0 ? 0 : w.numel() / o.k;
  if (w.quant) {
    MOE_CHECK(!is_ggml(w.quant->type), "cuda backend: ", op, ": ", what, " is ", quant_format_name(*w.quant),
              ", a ggml type, which this op does not take yet");
    o.q = qformat_of(w.quant->type);
    o.group = w.quant->group_size;
  } else {
    o.elem = elem_of(w.dtype, op, what);
  }
  return o;
}

cuda::BiasOperand bias_operand(const Tensor& b) {
  cuda::BiasOperand o;
  if (b.empty()) return o;
  o.data = b.data;
  o.elem = elem_of(b.dtype, "linear", "bias");
  return o;
}

CudaBackend::Impl::Impl(const CudaBackendOptions& o)
    : options(o), props(cuda::select_device(o.device)), ring(kRingBytes), graphs(stream.get()) {
  options.graphs = graphs_from_env(o.graphs);
}

void CudaBackend::Impl::begin_op(int64_t rows) {
  if (graphs.capturing()) {
    if (rows != 1) {
      flush_capture();
      piece_eager = true;
    }
    return;
  }
  if (options.graphs && rows == 1 && !piece_eager) {
    graphs.begin();
    return;
  }
  if (rows != 1) piece_eager = true;
}

void CudaBackend::Impl::flush_capture() {
  if (graphs.capturing()) graphs.end_and_launch(piece, stats);
}

void CudaBackend::Impl::host_wait(bool end_of_step) {
  const bool captured = graphs.capturing();
  flush_capture();
  if (!captured) ++stats.eager_pieces;
  stream.synchronize();
  ring_used = 0;
  piece = end_of_step ? 0 : piece + 1;
  piece_eager = false;
}

void* CudaBackend::Impl::ring_alloc(size_t bytes) {
  const size_t need = (bytes + 15) / 16 * 16;
  MOE_CHECK(need <= ring.size(), "cuda backend: ", bytes, " bytes of host arguments exceed the ", ring.size(),
            "-byte ring");
  if (ring_used + need > ring.size()) {  // everything queued may still read the ring: wait for it
    flush_capture();
    stream.synchronize();
    ring_used = 0;
    piece_eager = true;  // the graph slots no longer line up with this step's pieces
    ++stats.forced_syncs;
  }
  void* p = static_cast<char*>(ring.get()) + ring_used;
  ring_used += need;
  return p;
}

float* CudaBackend::Impl::work_floats(int64_t floats) {
  const size_t bytes = static_cast<size_t>(floats < 1 ? 1 : floats) * sizeof(float);
  if (bytes > work.size()) {
    flush_capture();
    piece_eager = true;
    work.reserve(bytes);
  }
  return static_cast<float*>(work.get());
}

CudaBackend::CudaBackend(const CudaBackendOptions& options) : impl_(std::make_unique<Impl>(options)) {}
CudaBackend::~CudaBackend() {
  // Work still queued may read memory about to be freed; errors are ignored (a destructor must
  // not throw, and a failed stream has nothing left to wait for).
  if (impl_ && !impl_->graphs.capturing()) cudaStreamSynchronize(impl_->s());
}

std::string CudaBackend::name() const {
  const cuda::DeviceProps& p = impl_->props;
  const auto tenths_gib = static_cast<long long>(static_cast<double>(p.total_memory) / double(1 << 30) * 10 + 0.5);
  return str_cat("cuda:", p.index, " (", p.name, ", sm_", p.major, p.minor, ", ", p.multiprocessors, " SMs, ",
                 tenths_gib / 10, ".", tenths_gib % 10, " GiB", impl_->options.graphs ? ", graphs" : ", no graphs",
                 ")");
}

CudaBackendStats CudaBackend::stats() const {
  CudaBackendStats s = impl_->stats;
  s.device_bytes = impl_->pool.bytes_used();
  return s;
}

int CudaBackend::device_index() const {
  return impl_->props.index;
}

double CudaBackend::peak_bandwidth_gbs() const {
  return impl_->props.peak_bandwidth_gbs();
}

int cuda_device_count() {
  return cuda::device_count();
}

Tensor CudaBackend::alloc(DType dtype, std::initializer_list<int64_t> shape) {
  Tensor t(nullptr, dtype, Device::kCuda, shape);
  t.data = impl_->pool.allocate(t.nbytes());
  return t;
}

Tensor CudaBackend::load_weight(const TensorView& w) {
  Tensor t;
  t.dtype = w.dtype;
  t.quant = w.quant;
  t.device = Device::kCuda;
  MOE_CHECK(w.shape.size() <= t.shape.size(), w.file, ": tensor '", w.name, "' has rank ", w.shape.size());
  t.rank = static_cast<int>(w.shape.size());
  for (size_t i = 0; i < w.shape.size(); ++i) t.shape[i] = w.shape[i];
  MOE_CHECK(t.nbytes() == w.nbytes, w.file, ": tensor '", w.name, "': ", w.nbytes, " bytes for shape ", shape_str(t));
  Impl& m = *impl_;
  m.flush_capture();
  t.data = m.pool.allocate(w.nbytes);
  if (w.nbytes == 0) return t;
  if (!w.quant || is_ggml(w.quant->type)) {  // ggml blocks stay in their stored layout
    MOE_CUDA_CHECK(cudaMemcpy(t.data, w.data, w.nbytes, cudaMemcpyHostToDevice));
    return t;
  }
  const int64_t K = t.dim(t.rank - 1);
  MOE_CHECK(K % w.quant->group_size == 0, w.file, ": tensor '", w.name, "': row length ", K,
            " is not a multiple of the group size ", w.quant->group_size);
  m.upload.reserve(w.nbytes);
  MOE_CUDA_CHECK(cudaMemcpy(m.upload.get(), w.data, w.nbytes, cudaMemcpyHostToDevice));
  cuda::repack_quantized(m.upload.get(), t.data, t.numel() / K, K, qformat_of(w.quant->type), w.quant->group_size,
                         m.s());
  m.stream.synchronize();  // the staging buffer is reused by the next weight
  return t;
}

Tensor CudaBackend::adopt_weight_in_place(Tensor w) {
  if (!w.quant || is_ggml(w.quant->type)) return w;  // ggml blocks: the stored layout is the device one
  MOE_CHECK(w.device == Device::kCuda, "cuda backend: adopt_weight_in_place needs a weight in device memory, got ",
            shape_str(w), " on the host");
  Impl& m = *impl_;
  m.flush_capture();
  const uint64_t bytes = w.nbytes();
  m.upload.reserve(bytes);
  MOE_CUDA_CHECK(cudaMemcpyAsync(m.upload.get(), w.data, bytes, cudaMemcpyDeviceToDevice, m.s()));
  const int64_t K = w.dim(w.rank - 1);
  cuda::repack_quantized(m.upload.get(), w.data, w.numel() / K, K, qformat_of(w.quant->type), w.quant->group_size,
                         m.s());
  m.stream.synchronize();
  return w;
}

void CudaBackend::copy_from_host(const void* src, uint64_t bytes, Tensor& dst) {
  MOE_CHECK(bytes <= dst.nbytes(), "cuda backend: copy of ", bytes, " bytes into ", dst.nbytes());
  Impl& m = *impl_;
  if (bytes <= (64u << 10)) {  // small (token ids): through the ring, so it can sit in a graph
    void* staged = m.ring_alloc(bytes);
    std::memcpy(staged, src, bytes);
    MOE_CUDA_CHECK(cudaMemcpyAsync(dst.data, staged, bytes, cudaMemcpyHostToDevice, m.s()));
    return;
  }
  m.flush_capture();
  m.piece_eager = true;
  MOE_CUDA_CHECK(cudaMemcpyAsync(dst.data, src, bytes, cudaMemcpyHostToDevice, m.s()));
  m.stream.synchronize();  // src is pageable and the caller may reuse it on return
}

void CudaBackend::copy_to_host(const Tensor& src, void* dst, uint64_t bytes) {
  MOE_CHECK(bytes <= src.nbytes(), "cuda backend: copy of ", bytes, " bytes from ", src.nbytes());
  Impl& m = *impl_;
  if (m.readback.size() < bytes) {
    m.flush_capture();
    m.piece_eager = true;
    m.stream.synchronize();
    m.readback = cuda::PinnedBuffer(bytes);
  }
  MOE_CUDA_CHECK(cudaMemcpyAsync(m.readback.get(), src.data, bytes, cudaMemcpyDeviceToHost, m.s()));
  m.host_wait(/*end_of_step=*/true);
  std::memcpy(dst, m.readback.get(), bytes);
}

void CudaBackend::synchronize() {
  impl_->host_wait(/*end_of_step=*/false);
}

}  // namespace moe
