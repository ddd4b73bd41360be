/* Makes the directory tree of the recursive-watch benchmark, fast:
 * DEPTH levels of WIDTH directories named 0..WIDTH-1 under ROOT (depth 5,
 * width 10: 10 + 100 + 1000 + 10000 + 100000 = 111,110 directories).
 * mkdirat() relative to an open parent, so no path is walked twice.
 *
 *   mktree ROOT DEPTH WIDTH
 *
 * ROOT must exist and be on a tmpfs. Prints {"dirs":N,"ms":T}. */
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>

static long long made;

static void fill(int parent, int depth, int width) {
  char name[16];
  for (int i = 0; i < width; i++) {
    snprintf(name, sizeof name, "%d", i);
    if (mkdirat(parent, name, 0755) != 0 && errno != EEXIST) die("mkdirat");
    made++;
    if (depth > 1) {
      int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) die("openat");
      fill(fd, depth - 1, width);
      close(fd);
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: mktree ROOT DEPTH WIDTH\n");
    return 1;
  }
  time_limit("300");
  require_tmpfs(argv[1]);
  int depth = atoi(argv[2]), width = atoi(argv[3]);
  if (depth < 1 || depth > 8 || width < 1 || width > 100) {
    fprintf(stderr, "mktree: depth 1..8, width 1..100\n");
    return 1;
  }
  int root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die("open root");
  long long t0 = now_ns();
  fill(root, depth, width);
  printf("{\"dirs\":%lld,\"ms\":%.1f}\n", made, (now_ns() - t0) / 1e6);
  return 0;
}
