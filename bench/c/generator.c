/*
 * Workload generator, the same process for every reader under test.
 *
 *   generator ops DIR NFILES NOPS STOPNAME [RATE]
 *       opens+closes DIR/f<i % NFILES> (O_RDONLY) NOPS times, optionally paced
 *       to RATE open+close pairs per second (0: as fast as it can), then
 *       opens+closes DIR/STOPNAME, which tells the reader the phase is over.
 *       Prints one JSON line: elapsed time and its own CPU.
 *
 *   generator lat N WARMUP FILE...
 *       times open(FILE, O_RDONLY) N times per file (after WARMUP untimed
 *       rounds), going round robin over the files and closing each; prints
 *       mean/median/percentiles of the open() latency per file.
 *
 *   generator passes DIR NFILES PASSES [WARMUP]
 *       opens+closes DIR/f0000 ... DIR/f<NFILES-1> (O_RDONLY), PASSES times
 *       over, timing each pass; prints the time of each pass (the decision
 *       cache benchmark: the first pass asks the handler about every file,
 *       later ones only what it did not cache). First, untimed, WARMUP opens
 *       of DIR/warm for reading and writing: the handler warms up on them,
 *       and the kernel never caches an allow for a file open for writing.
 */
#include "common.h"

#include <fcntl.h>

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

static int run_ops(int argc, char **argv) {
  if (argc < 6) return fprintf(stderr, "usage: generator ops DIR NFILES NOPS STOPNAME [RATE]\n"), 1;
  const char *dir = argv[2];
  int nfiles = atoi(argv[3]);
  long nops = atol(argv[4]);
  const char *stop = argv[5];
  long rate = argc > 6 ? atol(argv[6]) : 0;
  if (nfiles <= 0 || nops < 0) return fprintf(stderr, "bad arguments\n"), 1;

  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) die("open dir");
  char (*names)[16] = calloc((size_t)nfiles, sizeof *names);
  for (int i = 0; i < nfiles; i++) snprintf(names[i], sizeof names[i], "f%04d", i);

  long long u0, s0, u1, s1;
  cpu_us(&u0, &s0);
  long long t0 = now_ns();
  long per_tick = rate > 0 ? (rate + 999) / 1000 : 0; /* pairs per 1 ms tick */
  struct timespec tick;
  clock_gettime(CLOCK_MONOTONIC, &tick);
  long failures = 0;
  for (long i = 0; i < nops; i++) {
    if (per_tick && i % per_tick == 0 && i > 0) {
      tick.tv_nsec += 1000000;
      if (tick.tv_nsec >= 1000000000) tick.tv_nsec -= 1000000000, tick.tv_sec++;
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, NULL);
    }
    int fd = openat(dfd, names[i % nfiles], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      failures++;
      continue;
    }
    close(fd);
  }
  long long t1 = now_ns();
  cpu_us(&u1, &s1);
  int fd = openat(dfd, stop, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open stop file");
  close(fd);
  printf("{\"ops\":%ld,\"failures\":%ld,\"wallNs\":%lld,\"userUs\":%lld,\"sysUs\":%lld}\n", nops, failures, t1 - t0,
         u1 - u0, s1 - s0);
  return failures ? 4 : 0;
}

static int run_lat(int argc, char **argv) {
  if (argc < 5) return fprintf(stderr, "usage: generator lat N WARMUP FILE...\n"), 1;
  long n = atol(argv[2]);
  long warmup = atol(argv[3]);
  int nfiles = argc - 4;
  char **files = argv + 4;
  if (n <= 0 || warmup < 0) return fprintf(stderr, "bad arguments\n"), 1;
  long long *lat = malloc((size_t)n * (size_t)nfiles * sizeof *lat);
  if (!lat) die("malloc");
  for (long i = 0; i < warmup; i++) {
    for (int f = 0; f < nfiles; f++) {
      int fd = open(files[f], O_RDONLY | O_CLOEXEC);
      if (fd < 0) die("open");
      close(fd);
    }
  }
  /* Round robin over the files, so that every handler sees the same machine
     conditions: noise from other load is spread over all of them alike. */
  long long total0 = now_ns();
  for (long i = 0; i < n; i++) {
    for (int f = 0; f < nfiles; f++) {
      long long t0 = now_ns();
      int fd = open(files[f], O_RDONLY | O_CLOEXEC);
      long long t1 = now_ns();
      if (fd < 0) die("open");
      close(fd);
      lat[(size_t)f * (size_t)n + (size_t)i] = t1 - t0;
    }
  }
  long long total = now_ns() - total0;
  printf("{\"n\":%ld,\"totalNs\":%lld,\"files\":[", n, total);
  for (int f = 0; f < nfiles; f++) {
    long long *l = lat + (size_t)f * (size_t)n;
    long double sum = 0;
    for (long i = 0; i < n; i++) sum += l[i];
    qsort(l, (size_t)n, sizeof *l, cmp_ll);
    printf("%s{\"file\":\"%s\",\"meanNs\":%.1Lf,\"medianNs\":%lld,\"p90Ns\":%lld,\"p99Ns\":%lld,\"minNs\":%lld,"
           "\"maxNs\":%lld}",
           f ? "," : "", files[f], sum / n, l[n / 2], l[(long)(n * 0.90)], l[(long)(n * 0.99)], l[0], l[n - 1]);
  }
  printf("]}\n");
  return 0;
}

static int run_passes(int argc, char **argv) {
  if (argc < 5) return fprintf(stderr, "usage: generator passes DIR NFILES PASSES [WARMUP]\n"), 1;
  int nfiles = atoi(argv[3]);
  int passes = atoi(argv[4]);
  long warmup = argc > 5 ? atol(argv[5]) : 0;
  if (nfiles <= 0 || passes <= 0) return fprintf(stderr, "bad arguments\n"), 1;
  int dfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) die("open dir");
  char (*names)[16] = calloc((size_t)nfiles, sizeof *names);
  long long *ns = calloc((size_t)passes, sizeof *ns);
  if (!names || !ns) die("calloc");
  for (int i = 0; i < nfiles; i++) snprintf(names[i], sizeof names[i], "f%04d", i);
  for (long i = 0; i < warmup; i++) {
    int fd = openat(dfd, "warm", O_RDWR | O_CLOEXEC);
    if (fd < 0) die("open warm");
    close(fd);
  }
  for (int p = 0; p < passes; p++) {
    long long t0 = now_ns();
    for (int i = 0; i < nfiles; i++) {
      int fd = openat(dfd, names[i], O_RDONLY | O_CLOEXEC);
      if (fd < 0) die("open");
      close(fd);
    }
    ns[p] = now_ns() - t0;
  }
  printf("{\"files\":%d,\"passNs\":[", nfiles);
  for (int p = 0; p < passes; p++) printf("%s%lld", p ? "," : "", ns[p]);
  printf("]}\n");
  return 0;
}

int main(int argc, char **argv) {
  time_limit("60");
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1 && strcmp(argv[1], "ops") == 0) return run_ops(argc, argv);
  if (argc > 1 && strcmp(argv[1], "lat") == 0) return run_lat(argc, argv);
  if (argc > 1 && strcmp(argv[1], "passes") == 0) return run_passes(argc, argv);
  fprintf(stderr, "usage: generator ops|lat|passes ...\n");
  return 1;
}
