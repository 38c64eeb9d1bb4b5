// `moe run` / `moe chat` over several processes (docs/parallel.md): under mpirun every rank
// loads its part of the model (ParallelLayout from --tp/--pp/--ep/--layers), the ranks check that
// they agree (same model, same options, every load succeeded) and fail together with one message
// when they do not; rank 0 then drives generation and prints, the others serve its forward calls.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>

#include "parallel/communicator.h"
#include "parallel/distributed_forward.h"
#include "parallel/mpi_communicator.h"
#include "parallel/parallel_setup.h"
#include "runtime/core/error.h"

namespace moe::cli {

struct Engine;
struct EngineOptions;

// Raised on every rank once rank 0 has printed the failure for all of them: main exits 1 without
// printing it again.
class AlreadyReported : public Error {
 public:
  AlreadyReported() : Error("already reported by rank 0") {}
};

struct Distributed {
  std::unique_ptr<parallel::MpiSession> mpi;
  std::unique_ptr<parallel::Communicator> control;  // MPI: commands, tokens, logits, statuses
  std::unique_ptr<parallel::Communicator> data;     // NCCL (--comm nccl), else null: control carries everything
  parallel::StageComms comms;
  std::unique_ptr<parallel::DistributedForward> driver;
  parallel::ParallelSpec spec;

  parallel::Communicator& data_comm() { return data ? *data : *control; }
  int rank() const { return control->rank(); }
  int size() const { return control->size(); }
  bool drives() const { return control->rank() == 0; }
};

// This machine's host name ("?" when it cannot be read).
std::string host_name();

// Whether these options (or the launch) ask for a distributed engine: --tp/--pp/--ep above 1, or
// started by mpirun/srun with more than one process.
bool distributed_requested(const EngineOptions& o);

// Loads this rank's part of the model into a new Engine (e.dist set). When any rank fails to load
// or the ranks disagree, rank 0 prints every such rank's message and every rank throws
// AlreadyReported.
std::unique_ptr<Engine> load_distributed_engine(const EngineOptions& o);
// The same over a world the caller made (`moe worker`: MPI ranks renumbered in the coordinator's
// plan order); `mpi` (may be null) is kept alive with the engine.
std::unique_ptr<Engine> load_distributed_engine(const EngineOptions& o, std::unique_ptr<parallel::Communicator> world,
                                                std::unique_ptr<parallel::MpiSession> mpi);

// After prepare(): the forward pass's driver (rank 0) or server (the others).
void prepare_distributed(Engine& e);

// Every rank: per-rank lines (layout, weight bytes, collectives, pipeline transfers) gathered to
// rank 0 and printed there to `out`.
void print_rank_stats(std::FILE* out, Engine& e);

// Runs `body` on every rank; an exception on any rank after the ranks agreed stops the whole job
// (MPI_Abort, with the rank and the message), so no rank waits forever for a dead partner.
int run_or_abort(Engine& e, const std::function<int()>& body);

}  // namespace moe::cli
