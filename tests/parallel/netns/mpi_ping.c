/* mpi_ping: a tiny MPI test helper for the network-namespace harness.
 *
 *   mpi_ping [--bytes B] [--rounds K] [--hang-after-start]
 *
 * Every rank reports its hostname, pid and the IPv4 addresses it sees (getifaddrs), rank 0 prints
 * them all.  Then, K times, every rank sends a B-byte buffer to its right neighbour in the ring and
 * receives one from its left neighbour (MPI_Sendrecv), and checks every byte of what it received.
 * Rank 0 prints "mpi_ping: ok: ..." when no rank found a wrong byte, "mpi_ping: FAILED: ..." and
 * exits 1 otherwise.
 *
 * --hang-after-start: after the report and a barrier, every rank prints "rank R: hanging in
 * MPI_Recv" and blocks in an MPI_Recv that nobody ever matches (for the dead-rank check).
 */
#include <mpi.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define INFO_LEN 512

static unsigned char pattern(int src, int round, size_t j) {
  uint32_t x = (uint32_t)src * 2654435761u ^ (uint32_t)round * 40503u ^ (uint32_t)j * 2246822519u;
  x ^= x >> 15;
  return (unsigned char)(x ^ (x >> 8));
}

static double now_s(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static void usage(const char* argv0) {
  fprintf(stderr, "usage: %s [--bytes B] [--rounds K] [--hang-after-start]\n", argv0);
}

int main(int argc, char** argv) {
  long long bytes = 1 << 20;
  int rounds = 4;
  int hang = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc) {
      bytes = atoll(argv[++i]);
    } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--hang-after-start") == 0) {
      hang = 1;
    } else {
      usage(argv[0]);
      return 2;
    }
  }
  if (bytes < 0 || bytes > (1LL << 31) - 1 || rounds < 0) {
    fprintf(stderr, "mpi_ping: --bytes must be in [0, 2^31) and --rounds >= 0\n");
    return 2;
  }

  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  /* who am I, where am I */
  char info[INFO_LEN];
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  int n = snprintf(info, sizeof info, "rank %d/%d host %s pid %d addrs", rank, size, host, (int)getpid());
  struct ifaddrs* ifs = NULL;
  if (getifaddrs(&ifs) == 0) {
    for (struct ifaddrs* a = ifs; a != NULL; a = a->ifa_next) {
      if (a->ifa_addr == NULL || a->ifa_addr->sa_family != AF_INET) continue;
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &((struct sockaddr_in*)a->ifa_addr)->sin_addr, buf, sizeof buf);
      if (strncmp(buf, "127.", 4) == 0) continue;
      if (n < INFO_LEN - 1) n += snprintf(info + n, sizeof info - (size_t)n, " %s(%s)", buf, a->ifa_name);
    }
    freeifaddrs(ifs);
  }
  char* all = rank == 0 ? malloc((size_t)INFO_LEN * (size_t)size) : NULL;
  MPI_Gather(info, INFO_LEN, MPI_CHAR, all, INFO_LEN, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    for (int r = 0; r < size; ++r) printf("mpi_ping: %s\n", all + (size_t)r * INFO_LEN);
    fflush(stdout);
    free(all);
  }

  if (hang) {
    MPI_Barrier(MPI_COMM_WORLD);
    printf("mpi_ping: rank %d: hanging in MPI_Recv\n", rank);
    fflush(stdout);
    char c;
    MPI_Recv(&c, 1, MPI_CHAR, (rank + size - 1) % size, 999, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    printf("mpi_ping: rank %d: MPI_Recv returned, which it never should\n", rank);
    MPI_Finalize();
    return 1;
  }

  unsigned char* sendbuf = malloc(bytes > 0 ? (size_t)bytes : 1);
  unsigned char* recvbuf = malloc(bytes > 0 ? (size_t)bytes : 1);
  if (sendbuf == NULL || recvbuf == NULL) {
    fprintf(stderr, "mpi_ping: rank %d: out of memory for %lld bytes\n", rank, bytes);
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  int right = (rank + 1) % size, left = (rank + size - 1) % size;
  long long bad = 0;
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = now_s();
  for (int k = 0; k < rounds; ++k) {
    for (long long j = 0; j < bytes; ++j) sendbuf[j] = pattern(rank, k, (size_t)j);
    memset(recvbuf, 0, (size_t)bytes);
    MPI_Sendrecv(sendbuf, (int)bytes, MPI_BYTE, right, k, recvbuf, (int)bytes, MPI_BYTE, left, k, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    for (long long j = 0; j < bytes; ++j)
      if (recvbuf[j] != pattern(left, k, (size_t)j)) {
        if (bad == 0)
          fprintf(stderr, "mpi_ping: rank %d: round %d byte %lld from rank %d is %u, expected %u\n", rank, k, j,
                  left, recvbuf[j], pattern(left, k, (size_t)j));
        ++bad;
      }
  }
  double dt = now_s() - t0;
  long long total_bad = 0;
  MPI_Reduce(&bad, &total_bad, 1, MPI_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
  free(sendbuf);
  free(recvbuf);
  int rc = 0;
  if (rank == 0) {
    double mb = (double)bytes * rounds / 1e6;
    if (total_bad == 0) {
      printf("mpi_ping: ok: %d ranks, %d rounds of %lld bytes around the ring, all bytes verified "
             "(%.1f MB sent per rank in %.3f s, %.1f MB/s)\n",
             size, rounds, bytes, mb, dt, dt > 0 ? mb / dt : 0.0);
    } else {
      printf("mpi_ping: FAILED: %lld wrong bytes\n", total_bad);
      rc = 1;
    }
    fflush(stdout);
  }
  MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Finalize();
  return rc;
}
