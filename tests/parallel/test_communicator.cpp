// The thread Communicator: every operation against a reference the test computes itself, on
// world sizes 1 to 4, and failures (an exception, abort()) that must end every rank's wait.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <future>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "parallel/thread_communicator.h"
#include "runtime/core/error.h"
#include "tests/parallel/comm_test_data.h"
#include "tests/parallel/within_seconds.h"

namespace moe::parallel {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kSeed = 1234;

using test::float_bits;
using test::random_bytes;
using test::random_floats;
using test::within_seconds;

class ThreadWorld : public ::testing::TestWithParam<int> {};

INSTANTIATE_TEST_SUITE_P(Sizes, ThreadWorld, ::testing::Values(1, 2, 3, 4),
                         [](const ::testing::TestParamInfo<int>& param_info) {
                           return "np" + std::to_string(param_info.param);
                         });

TEST_P(ThreadWorld, RankSizeNameMemory) {
  const int n = GetParam();
  std::vector<int> seen(static_cast<size_t>(n), -1);
  run_on_threads(n, [&](Communicator& comm) {
    EXPECT_EQ(comm.size(), n);
    EXPECT_EQ(comm.name(), "threads");
    EXPECT_EQ(comm.memory(), MemorySpace::kHost);
    seen[static_cast<size_t>(comm.rank())] = comm.rank();
  });
  for (int r = 0; r < n; ++r) EXPECT_EQ(seen[static_cast<size_t>(r)], r);
}

TEST_P(ThreadWorld, AllReduceSumIsTheRankOrderSumWithIdenticalBits) {
  const int n = GetParam();
  for (size_t count : {size_t{1}, size_t{7}, size_t{1000}}) {
    // Reference: ((b0 + b1) + b2) + ... in float, and a double sum as a sanity bound.
    std::vector<float> expected = random_floats(kSeed, count);
    std::vector<double> exact(expected.begin(), expected.end());
    for (int r = 1; r < n; ++r) {
      const std::vector<float> b = random_floats(kSeed + static_cast<uint32_t>(r), count);
      for (size_t i = 0; i < count; ++i) {
        expected[i] += b[i];
        exact[i] += b[i];
      }
    }
    std::vector<std::vector<float>> results(static_cast<size_t>(n));
    run_on_threads(n, [&](Communicator& comm) {
      std::vector<float> data = random_floats(kSeed + static_cast<uint32_t>(comm.rank()), count);
      comm.all_reduce_sum(data.data(), data.size());
      results[static_cast<size_t>(comm.rank())] = data;
    });
    for (int r = 0; r < n; ++r) {
      const std::vector<float>& got = results[static_cast<size_t>(r)];
      ASSERT_EQ(got.size(), count);
      for (size_t i = 0; i < count; ++i) {
        ASSERT_EQ(float_bits(got[i]), float_bits(expected[i])) << "rank " << r << " element " << i;
        ASSERT_EQ(float_bits(got[i]), float_bits(results[0][i])) << "rank " << r << " differs from rank 0";
        ASSERT_NEAR(got[i], exact[i], 1e-5 * n * 4);
      }
    }
  }
}

TEST_P(ThreadWorld, AllGather) {
  const int n = GetParam();
  constexpr size_t kBytes = 37;
  run_on_threads(n, [&](Communicator& comm) {
    const std::vector<uint8_t> mine = random_bytes(kSeed + static_cast<uint32_t>(comm.rank()), kBytes);
    std::vector<uint8_t> all(kBytes * static_cast<size_t>(n), 0xee);
    comm.all_gather(mine.data(), kBytes, all.data());
    for (int r = 0; r < n; ++r) {
      const std::vector<uint8_t> theirs = random_bytes(kSeed + static_cast<uint32_t>(r), kBytes);
      EXPECT_TRUE(std::equal(theirs.begin(), theirs.end(), all.begin() + r * static_cast<std::ptrdiff_t>(kBytes)))
          << "rank " << comm.rank() << ": slot " << r;
    }
    // Zero bytes is a valid (empty) collective.
    comm.all_gather(nullptr, 0, nullptr);
  });
}

TEST_P(ThreadWorld, BroadcastFromEachRoot) {
  const int n = GetParam();
  constexpr size_t kBytes = 100;
  run_on_threads(n, [&](Communicator& comm) {
    for (int root = 0; root < n; ++root) {
      std::vector<uint8_t> data = random_bytes(kSeed + static_cast<uint32_t>(comm.rank()), kBytes);
      comm.broadcast(data.data(), kBytes, root);
      EXPECT_EQ(data, random_bytes(kSeed + static_cast<uint32_t>(root), kBytes))
          << "rank " << comm.rank() << " root " << root;
    }
  });
}

TEST_P(ThreadWorld, SendRecvRingWithOutOfOrderTags) {
  const int n = GetParam();
  run_on_threads(n, [&](Communicator& comm) {
    const int next = (comm.rank() + 1) % n;
    const int prev = (comm.rank() + n - 1) % n;
    const uint32_t me = static_cast<uint32_t>(comm.rank());
    const uint32_t from = static_cast<uint32_t>(prev);
    // Tag 1, tag 2, then tag 1 again (FIFO within a tag); received as 2, 1, 1.
    const std::vector<uint8_t> a = random_bytes(100 * me + 1, 16);
    const std::vector<uint8_t> b = random_bytes(100 * me + 2, 40);
    const std::vector<uint8_t> c = random_bytes(100 * me + 3, 16);
    comm.send(a.data(), a.size(), next, 1);
    comm.send(b.data(), b.size(), next, 2);
    comm.send(c.data(), c.size(), next, 1);
    std::vector<uint8_t> got_b(40);
    std::vector<uint8_t> got_a(16);
    std::vector<uint8_t> got_c(16);
    comm.recv(got_b.data(), got_b.size(), prev, 2);
    comm.recv(got_a.data(), got_a.size(), prev, 1);
    comm.recv(got_c.data(), got_c.size(), prev, 1);
    EXPECT_EQ(got_a, random_bytes(100 * from + 1, 16));
    EXPECT_EQ(got_b, random_bytes(100 * from + 2, 40));
    EXPECT_EQ(got_c, random_bytes(100 * from + 3, 16));
  });
}

TEST_P(ThreadWorld, SplitEvenOddWithReversedKeys) {
  const int n = GetParam();
  run_on_threads(n, [&](Communicator& comm) {
    const int me = comm.rank();
    std::unique_ptr<Communicator> half = comm.split(me % 2, -me);
    ASSERT_NE(half, nullptr);
    // Same parity, ordered by descending world rank.
    std::vector<int> members;
    for (int r = n - 1; r >= 0; --r) {
      if (r % 2 == me % 2) members.push_back(r);
    }
    ASSERT_EQ(half->size(), static_cast<int>(members.size()));
    EXPECT_EQ(members[static_cast<size_t>(half->rank())], me);
    std::vector<int> gathered(members.size());
    half->all_gather(&me, sizeof(int), gathered.data());
    EXPECT_EQ(gathered, members);
    // The halves are independent: a sum over one never sees the other's values.
    float v = static_cast<float>(me);
    half->all_reduce_sum(&v, 1);
    float expected = 0.0f;
    for (int r : members) expected += static_cast<float>(r);
    EXPECT_EQ(v, expected);
    // Point-to-point on the new communicator uses its ranks.
    if (half->size() > 1) {
      const int to = (half->rank() + 1) % half->size();
      const int from = (half->rank() + half->size() - 1) % half->size();
      half->send(&me, sizeof(int), to, 5);
      int got = -1;
      half->recv(&got, sizeof(int), from, 5);
      EXPECT_EQ(got, members[static_cast<size_t>(from)]);
    }
    // The parent keeps working after the split.
    comm.barrier();
    // A negative color leaves a rank out, as MPI_UNDEFINED does.
    std::unique_ptr<Communicator> some = comm.split(me == 0 ? -1 : 0, me);
    if (me == 0) {
      EXPECT_EQ(some, nullptr);
    } else {
      ASSERT_NE(some, nullptr);
      EXPECT_EQ(some->size(), n - 1);
      EXPECT_EQ(some->rank(), me - 1);
    }
  });
}

TEST_P(ThreadWorld, BarrierWaitsForEveryRank) {
  const int n = GetParam();
  std::atomic<int> before{0};
  std::atomic<int> after{0};
  run_on_threads(n, [&](Communicator& comm) {
    for (int round = 1; round <= 20; ++round) {
      // Late arrivals make a broken barrier visible.
      if (comm.rank() == round % n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      before.fetch_add(1);
      comm.barrier();
      EXPECT_EQ(before.load(), round * n) << "rank " << comm.rank() << " left barrier " << round << " early";
      after.fetch_add(1);
      comm.barrier();
      EXPECT_EQ(after.load(), round * n);
    }
  });
}

TEST_P(ThreadWorld, ExceptionOnOneRankIsRethrownAndWakesTheOthers) {
  const int n = GetParam();
  const int failing = n - 1;
  std::mutex mutex;
  std::vector<std::string> others;  // what the other ranks' waits ended with
  within_seconds(20, [&] {
    try {
      run_on_threads(n, [&](Communicator& comm) {
        if (comm.rank() == failing) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the others block first
          throw std::runtime_error("boom on purpose");
        }
        try {
          comm.barrier();  // never completes: `failing` does not come
        } catch (const Error& e) {
          std::lock_guard<std::mutex> lock(mutex);
          others.push_back(e.what());
          throw;
        }
        ADD_FAILURE() << "rank " << comm.rank() << " passed a barrier that rank " << failing << " never reached";
      });
      ADD_FAILURE() << "run_on_threads did not rethrow";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "boom on purpose");  // the root cause, not a secondary error
    }
  });
  ASSERT_EQ(others.size(), static_cast<size_t>(n - 1));
  for (const std::string& what : others) {
    EXPECT_THAT(what, HasSubstr("rank " + std::to_string(failing) + " failed: boom on purpose"));
    EXPECT_THAT(what, HasSubstr("barrier on rank"));
  }
}

TEST_P(ThreadWorld, AbortWakesPendingAndFailsLaterCalls) {
  const int n = GetParam();
  std::atomic<bool> aborted{false};
  std::mutex mutex;
  std::vector<std::string> errors;
  within_seconds(20, [&] {
    try {
      run_on_threads(n, [&](Communicator& comm) {
        const int me = comm.rank();
        auto record = [&](const Error& e) {
          std::lock_guard<std::mutex> lock(mutex);
          errors.push_back(e.what());
        };
        if (me == 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          try {
            comm.abort(3, "testing abort");
          } catch (...) {
            aborted = true;  // only once the world is marked failed: the others' next calls must fail
            throw;
          }
        }
        if (me % 2 == 1) {
          // Pending: a recv that rank 0 never sends.
          int x = 0;
          try {
            comm.recv(&x, sizeof x, 0, 9);
          } catch (const Error& e) {
            record(e);
            throw;
          }
        } else {
          // Next call: made only after the abort.
          while (!aborted) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          try {
            comm.send(&me, sizeof me, 0, 1);
          } catch (const Error& e) {
            record(e);
            throw;
          }
        }
        ADD_FAILURE() << "rank " << me << " carried on after rank 0 aborted";
      });
      ADD_FAILURE() << "run_on_threads did not rethrow";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("aborted (code 3): testing abort"));
      EXPECT_THAT(e.what(), HasSubstr("rank 0"));
    }
  });
  ASSERT_EQ(errors.size(), static_cast<size_t>(n - 1));
  for (const std::string& what : errors) EXPECT_THAT(what, HasSubstr("rank 0 failed: abort(3): testing abort"));
}

TEST(ThreadCommunicator, AbortInASplitCommunicatorWakesTheWholeWorld) {
  within_seconds(20, [&] {
    EXPECT_THROW(run_on_threads(4,
                                [&](Communicator& comm) {
                                  std::unique_ptr<Communicator> half = comm.split(comm.rank() % 2, comm.rank());
                                  if (comm.rank() == 3) half->abort(1, "from a split communicator");
                                  comm.barrier();  // world-wide: rank 3 never arrives
                                }),
                 Error);
  });
}

TEST(ThreadCommunicator, MismatchedCollectivesAreReported) {
  within_seconds(20, [&] {
    try {
      run_on_threads(2, [&](Communicator& comm) {
        std::vector<uint8_t> send(comm.rank() == 0 ? 4 : 8);
        std::vector<uint8_t> recv(2 * send.size());
        if (comm.rank() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // rank 0 arrives first
        comm.all_gather(send.data(), send.size(), recv.data());
      });
      ADD_FAILURE() << "a size mismatch went unnoticed";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("mismatch"));
    }
  });
}

TEST(ThreadCommunicator, RecvOfTheWrongSizeThrows) {
  within_seconds(20, [&] {
    EXPECT_THROW(run_on_threads(2,
                                [&](Communicator& comm) {
                                  std::vector<uint8_t> buf(8);
                                  if (comm.rank() == 0) comm.send(buf.data(), 8, 1, 0);
                                  if (comm.rank() == 1) comm.recv(buf.data(), 4, 0, 0);
                                }),
                 Error);
  });
}

TEST(ThreadCommunicator, BadArgumentsThrow) {
  EXPECT_THROW(make_thread_world(0), Error);
  run_on_threads(2, [&](Communicator& comm) {
    int x = 0;
    EXPECT_THROW(comm.send(&x, sizeof x, 2, 0), Error);
    EXPECT_THROW(comm.recv(&x, sizeof x, -1, 0), Error);
    EXPECT_THROW(comm.broadcast(&x, sizeof x, 5), Error);
  });
}

TEST(ThreadCommunicator, WorldWithoutRunOnThreads) {
  std::vector<std::unique_ptr<Communicator>> world = make_thread_world(3);
  ASSERT_EQ(world.size(), 3u);
  std::vector<std::thread> threads;
  std::vector<float> sums(3);
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      float v = static_cast<float>(r + 1);
      world[static_cast<size_t>(r)]->all_reduce_sum(&v, 1);
      sums[static_cast<size_t>(r)] = v;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(sums, (std::vector<float>{6.0f, 6.0f, 6.0f}));
}

}  // namespace
}  // namespace moe::parallel
