/* Shared helpers for the benchmark's C programs. */
#pragma once
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

static inline void die(const char *what) {
  fprintf(stderr, "%s: %s\n", what, strerror(errno));
  exit(2);
}

/* Marks go only on a tmpfs the bench mounted itself: refuse anything else. */
static inline void require_tmpfs(const char *path) {
  struct statfs sfs;
  if (statfs(path, &sfs) != 0) die("statfs");
  if ((unsigned long)sfs.f_type != TMPFS_MAGIC) {
    fprintf(stderr, "refusing to mark %s: not a tmpfs\n", path);
    exit(3);
  }
}

static inline long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CPU time of the whole process (all threads), microseconds. */
static inline void cpu_us(long long *user, long long *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec;
  *sys = (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
}

/* Voluntary + involuntary context switches of the whole process. */
static inline long long ctx_switches(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

/* Every bench process dies on its own if the orchestrator loses track of it. */
static inline void time_limit(const char *env_default_seconds) {
  const char *s = getenv("BENCH_CHILD_TIMEOUT");
  unsigned secs = (unsigned)atoi(s && *s ? s : env_default_seconds);
  alarm(secs ? secs : 60);
}
