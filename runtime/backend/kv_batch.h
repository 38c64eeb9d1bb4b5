// Where the token rows of one forward step belong: which sequence each row is part of, its
// position in that sequence, and where the sequence's keys and values live in the paged KV
// storage. The attention ops of every backend take this (host memory, valid for the call).
//
// KV storage of one layer: k and v tensors (num_blocks, n_kv_heads, block_size, head_dim) f32.
// Position p of a sequence is row p % block_size of block table[p / block_size] of that
// sequence. A single-sequence KvCache is the special case of one block of `capacity` rows.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/backend/tensor.h"

namespace moe {

// One sequence's rows in a step. Its rows are consecutive, at consecutive positions.
struct KvSeqRows {
  int32_t row0 = 0;    // first row of this sequence in the step's activations
  int32_t rows = 0;    // its new tokens in this step (a prefill chunk, or one decode token)
  int32_t pos0 = 0;    // position of row0: positions 0 .. pos0 - 1 are already in the cache
  int32_t table0 = 0;  // its blocks: KvBatch::block_table[table0 .. table0 + blocks)
  int32_t blocks = 0;  // enough for pos0 + rows positions
};

struct KvBatch {
  int32_t block_size = 0;                // positions per block
  int32_t max_seq_len = 0;               // the most positions any sequence may reach (launch shapes)
  std::span<const KvSeqRows> seqs;       // in row order; together they cover rows 0 .. rows() - 1
  std::span<const int32_t> block_table;  // every sequence's blocks, concatenated
  std::span<const int32_t> positions;    // (rows) position of each row
  std::span<const int32_t> row_seq;      // (rows) index into seqs of each row

  int64_t rows() const { return static_cast<int64_t>(positions.size()); }
  const KvSeqRows& seq_of(int64_t row) const { return seqs[static_cast<size_t>(row_seq[static_cast<size_t>(row)])]; }
  // The cache row of row `row`'s position: block * block_size + offset in the block.
  int64_t slot(int64_t row) const {
    const int64_t pos = positions[static_cast<size_t>(row)];
    return int64_t{block_table[static_cast<size_t>(seq_of(row).table0 + pos / block_size)]} * block_size +
           pos % block_size;
  }
};

// What every backend's KV ops check of their arguments: the cache is (num_blocks, n_kv, block_size,
// head_dim) with the batch's block size, the batch describes `rows` rows, and each sequence's blocks
// hold its positions. Block ids are checked against the cache once per step, where the batch is
// made (Transformer), not per op. Throws moe::Error naming `op`.
void check_kv_batch(const Tensor& k_cache, const KvBatch& batch, int64_t rows, const char* op);

// Builds a KvBatch sequence by sequence into arrays it owns and reuses (no allocation once they
// have grown to a step's size).
class KvBatchBuilder {
 public:
  // Starts a new batch over storage of `block_size` positions per block.
  void clear(int64_t block_size, int64_t max_seq_len);
  // Appends a sequence of `rows` new rows at positions pos0 .. with block table `blocks`. Throws
  // moe::Error when the blocks cannot hold pos0 + rows positions.
  void add(int64_t rows, int64_t pos0, std::span<const int32_t> blocks);
  // The batch so far; valid until the next clear() or add().
  const KvBatch& batch();
  int64_t rows() const { return static_cast<int64_t>(positions_.size()); }
  const KvSeqRows& seq(size_t i) const { return seqs_[i]; }

 private:
  KvBatch batch_;
  std::vector<KvSeqRows> seqs_;
  std::vector<int32_t> table_, positions_, row_seq_;
};

}  // namespace moe
