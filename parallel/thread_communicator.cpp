#include "parallel/thread_communicator.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

struct Group;

// One collective call, met by every rank of a group: the n-th collective a rank issues on a group
// is round n of that group.
struct Round {
  const char* op = nullptr;  // set by the first rank to arrive; the others must match it
  size_t bytes = 0;
  int root = -1;
  std::vector<std::vector<std::byte>> parts;  // (group size), each rank's contribution
  int arrived = 0;
  int departed = 0;  // the last rank to leave erases the round
  // split() only: built once, by the first rank to leave.
  bool split_done = false;
  std::map<int, std::shared_ptr<Group>> new_groups;  // color -> the new group
  std::vector<int> new_rank;                         // (group size), old rank -> rank in its new group
};

// A set of ranks that can talk: the world itself, or one result of split().
struct Group {
  int id = 0;
  std::vector<int> world_ranks;      // group rank -> world rank
  std::map<uint64_t, Round> rounds;  // round number -> collective in flight
  std::map<std::tuple<int, int, int>, std::deque<std::vector<std::byte>>> mailboxes;  // (src, dst, tag)
};

// Everything the ranks of one world share. All of it (the groups' state included) is guarded by
// `mutex`; `cv` is notified on every change.
struct World {
  std::mutex mutex;
  std::condition_variable cv;
  int next_group_id = 1;  // guarded by mutex
  bool failed = false;    // guarded by mutex
  int failed_rank = -1;   // world rank that failed first; guarded by mutex
  std::string failure;    // "rank F failed: why"; guarded by mutex

  // Records the first failure and wakes every waiting rank; later failures are ignored.
  void fail(int world_rank, const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (failed) return;
      failed = true;
      failed_rank = world_rank;
      failure = str_cat("rank ", world_rank, " failed: ", why);
    }
    cv.notify_all();
  }
};

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<World> world, std::shared_ptr<Group> group, int rank)
      : world_(std::move(world)), group_(std::move(group)), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(group_->world_ranks.size()); }
  std::string name() const override { return "threads"; }
  MemorySpace memory() const override { return MemorySpace::kHost; }

  void all_reduce_sum(float* data, size_t count) override {
    const size_t bytes = count * sizeof(float);
    collective("all_reduce_sum", bytes, -1, copy_bytes(data, bytes), [&](Round& round) {
      // Rank order, in float: the same expression on every rank, hence the same bits.
      for (size_t i = 0; i < count; ++i) {
        float sum = load_float(round.parts[0], i);
        for (size_t r = 1; r < round.parts.size(); ++r) sum += load_float(round.parts[r], i);
        data[i] = sum;
      }
    });
  }

  void all_gather(const void* send, size_t bytes, void* recv) override {
    collective("all_gather", bytes, -1, copy_bytes(send, bytes), [&](Round& round) {
      for (size_t r = 0; r < round.parts.size(); ++r) {
        if (bytes > 0) std::memcpy(static_cast<std::byte*>(recv) + r * bytes, round.parts[r].data(), bytes);
      }
    });
  }

  void broadcast(void* data, size_t bytes, int root) override {
    check_peer("broadcast", root, "root");
    std::vector<std::byte> part = rank_ == root ? copy_bytes(data, bytes) : std::vector<std::byte>{};
    collective("broadcast", bytes, root, std::move(part), [&](Round& round) {
      if (rank_ != root && bytes > 0) std::memcpy(data, round.parts[static_cast<size_t>(root)].data(), bytes);
    });
  }

  void send(const void* data, size_t bytes, int peer, int tag) override {
    check_peer("send", peer, "peer");
    std::vector<std::byte> message = copy_bytes(data, bytes);
    {
      std::lock_guard<std::mutex> lock(world_->mutex);
      throw_if_failed("send");
      group_->mailboxes[{rank_, peer, tag}].push_back(std::move(message));
    }
    world_->cv.notify_all();
  }

  void recv(void* data, size_t bytes, int peer, int tag) override {
    check_peer("recv", peer, "peer");
    std::unique_lock<std::mutex> lock(world_->mutex);
    throw_if_failed("recv");
    std::deque<std::vector<std::byte>>& queue = group_->mailboxes[{peer, rank_, tag}];
    world_->cv.wait(lock, [&] { return world_->failed || !queue.empty(); });
    throw_if_failed("recv");
    MOE_CHECK(queue.front().size() == bytes, where("recv"), ": rank ", peer, " sent ", queue.front().size(),
              " bytes with tag ", tag, ", expected ", bytes);
    if (bytes > 0) std::memcpy(data, queue.front().data(), bytes);
    queue.pop_front();
  }

  void barrier() override {
    collective("barrier", 0, -1, {}, [](Round&) {});
  }

  [[noreturn]] void abort(int code, const std::string& why) override {
    std::fprintf(stderr, "moe: threads rank %d of %d aborting (code %d): %s\n", rank_, size(), code, why.c_str());
    world_->fail(world_rank(), str_cat("abort(", code, "): ", why));
    throw Error(str_cat(where("abort"), ": aborted (code ", code, "): ", why));
  }

  std::unique_ptr<Communicator> split(int color, int key) override {
    std::vector<std::byte> part(2 * sizeof(int));
    std::memcpy(part.data(), &color, sizeof(int));
    std::memcpy(part.data() + sizeof(int), &key, sizeof(int));
    std::unique_ptr<Communicator> result;
    collective("split", 0, -1, std::move(part), [&](Round& round) {
      if (!round.split_done) build_split(round);
      if (color < 0) return;  // like MPI_UNDEFINED: not a member of any new group
      result = std::make_unique<ThreadCommunicator>(world_, round.new_groups.at(color),
                                                    round.new_rank[static_cast<size_t>(rank_)]);
    });
    return result;
  }

 private:
  int world_rank() const { return group_->world_ranks[static_cast<size_t>(rank_)]; }

  std::string where(const char* op) const { return str_cat(op, " on rank ", rank_, " of ", size(), " (threads)"); }

  // Needs world_->mutex held.
  void throw_if_failed(const char* op) const {
    if (world_->failed) throw Error(str_cat(where(op), ": ", world_->failure));
  }

  void check_peer(const char* op, int peer, const char* what) const {
    MOE_CHECK(peer >= 0 && peer < size(), where(op), ": ", what, " ", peer, " is outside [0, ", size(), ")");
  }

  static std::vector<std::byte> copy_bytes(const void* data, size_t bytes) {
    std::vector<std::byte> out(bytes);
    if (bytes > 0) std::memcpy(out.data(), data, bytes);
    return out;
  }

  static float load_float(const std::vector<std::byte>& part, size_t i) {
    float v;
    std::memcpy(&v, part.data() + i * sizeof(float), sizeof(float));
    return v;
  }

  // Posts this rank's `part` to the next round of the group, waits until every rank has posted,
  // then runs consume(round) with the world mutex held.
  template <class Consume>
  void collective(const char* op, size_t bytes, int root, std::vector<std::byte> part, Consume&& consume) {
    std::unique_lock<std::mutex> lock(world_->mutex);
    throw_if_failed(op);
    const uint64_t number = next_round_++;
    Round& round = group_->rounds[number];
    if (round.arrived == 0) {
      round.op = op;
      round.bytes = bytes;
      round.root = root;
      round.parts.resize(static_cast<size_t>(size()));
    } else {
      MOE_CHECK(std::strcmp(round.op, op) == 0 && round.bytes == bytes && round.root == root, where(op),
                ": collective #", number, " mismatch: this rank called ", op, "(", bytes, " bytes, root ", root,
                ") where another rank called ", round.op, "(", round.bytes, " bytes, root ", round.root, ")");
    }
    round.parts[static_cast<size_t>(rank_)] = std::move(part);
    ++round.arrived;
    if (round.arrived == size()) world_->cv.notify_all();
    world_->cv.wait(lock, [&] { return world_->failed || round.arrived == size(); });
    throw_if_failed(op);
    consume(round);
    if (++round.departed == size()) group_->rounds.erase(number);
  }

  // Groups the ranks of `round` by color (>= 0), each ordered by (key, rank) like MPI_Comm_split.
  // Needs world_->mutex held.
  void build_split(Round& round) {
    std::map<int, std::vector<std::pair<int, int>>> members;  // color -> (key, old rank)
    for (size_t r = 0; r < round.parts.size(); ++r) {
      int c = 0;
      int k = 0;
      std::memcpy(&c, round.parts[r].data(), sizeof(int));
      std::memcpy(&k, round.parts[r].data() + sizeof(int), sizeof(int));
      if (c >= 0) members[c].emplace_back(k, static_cast<int>(r));
    }
    round.new_rank.assign(round.parts.size(), -1);
    for (auto& [c, list] : members) {
      std::sort(list.begin(), list.end());
      auto group = std::make_shared<Group>();
      group->id = world_->next_group_id++;
      for (size_t i = 0; i < list.size(); ++i) {
        const int old_rank = list[i].second;
        group->world_ranks.push_back(group_->world_ranks[static_cast<size_t>(old_rank)]);
        round.new_rank[static_cast<size_t>(old_rank)] = static_cast<int>(i);
      }
      round.new_groups.emplace(c, std::move(group));
    }
    round.split_done = true;
  }

  std::shared_ptr<World> world_;
  std::shared_ptr<Group> group_;
  int rank_;
  uint64_t next_round_ = 0;  // this rank's next collective on group_
};

struct ThreadWorld {
  std::shared_ptr<World> state;
  std::vector<std::unique_ptr<Communicator>> comms;
};

ThreadWorld make_world(int size) {
  MOE_CHECK(size >= 1, "make_thread_world: size ", size, " must be at least 1");
  ThreadWorld world{std::make_shared<World>(), {}};
  auto group = std::make_shared<Group>();
  for (int r = 0; r < size; ++r) group->world_ranks.push_back(r);
  for (int r = 0; r < size; ++r) world.comms.push_back(std::make_unique<ThreadCommunicator>(world.state, group, r));
  return world;
}

}  // namespace

std::vector<std::unique_ptr<Communicator>> make_thread_world(int size) {
  return make_world(size).comms;
}

void run_on_threads(int size, const std::function<void(Communicator&)>& body) {
  ThreadWorld world = make_world(size);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(size));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(size));
  try {
    for (int r = 0; r < size; ++r) {
      threads.emplace_back([&, r] {
        try {
          body(*world.comms[static_cast<size_t>(r)]);
        } catch (...) {
          errors[static_cast<size_t>(r)] = std::current_exception();
          world.state->fail(r, describe(errors[static_cast<size_t>(r)]));
        }
      });
    }
  } catch (...) {  // a thread could not start: release the ones that did, then report
    world.state->fail(-1, describe(std::current_exception()));
    for (std::thread& t : threads) t.join();
    throw;
  }
  for (std::thread& t : threads) t.join();

  // Threads are joined: no more concurrent access to the world state.
  if (world.state->failed) {
    const int first = world.state->failed_rank;
    if (first >= 0 && errors[static_cast<size_t>(first)]) std::rethrow_exception(errors[static_cast<size_t>(first)]);
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  if (world.state->failed) throw Error(str_cat("run_on_threads: ", world.state->failure));
}

}  // namespace moe::parallel
