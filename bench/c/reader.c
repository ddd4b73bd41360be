/*
 * Reference notification reader: does per event what the library's native
 * reader does for an fd-mode group, and nothing more.
 *
 *   reader DIR PHASES IDLE_MS [fd|fid]
 *
 * A mark on DIR for FAN_OPEN|FAN_CLOSE_NOWRITE|FAN_EVENT_ON_CHILD|FAN_ONDIR
 * (what `addWatch(dir, OPEN|CLOSE_NOWRITE)` places), then poll + read into a
 * 64 KiB buffer and decode each event; then, for its path:
 *   fd:  fanotify_init(FAN_CLASS_NOTIF|FAN_CLOEXEC|FAN_NONBLOCK,
 *        O_RDONLY|O_CLOEXEC); readlink /proc/self/fd/N, close the fd.
 *   fid: the same plus FAN_REPORT_FID|FAN_REPORT_DFID_NAME; the directory
 *        handle of the DFID_NAME record is matched against the marked
 *        directory's (taken once with name_to_handle_at) and the path is
 *        DIR/name: no system call per event.
 * A phase ends with the close of a file named STOP.*; after each one it
 * prints a JSON line with cumulative counts and its own CPU.
 */
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>

#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200
#endif

struct marked {
  int32_t fsid[2];
  struct {
    struct file_handle fh;
    unsigned char bytes[128];
  } h;
};

/* The marked directory's fsid and handle, as fanotify will report it. */
static void take_handle(const char *dir, struct marked *m) {
  int mount_id;
  m->h.fh.handle_bytes = 128;
  if (name_to_handle_at(AT_FDCWD, dir, &m->h.fh, &mount_id, AT_HANDLE_FID) != 0) {
    m->h.fh.handle_bytes = 128;
    if (name_to_handle_at(AT_FDCWD, dir, &m->h.fh, &mount_id, 0) != 0) die("name_to_handle_at");
  }
  struct statfs sfs;
  if (statfs(dir, &sfs) != 0) die("statfs");
  memcpy(m->fsid, &sfs.f_fsid, sizeof m->fsid);
}

/* For a DFID_NAME record naming a child of the marked directory: DIR/name. */
static const char *fid_path(const struct fanotify_event_metadata *ev, const struct marked *m, const char *dir,
                            size_t dirlen, char *out, size_t outlen) {
  const unsigned char *p = (const unsigned char *)ev + ev->metadata_len;
  const unsigned char *end = (const unsigned char *)ev + ev->event_len;
  while (p + sizeof(struct fanotify_event_info_header) <= end) {
    const struct fanotify_event_info_header *hdr = (const void *)p;
    if (hdr->len == 0 || p + hdr->len > end) break;
    if (hdr->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
      const struct fanotify_event_info_fid *fid = (const void *)p;
      const struct file_handle *fh = (const void *)fid->handle;
      const char *name = (const char *)fh->f_handle + fh->handle_bytes;
      if (memcmp(&fid->fsid, m->fsid, sizeof m->fsid) != 0 || fh->handle_bytes != m->h.fh.handle_bytes ||
          fh->handle_type != m->h.fh.handle_type || memcmp(fh->f_handle, m->h.fh.f_handle, fh->handle_bytes) != 0)
        return NULL; /* not the marked directory: the library would open the handle */
      size_t n = strnlen(name, (size_t)(end - (const unsigned char *)name));
      if (n == 1 && name[0] == '.') n = 0;
      if (dirlen + 1 + n + 1 > outlen) return NULL;
      memcpy(out, dir, dirlen);
      if (n) {
        out[dirlen] = '/';
        memcpy(out + dirlen + 1, name, n);
        out[dirlen + 1 + n] = 0;
      } else {
        out[dirlen] = 0;
      }
      return out;
    }
    p += hdr->len;
  }
  return NULL;
}

int main(int argc, char **argv) {
  time_limit("120");
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 4) return fprintf(stderr, "usage: reader DIR PHASES IDLE_MS [fd|fid]\n"), 1;
  const char *dir = argv[1];
  int phases = atoi(argv[2]);
  int idle_ms = atoi(argv[3]);
  int fid_mode = argc > 4 && strcmp(argv[4], "fid") == 0;
  size_t dirlen = strlen(dir);
  require_tmpfs(dir);
  struct marked marked;
  if (fid_mode) take_handle(dir, &marked);

  unsigned init_flags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK;
  if (fid_mode) init_flags |= FAN_REPORT_FID | FAN_REPORT_DFID_NAME;
  int fan = fanotify_init(init_flags, O_RDONLY | O_CLOEXEC);
  if (fan < 0) die("fanotify_init");
  if (fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN | FAN_CLOSE_NOWRITE | FAN_EVENT_ON_CHILD | FAN_ONDIR, AT_FDCWD,
                    dir) != 0)
    die("fanotify_mark");

  long long u0, s0, u1, s1;
  /* Idle baseline, measured the same way as for the library: settle, then
     measure IDLE_MS of doing nothing with the mark in place. */
  usleep(300 * 1000);
  cpu_us(&u0, &s0);
  usleep((useconds_t)idle_ms * 1000);
  cpu_us(&u1, &s1);
  printf("{\"type\":\"ready\",\"idleMs\":%d,\"idleUs\":%lld,\"groups\":[{\"flags\":%u}]}\n", idle_ms,
         (u1 - u0) + (s1 - s0), init_flags);

  static char buf[65536] __attribute__((aligned(8)));
  char link[64], path[4096];
  long long records = 0, opens = 0, closes = 0, overflows = 0, pathless = 0;
  cpu_us(&u0, &s0);
  long long cs0 = ctx_switches();
  long long t0 = now_ns();
  struct pollfd pfd = {fan, POLLIN, 0};
  while (phases > 0) {
    int n = poll(&pfd, 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    ssize_t len = read(fan, buf, sizeof buf);
    if (len < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      die("read");
    }
    struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
    for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
      if (m->vers != FANOTIFY_METADATA_VERSION) {
        fprintf(stderr, "unexpected metadata version %d\n", m->vers);
        return 2;
      }
      records++;
      if (m->mask & FAN_Q_OVERFLOW) {
        overflows++;
        continue;
      }
      if (m->mask & FAN_OPEN) opens++;
      if (m->mask & FAN_CLOSE_NOWRITE) closes++;
      int stop = 0;
      if (fid_mode) {
        const char *p = fid_path(m, &marked, dir, dirlen, path, sizeof path);
        if (p) {
          const char *base = strrchr(p, '/');
          stop = base && strncmp(base + 1, "STOP.", 5) == 0 && (m->mask & FAN_CLOSE_NOWRITE);
        } else {
          pathless++;
        }
      } else if (m->fd >= 0) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", m->fd);
        ssize_t k = readlink(link, path, sizeof path - 1);
        if (k > 0) {
          path[k] = 0;
          const char *base = strrchr(path, '/');
          stop = base && strncmp(base + 1, "STOP.", 5) == 0 && (m->mask & FAN_CLOSE_NOWRITE);
        } else {
          pathless++;
        }
        close(m->fd);
      }
      if (stop) {
        cpu_us(&u1, &s1);
        printf("{\"type\":\"phase\",\"records\":%lld,\"opens\":%lld,\"closes\":%lld,\"overflows\":%lld,"
               "\"pathless\":%lld,\"userUs\":%lld,\"sysUs\":%lld,\"wallNs\":%lld,\"switches\":%lld}\n",
               records, opens, closes, overflows, pathless, u1 - u0, s1 - s0, now_ns() - t0, ctx_switches() - cs0);
        phases--;
      }
    }
  }
  close(fan);
  return 0;
}
