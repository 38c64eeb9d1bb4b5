// An in-process Communicator over threads, for unit tests of the parallel runtime without MPI:
// rank r of a world is the thread that holds communicator r. Collectives meet in a shared world
// state (one mutex, one condition variable); point-to-point messages are per-(src, dst, tag) FIFO
// queues of byte vectors, so send() never blocks and recv() waits for the matching message.
//
// Contracts (the same as the MPI implementation where they overlap):
// - all_reduce_sum adds the ranks' buffers in rank order, ((r0 + r1) + r2) + ..., in float, so
//   every rank ends with the same bits.
// - Collectives check that every rank called the same operation with the same size and root;
//   a mismatch throws moe::Error on the rank that noticed it.
// - Waits are unbounded, but a failure of any rank wakes every waiting rank of the world (every
//   communicator split from it included): abort() on one rank, or an exception escaping the body
//   under run_on_threads, makes every pending and later call on the other ranks throw
//   moe::Error("<op> on rank R of N (threads): rank F failed: <why>").
// - memory() is kHost; name() is "threads".
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "parallel/communicator.h"

namespace moe::parallel {

// One communicator per rank, [0, size). Communicator r must be used by one thread at a time.
// Throws moe::Error when size < 1.
std::vector<std::unique_ptr<Communicator>> make_thread_world(int size);

// Makes a world of `size` ranks, runs body(communicator r) on thread r for every r, joins them
// all and, if any rank threw (or aborted), rethrows the exception of the rank that failed first:
// the root cause, not the "rank F failed" errors it caused on the others. An exception escaping
// body on one rank fails the world, so the other ranks' waits end instead of hanging.
void run_on_threads(int size, const std::function<void(Communicator&)>& body);

}  // namespace moe::parallel
