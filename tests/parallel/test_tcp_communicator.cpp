// The TCP Communicator: every operation against the same references as the thread and MPI tests
// (tests/parallel/comm_test_data.h), on world sizes 1 to 4 with each rank a thread of this
// process on 127.0.0.1; large transfers both ways at once; tag reordering; split; and failures:
// a peer that leaves, crashes (severed sockets, a killed child process) or aborts, timeouts, and
// handshakes that must fail naming both ends. Every wait is bounded (call_timeout, and
// within_seconds around the whole world).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <future>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "parallel/tcp_communicator.h"
#include "runtime/core/error.h"
#include "tests/parallel/comm_test_data.h"
#include "tests/parallel/within_seconds.h"

namespace moe::parallel {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

constexpr uint32_t kSeed = 4321;

using test::float_bits;
using test::random_bytes;
using test::random_floats;
using test::u;
using test::within_seconds;

TcpOptions test_options() {
  TcpOptions options;
  options.connect_timeout = milliseconds(10000);
  options.call_timeout = milliseconds(30000);  // a bound on every wait: a bug fails, never hangs
  return options;
}

struct Listeners {
  std::vector<TcpListener> listeners;
  std::vector<std::string> addresses;  // "127.0.0.1:port", by rank
};

Listeners make_listeners(int n) {
  Listeners out;
  for (int r = 0; r < n; ++r) {
    out.listeners.emplace_back("127.0.0.1", 0);
    out.addresses.push_back("127.0.0.1:" + std::to_string(out.listeners.back().port()));
  }
  return out;
}

// Connects a world of n ranks, one thread each, runs body(communicator, addresses) on every rank,
// destroys each rank's communicator on its thread, joins, and rethrows the first rank's exception.
void run_tcp_world(int n, const std::function<void(Communicator&, const std::vector<std::string>&)>& body,
                   const TcpOptions& options = test_options()) {
  within_seconds(60, [&] {
    Listeners world = make_listeners(n);
    std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
    std::vector<std::thread> threads;
    for (int r = 0; r < n; ++r) {
      threads.emplace_back([&, r, listener = std::move(world.listeners[static_cast<size_t>(r)])]() mutable {
        try {
          std::unique_ptr<Communicator> comm = connect_tcp_world(std::move(listener), r, world.addresses, options);
          body(*comm, world.addresses);
        } catch (...) {
          errors[static_cast<size_t>(r)] = std::current_exception();
        }
      });
    }
    for (std::thread& t : threads) t.join();
    for (const std::exception_ptr& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  });
}

class TcpWorld : public ::testing::TestWithParam<int> {};

INSTANTIATE_TEST_SUITE_P(TcpSizes, TcpWorld, ::testing::Values(1, 2, 3, 4),
                         [](const ::testing::TestParamInfo<int>& param_info) {
                           return "np" + std::to_string(param_info.param);
                         });

TEST_P(TcpWorld, RankSizeNameMemory) {
  const int n = GetParam();
  std::vector<int> seen(static_cast<size_t>(n), -1);
  run_tcp_world(n, [&](Communicator& comm, const std::vector<std::string>&) {
    EXPECT_EQ(comm.size(), n);
    EXPECT_EQ(comm.name(), "tcp");
    EXPECT_EQ(comm.memory(), MemorySpace::kHost);
    seen[static_cast<size_t>(comm.rank())] = comm.rank();
  });
  for (int r = 0; r < n; ++r) EXPECT_EQ(seen[static_cast<size_t>(r)], r);
}

TEST_P(TcpWorld, AllReduceSumIsTheRankOrderSumWithIdenticalBits) {
  const int n = GetParam();
  for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}, size_t{300000}}) {
    std::vector<float> expected = random_floats(kSeed, count);  // ((b0 + b1) + b2) + ... in float
    for (int r = 1; r < n; ++r) {
      const std::vector<float> b = random_floats(kSeed + u(r), count);
      for (size_t i = 0; i < count; ++i) expected[i] += b[i];
    }
    std::vector<std::vector<float>> results(static_cast<size_t>(n));
    run_tcp_world(n, [&](Communicator& comm, const std::vector<std::string>&) {
      std::vector<float> data = random_floats(kSeed + u(comm.rank()), count);
      comm.all_reduce_sum(data.data(), data.size());
      results[static_cast<size_t>(comm.rank())] = data;
    });
    for (int r = 0; r < n; ++r) {
      const std::vector<float>& got = results[static_cast<size_t>(r)];
      ASSERT_EQ(got.size(), count);
      for (size_t i = 0; i < count; ++i) {
        ASSERT_EQ(float_bits(got[i]), float_bits(expected[i])) << "rank " << r << " element " << i << " of " << count;
      }
    }
  }
}

TEST_P(TcpWorld, AllGather) {
  const int n = GetParam();
  run_tcp_world(n, [&](Communicator& comm, const std::vector<std::string>&) {
    for (size_t bytes : {size_t{1}, size_t{37}, size_t{100000}}) {
      const std::vector<uint8_t> mine = random_bytes(kSeed + u(comm.rank()), bytes);
      std::vector<uint8_t> all(bytes * static_cast<size_t>(n), 0xee);
      comm.all_gather(mine.data(), bytes, all.data());
      for (int r = 0; r < n; ++r) {
        const std::vector<uint8_t> theirs = random_bytes(kSeed + u(r), bytes);
        EXPECT_TRUE(std::equal(theirs.begin(), theirs.end(), all.begin() + r * static_cast<std::ptrdiff_t>(bytes)))
            << "rank " << comm.rank() << ": slot " << r << " of " << bytes << " bytes";
      }
    }
    comm.all_gather(nullptr, 0, nullptr);  // zero bytes is a valid (empty) collective
  });
}

TEST_P(TcpWorld, BroadcastFromEachRoot) {
  const int n = GetParam();
  run_tcp_world(n, [&](Communicator& comm, const std::vector<std::string>&) {
    for (size_t bytes : {size_t{0}, size_t{100}, size_t{70000}}) {
      for (int root = 0; root < n; ++root) {
        std::vector<uint8_t> data = random_bytes(kSeed + u(comm.rank()), bytes);
        comm.broadcast(data.data(), bytes, root);
        EXPECT_EQ(data, random_bytes(kSeed + u(root), bytes)) << "rank " << comm.rank() << " root " << root;
      }
    }
  });
}

TEST_P(TcpWorld, SendRecvRingWithOutOfOrderTags) {
  const int n = GetParam();
  run_tcp_world(n, [&](Communicator& comm, const std::vector<std::string>&) {
    const int next = (comm.rank() + 1) % n;
    const int prev = (comm.rank() + n - 1) % n;
    const uint32_t me = u(comm.rank());
    const uint32_t from = u(prev);
    // Tag 1, tag 2, then tag 1 again (FIFO within a tag); received as 2, 1, 1. With one rank the
    // ring is a self-send.
    const std::vector<uint8_t> a = random_bytes(100 * me + 1, 16);
    const std::vector<uint8_t> b = random_bytes(100 * me + 2, 40);
    const std::vector<uint8_t> c = random_bytes(100 * me + 3, 16);
    comm.send(a.data(), a.size(), next, 1);
    comm.send(b.data(), b.size(), next, 2);
    comm.send(c.data(), c.size(), next, 1);
    comm.send(nullptr, 0, next, 3);  // an empty message still matches
    std::vector<uint8_t> got_b(40);
    std::vector<uint8_t> got_a(16);
    std::vector<uint8_t> got_c(16);
    comm.recv(nullptr, 0, prev, 3);
    comm.recv(got_b.data(), got_b.size(), prev, 2);
    comm.recv(got_a.data(), got_a.size(), prev, 1);
    comm.recv(got_c.data(), got_c.size(), prev, 1);
    EXPECT_EQ(got_a, random_bytes(100 * from + 1, 16));
    EXPECT_EQ(got_b, random_bytes(100 * from + 2, 40));
    EXPECT_EQ(got_c, random_bytes(100 * from + 3, 16));
  });
}

TEST_P(TcpWorld, SplitEvenOddWithReversedKeys) {
  const int n = GetParam();
  run_tcp_world(n, [&](Communicator& comm, const std::vector<std::string>&) {
    const int me = comm.rank();
    std::unique_ptr<Communicator> half = comm.split(me % 2, -me);
    ASSERT_NE(half, nullptr);
    EXPECT_EQ(half->name(), "tcp");
    std::vector<int> members;  // same parity, by descending world rank
    for (int r = n - 1; r >= 0; --r) {
      if (r % 2 == me % 2) members.push_back(r);
    }
    ASSERT_EQ(half->size(), static_cast<int>(members.size()));
    EXPECT_EQ(members[static_cast<size_t>(half->rank())], me);
    std::vector<int> gathered(members.size());
    half->all_gather(&me, sizeof(int), gathered.data());
    EXPECT_EQ(gathered, members);
    float v = static_cast<float>(me);
    half->all_reduce_sum(&v, 1);  // the halves are independent
    float expected = 0.0f;
    for (int r : members) expected += static_cast<float>(r);
    EXPECT_EQ(v, expected);
    int from_root = me;
    half->broadcast(&from_root, sizeof from_root, 0);
    EXPECT_EQ(from_root, members[0]);
    if (half->size() > 1) {  // point-to-point on the new communicator uses its ranks
      const int to = (half->rank() + 1) % half->size();
      const int from = (half->rank() + half->size() - 1) % half->size();
      half->send(&me, sizeof(int), to, 5);
      int got = -1;
      half->recv(&got, sizeof(int), from, 5);
      EXPECT_EQ(got, members[static_cast<size_t>(from)]);
    }
    // The same tag on the parent is a different channel.
    if (n > 1) {
      const int to = (me + 1) % n;
      const int from = (me + n - 1) % n;
      comm.send(&me, sizeof(int), to, 5);
      int got = -1;
      comm.recv(&got, sizeof(int), from, 5);
      EXPECT_EQ(got, from);
    }
    comm.barrier();  // the parent keeps working
    // A split of a split, and a negative color (MPI_UNDEFINED) leaving rank 0 out.
    std::unique_ptr<Communicator> quarter = half->split(0, half->rank());
    ASSERT_NE(quarter, nullptr);
    EXPECT_EQ(quarter->size(), half->size());
    quarter->barrier();
    std::unique_ptr<Communicator> some = comm.split(me == 0 ? -1 : 0, me);
    if (me == 0) {
      EXPECT_EQ(some, nullptr);
    } else {
      ASSERT_NE(some, nullptr);
      EXPECT_EQ(some->size(), n - 1);
      EXPECT_EQ(some->rank(), me - 1);
      int sum = me;
      std::vector<int> all(static_cast<size_t>(n - 1));
      some->all_gather(&sum, sizeof sum, all.data());
      for (int r = 1; r < n; ++r) EXPECT_EQ(all[static_cast<size_t>(r - 1)], r);
    }
  });
}

TEST_P(TcpWorld, BarrierWaitsForEveryRank) {
  const int n = GetParam();
  std::atomic<int> before{0};
  std::atomic<int> after{0};
  run_tcp_world(n, [&](Communicator& comm, const std::vector<std::string>&) {
    for (int round = 1; round <= 20; ++round) {
      if (comm.rank() == round % n) std::this_thread::sleep_for(milliseconds(1));  // a late arrival
      before.fetch_add(1);
      comm.barrier();
      EXPECT_EQ(before.load(), round * n) << "rank " << comm.rank() << " left barrier " << round << " early";
      after.fetch_add(1);
      comm.barrier();
      EXPECT_EQ(after.load(), round * n);
    }
  });
}

TEST_P(TcpWorld, EightMiBAllGatherAndAllReduce) {
  const int n = GetParam();
  constexpr size_t kBytes = size_t{8} << 20;
  run_tcp_world(n, [&](Communicator& comm, const std::vector<std::string>&) {
    const std::vector<uint8_t> mine = random_bytes(kSeed + u(comm.rank()), kBytes);
    std::vector<uint8_t> all(kBytes * static_cast<size_t>(n));
    comm.all_gather(mine.data(), kBytes, all.data());
    for (int r = 0; r < n; ++r) {
      const std::vector<uint8_t> theirs = random_bytes(kSeed + u(r), kBytes);
      ASSERT_EQ(std::memcmp(theirs.data(), all.data() + static_cast<size_t>(r) * kBytes, kBytes), 0)
          << "rank " << comm.rank() << " slot " << r;
    }
    std::vector<float> data(kBytes / sizeof(float), static_cast<float>(comm.rank() + 1));
    comm.all_reduce_sum(data.data(), data.size());
    const float expected = static_cast<float>(n * (n + 1) / 2);
    ASSERT_EQ(data.front(), expected);
    ASSERT_EQ(data.back(), expected);
  });
}

TEST(TcpCommunicator, LargeSendsBothWaysAtOnceDoNotDeadlock) {
  constexpr size_t kBytes = size_t{16} << 20;
  run_tcp_world(2, [&](Communicator& comm, const std::vector<std::string>&) {
    const int other = 1 - comm.rank();
    const std::vector<uint8_t> mine = random_bytes(kSeed + u(comm.rank()), kBytes);
    // Both ranks send first, twice, then receive: only works if sends never wait for recvs.
    comm.send(mine.data(), kBytes, other, 7);
    comm.send(mine.data(), kBytes, other, 8);
    std::vector<uint8_t> got(kBytes);
    comm.recv(got.data(), kBytes, other, 8);
    EXPECT_TRUE(got == random_bytes(kSeed + u(other), kBytes));
    comm.recv(got.data(), kBytes, other, 7);
    EXPECT_TRUE(got == random_bytes(kSeed + u(other), kBytes));
  });
}

TEST(TcpCommunicator, MismatchedCollectivesAreReported) {
  std::mutex mutex;
  std::vector<std::string> errors;
  EXPECT_THROW(run_tcp_world(2,
                             [&](Communicator& comm, const std::vector<std::string>&) {
                               std::vector<uint8_t> send(comm.rank() == 0 ? 4 : 8);
                               std::vector<uint8_t> recv(2 * send.size());
                               try {
                                 comm.all_gather(send.data(), send.size(), recv.data());
                               } catch (const Error& e) {
                                 std::lock_guard<std::mutex> lock(mutex);
                                 errors.push_back(e.what());
                                 throw;
                               }
                             }),
               Error);
  ASSERT_FALSE(errors.empty());
  for (const std::string& what : errors) EXPECT_THAT(what, HasSubstr("collective mismatch"));
}

TEST(TcpCommunicator, RecvOfTheWrongSizeAndBadArgumentsThrow) {
  run_tcp_world(2, [&](Communicator& comm, const std::vector<std::string>&) {
    std::vector<uint8_t> buf(8);
    if (comm.rank() == 0) comm.send(buf.data(), 8, 1, 0);
    if (comm.rank() == 1) {
      try {
        comm.recv(buf.data(), 4, 0, 0);
        ADD_FAILURE() << "a recv of the wrong size passed";
      } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("sent 8 bytes with tag 0, expected 4"));
      }
    }
    int x = 0;
    EXPECT_THROW(comm.send(&x, sizeof x, 2, 0), Error);
    EXPECT_THROW(comm.recv(&x, sizeof x, -1, 0), Error);
    EXPECT_THROW(comm.broadcast(&x, sizeof x, 5), Error);
  });
  EXPECT_THROW(TcpListener("127.0.0.1", 70000), Error);
  EXPECT_THROW(connect_tcp_world(TcpListener("127.0.0.1", 0), 0, {}, milliseconds(100)), Error);
  EXPECT_THROW(connect_tcp_world(TcpListener("127.0.0.1", 0), 1, {"127.0.0.1:1"}, milliseconds(100)), Error);
  EXPECT_THROW(connect_tcp_world(TcpListener("127.0.0.1", 0), 0, {"no-port-here"}, milliseconds(100)), Error);
}

TEST(TcpCommunicator, PeerThatLeavesMidRecvFailsTheRecvNamingIt) {
  std::string error;
  run_tcp_world(2, [&](Communicator& comm, const std::vector<std::string>& addresses) {
    if (comm.rank() == 1) {
      int x = 1;
      comm.send(&x, sizeof x, 0, 1);                   // sent before leaving: still delivered
      std::this_thread::sleep_for(milliseconds(100));  // rank 0 is blocked in recv by now
      return;  // run_tcp_world destroys this rank's communicator: a goodbye, then close
    }
    int x = 0;
    comm.recv(&x, sizeof x, 1, 1);
    EXPECT_EQ(x, 1);
    try {
      comm.recv(&x, sizeof x, 1, 2);
      ADD_FAILURE() << "recv from a rank that left returned";
    } catch (const Error& e) {
      error = e.what();
    }
    EXPECT_THAT(error, HasSubstr("tcp communicator: rank 1 (" + addresses[1] + ") closed the connection during recv"));
    EXPECT_THROW(comm.send(&x, sizeof x, 1, 3), Error);
  });
  EXPECT_FALSE(error.empty());
}

TEST(TcpCommunicator, SeveredPeerFailsEveryRanksBlockedAndLaterCalls) {
  std::latch both_failed(2);
  std::mutex mutex;
  std::vector<std::string> errors;
  run_tcp_world(3, [&](Communicator& comm, const std::vector<std::string>& addresses) {
    const std::string expected = "rank 2 (" + addresses[2] + ") closed the connection";
    if (comm.rank() == 2) {
      std::this_thread::sleep_for(milliseconds(100));  // the others are blocked by now
      sever_tcp_connections_for_testing(comm);
      EXPECT_THROW(comm.barrier(), Error);
      return;
    }
    try {
      if (comm.rank() == 0) {
        int x = 0;
        comm.recv(&x, sizeof x, 1, 0);  // rank 1 never sends: the failure of rank 2 must end it
      } else {
        std::vector<float> v(16, 1.0f);
        comm.all_reduce_sum(v.data(), v.size());
      }
      ADD_FAILURE() << "rank " << comm.rank() << " carried on after rank 2 failed";
    } catch (const Error& e) {
      std::lock_guard<std::mutex> lock(mutex);
      errors.push_back(e.what());
      EXPECT_THAT(e.what(), HasSubstr(expected));
    }
    // Later calls fail too, even ones not involving rank 2.
    int x = 0;
    try {
      comm.send(&x, sizeof x, 1 - comm.rank(), 0);
      ADD_FAILURE() << "a send after the failure passed";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(expected));
      EXPECT_THAT(e.what(), HasSubstr("during send"));
    }
    // Neither leaves before both have seen rank 2's failure: a rank that leaves first would be
    // the other's (legitimate, but racy) reason instead.
    both_failed.arrive_and_wait();
  });
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_THAT(errors[0] + errors[1], HasSubstr("during recv on rank 0 of 3"));
  EXPECT_THAT(errors[0] + errors[1], HasSubstr("during all_reduce_sum on rank 1 of 3"));
}

TEST(TcpCommunicator, CallTimeoutFailsTheCallAndThePeers) {
  TcpOptions options = test_options();
  options.call_timeout = milliseconds(300);
  std::mutex mutex;
  std::vector<std::string> errors;
  run_tcp_world(
      2,
      [&](Communicator& comm, const std::vector<std::string>&) {
        int x = 0;
        try {
          if (comm.rank() == 0) comm.recv(&x, sizeof x, 1, 0);  // never sent
          if (comm.rank() == 1) comm.recv(&x, sizeof x, 0, 0);  // never sent either
          ADD_FAILURE() << "a recv that nobody sends returned";
        } catch (const Error& e) {
          std::lock_guard<std::mutex> lock(mutex);
          errors.push_back(e.what());
        }
      },
      options);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_THAT(errors[0] + errors[1], HasSubstr("timed out after 300 ms waiting for rank"));
}

// The handshake of rank 1 given a world of 3 against rank 0 given a world of 2.
TEST(TcpCommunicator, HandshakeWithAWrongWorldSizeNamesBothEnds) {
  std::string error0;
  std::string error1;
  within_seconds(30, [&] {
    Listeners world = make_listeners(2);
    const std::vector<std::string> two = world.addresses;
    const std::vector<std::string> three = {two[0], two[1], "127.0.0.1:1"};
    std::thread rank1([&, listener = std::move(world.listeners[1])]() mutable {
      try {
        connect_tcp_world(std::move(listener), 1, three, milliseconds(5000));
      } catch (const Error& e) {
        error1 = e.what();
      }
    });
    try {
      connect_tcp_world(std::move(world.listeners[0]), 0, two, milliseconds(5000));
    } catch (const Error& e) {
      error0 = e.what();
    }
    rank1.join();
  });
  for (const std::string& error : {error0, error1}) {
    EXPECT_THAT(error, HasSubstr("handshake between"));
    EXPECT_THAT(error, HasSubstr("world sizes differ"));
    EXPECT_THAT(error, HasSubstr("rank 0"));
    EXPECT_THAT(error, HasSubstr("rank 1"));
    EXPECT_THAT(error, HasSubstr("world size 2"));
    EXPECT_THAT(error, HasSubstr("world size 3"));
  }
}

TEST(TcpCommunicator, MissingPeerTimesOutNamingIt) {
  within_seconds(30, [&] {
    Listeners world = make_listeners(3);
    // Only rank 0 is started: it waits for ranks 1 and 2 to connect until its timeout.
    try {
      connect_tcp_world(std::move(world.listeners[0]), 0, world.addresses, milliseconds(300));
      ADD_FAILURE() << "a world with missing ranks connected";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("timed out after 300 ms waiting for rank(s) 1, 2 to connect"));
    }
  });
}

// Rank 1 in a child process: waits until `pid` is done, bounded; returns its wait status.
int wait_for_child(pid_t pid, int seconds) {
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "child rank did not end within " << seconds << " s";
      return status;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return status;
}

// Forks rank 1 of a 2-rank world (the test process has no other threads here, so fork is safe);
// child_body runs in the child and must end the process. The parent is rank 0.
template <class ChildBody>
std::pair<pid_t, std::unique_ptr<Communicator>> fork_rank1(ChildBody child_body, std::string& rank1_address) {
  Listeners world = make_listeners(2);
  rank1_address = world.addresses[1];
  const pid_t pid = fork();
  if (pid == 0) {
    int code = 100;
    try {
      { TcpListener drop = std::move(world.listeners[0]); }  // the parent's
      std::unique_ptr<Communicator> comm =
          connect_tcp_world(std::move(world.listeners[1]), 1, world.addresses, test_options());
      child_body(*comm);
    } catch (...) {
      code = 101;
    }
    std::_Exit(code);
  }
  if (pid < 0) return {pid, nullptr};
  { TcpListener drop = std::move(world.listeners[1]); }  // the child's
  return {pid, connect_tcp_world(std::move(world.listeners[0]), 0, world.addresses, test_options())};
}

TEST(TcpCommunicator, KilledPeerProcessFailsTheRecvNamingIt) {
  std::string address;
  auto [pid, comm] = fork_rank1(
      [](Communicator& c) {
        int x = 42;
        c.send(&x, sizeof x, 0, 1);
        c.recv(&x, sizeof x, 0, 2);  // the go-ahead
        raise(SIGKILL);              // no destructor, no goodbye: the kernel closes the sockets
      },
      address);
  ASSERT_GT(pid, 0) << "fork failed";
  ASSERT_NE(comm, nullptr);
  int x = 0;
  comm->recv(&x, sizeof x, 1, 1);
  EXPECT_EQ(x, 42);
  comm->send(&x, sizeof x, 1, 2);
  try {
    comm->recv(&x, sizeof x, 1, 3);
    ADD_FAILURE() << "recv from a killed process returned";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("tcp communicator: rank 1 (" + address + ") closed the connection during recv"));
  }
  const int status = wait_for_child(pid, 20);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
}

TEST(TcpCommunicator, AbortTellsThePeersAndExitsWithTheCode) {
  std::string address;
  auto [pid, comm] = fork_rank1(
      [](Communicator& c) {
        std::this_thread::sleep_for(milliseconds(100));  // rank 0 is blocked in recv by now
        c.abort(7, "testing abort");
      },
      address);
  ASSERT_GT(pid, 0) << "fork failed";
  ASSERT_NE(comm, nullptr);
  int x = 0;
  try {
    comm->recv(&x, sizeof x, 1, 0);
    ADD_FAILURE() << "recv from an aborted rank returned";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("tcp communicator: rank 1 (" + address +
                                    ") aborted (code 7): testing abort during recv on rank 0 of 2"));
  }
  EXPECT_THROW(comm->barrier(), Error);  // later calls fail too
  const int status = wait_for_child(pid, 20);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7) << "status " << status;
}

}  // namespace
}  // namespace moe::parallel
