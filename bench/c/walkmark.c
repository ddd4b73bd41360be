/* The floor of unprivileged recursive watching (issue 12): walk a tree and
 * place one fanotify inode mark per directory, as a normal user can, with
 * the mask and group flags the library's unprivileged recursive mode uses
 * (FID + DFID_NAME reporting; CREATE | MOVED_TO | ONDIR | EVENT_ON_CHILD).
 * No bookkeeping beyond the kernel's marks, nothing follows new directories.
 * Speaks the protocol of bench/recursive-child.js:
 *
 *   walkmark ROOT DEEP_DIR CREATIONS
 *
 * {"type":"ready", readyMs, rssBefore, rssAfter, ...}: readyMs from
 * fanotify_init to the last mark; RSS (VmRSS) just before and after.
 * {"type":"latency", ms: [...], delivered, missed, ...}: CREATIONS files
 * created one at a time in DEEP_DIR, each waited for (its CREATE with the
 * file's name from DEEP_DIR's mark; at most 5 s).
 * ROOT must be on a tmpfs. */
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static int group;
static long long marks;
static const unsigned long long MASK = FAN_CREATE | FAN_MOVED_TO | FAN_ONDIR | FAN_EVENT_ON_CHILD;

static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = 0;
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb * 1024;
}

/* Marks the directory `fd` refers to, then its subdirectories (depth first). */
static void walk(int fd) {
  if (fanotify_mark(group, FAN_MARK_ADD, MASK, fd, NULL) != 0) die("fanotify_mark");
  marks++;
  char buf[32768] __attribute__((aligned(8)));
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n < 0) die("getdents64");
    if (n == 0) break;
    for (long off = 0; off < n;) {
      struct dirent64 *e = (struct dirent64 *)(buf + off);
      off += e->d_reclen;
      if (e->d_type != DT_DIR || (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))) continue;
      int sub = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) continue;
      walk(sub);
      close(sub);
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: walkmark ROOT DEEP_DIR CREATIONS\n");
    return 1;
  }
  time_limit("120");
  require_tmpfs(argv[1]);
  const char *deep = argv[2];
  int creations = atoi(argv[3]);
  long rss0 = rss_bytes();
  long long t0 = now_ns();
  group = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_FID | FAN_REPORT_DFID_NAME, O_RDONLY);
  if (group < 0) die("fanotify_init");
  int root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die("open");
  walk(root);
  close(root);
  double readyMs = (now_ns() - t0) / 1e6;
  long rss1 = rss_bytes();
  printf("{\"type\":\"ready\",\"kind\":\"c\",\"readyMs\":%.3f,\"rssBefore\":%ld,\"rssAfter\":%ld,\"hwmBefore\":%ld,\"hwmAfter\":%ld,"
         "\"heapUsedBefore\":0,\"heapUsedAfter\":0,\"externalBefore\":0,\"externalAfter\":0,\"threads\":1,\"inotifyWatches\":0,\"fanotifyMarks\":%lld}\n",
         readyMs, rss0, rss1, rss0, rss1, marks);
  fflush(stdout);

  usleep(300000);
  char buf[8192] __attribute__((aligned(8)));
  while (read(group, buf, sizeof buf) > 0) {
  }
  double ms[1000];
  int delivered = 0, missed = 0;
  for (int i = 0; i < creations && i < 1000; i++) {
    char name[64], path[4096];
    snprintf(name, sizeof name, "new-c-%d-%d", (int)getpid(), i);
    snprintf(path, sizeof path, "%s/%s", deep, name);
    long long tc = now_ns();
    int f = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (f < 0) die("open (creation)");
    close(f);
    int found = 0;
    while (!found && now_ns() - tc < 5000000000LL) {
      struct pollfd p = {group, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      long n = read(group, buf, sizeof buf);
      for (long off = 0; n > 0 && off < n;) {
        struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)(buf + off);
        struct fanotify_event_info_fid *fid = (struct fanotify_event_info_fid *)(m + 1);
        if (m->event_len > sizeof *m && fid->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
          struct file_handle *h = (struct file_handle *)fid->handle;
          const char *entry = (const char *)h->f_handle + h->handle_bytes;
          if ((m->mask & FAN_CREATE) && strcmp(entry, name) == 0) found = 1;
        }
        off += m->event_len;
      }
    }
    if (found) ms[delivered++] = (now_ns() - tc) / 1e6;
    else missed++;
    usleep(20000);
  }
  printf("{\"type\":\"latency\",\"ms\":[");
  for (int i = 0; i < delivered; i++) printf("%s%.4f", i ? "," : "", ms[i]);
  printf("],\"delivered\":%d,\"wrongPath\":0,\"wrongSample\":null,\"missed\":%d,\"creations\":%d,\"stray\":0,\"straySample\":null}\n", delivered, missed, creations);
  return 0;
}
