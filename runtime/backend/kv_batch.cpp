#include "runtime/backend/kv_batch.h"

#include <algorithm>

#include "runtime/core/error.h"

namespace moe {

void KvBatchBuilder::clear(int64_t block_size, int64_t max_seq_len) {
  MOE_CHECK(block_size > 0 && block_size <= INT32_MAX && max_seq_len >= 0, "KV batch: block size ", block_size,
            ", context ", max_seq_len);
  batch_.block_size = static_cast<int32_t>(block_size);
  batch_.max_seq_len = static_cast<int32_t>(std::min<int64_t>(max_seq_len, INT32_MAX));
  seqs_.clear();
  table_.clear();
  positions_.clear();
  row_seq_.clear();
}

void KvBatchBuilder::add(int64_t rows, int64_t pos0, std::span<const int32_t> blocks) {
  const int64_t bs = batch_.block_size;
  const int64_t room = static_cast<int64_t>(blocks.size()) * bs;
  MOE_CHECK(rows > 0 && pos0 >= 0, "KV batch: a sequence of ", rows, " rows at position ", pos0);
  MOE_CHECK(pos0 + rows <= room, "KV cache full: a sequence needs ", pos0 + rows, " positions and its ", blocks.size(),
            " blocks of ", bs, " hold ", room);
  MOE_CHECK(pos0 + rows <= INT32_MAX && rows + this->rows() <= INT32_MAX, "KV batch: positions beyond 2^31");
  seqs_.push_back(KvSeqRows{static_cast<int32_t>(this->rows()), static_cast<int32_t>(rows), static_cast<int32_t>(pos0),
                            static_cast<int32_t>(table_.size()), static_cast<int32_t>(blocks.size())});
  table_.insert(table_.end(), blocks.begin(), blocks.end());
  const auto seq = static_cast<int32_t>(seqs_.size() - 1);
  for (int64_t t = 0; t < rows; ++t) {
    positions_.push_back(static_cast<int32_t>(pos0 + t));
    row_seq_.push_back(seq);
  }
}

void check_kv_batch(const Tensor& k_cache, const KvBatch& b, int64_t rows, const char* op) {
  MOE_CHECK(k_cache.rank == 4 && k_cache.dim(2) == b.block_size && b.rows() == rows &&
                static_cast<int64_t>(b.row_seq.size()) == rows,
            op, ": cache ", shape_str(k_cache), " with block size ", b.block_size, " for ", b.rows(),
            " batch rows and ", rows, " token rows");
  for (const KvSeqRows& s : b.seqs)
    MOE_CHECK(s.blocks * int64_t{b.block_size} >= int64_t{s.pos0} + s.rows && s.table0 >= 0 &&
                  static_cast<size_t>(s.table0) + static_cast<size_t>(s.blocks) <= b.block_table.size(),
              "KV cache full: a sequence needs ", int64_t{s.pos0} + s.rows, " positions and has ", s.blocks,
              " blocks of ", b.block_size);
}

const KvBatch& KvBatchBuilder::batch() {
  batch_.seqs = seqs_;
  batch_.block_table = table_;
  batch_.positions = positions_;
  batch_.row_seq = row_seq_;
  return batch_;
}

}  // namespace moe
