/*
 * Reference permission handler: allows every open.
 *
 *   perm_handler DIR [path|thread]
 *
 * fanotify_init(FAN_CLASS_CONTENT|FAN_CLOEXEC|FAN_NONBLOCK, O_RDONLY|O_CLOEXEC),
 * a mark on DIR for FAN_OPEN_PERM|FAN_EVENT_ON_CHILD|FAN_ONDIR, then poll +
 * read (64 KiB), write FAN_ALLOW, close the fd. With "path" it also reads
 * /proc/self/fd/N first, as the library's reader does for every event.
 * With "thread" it also copies the library's architecture: a reader thread
 * (poll, read, readlink) hands each batch to the main thread through a
 * mutex + condition variable, and the main thread answers: the cost of the
 * hand-off between two threads, without any JavaScript.
 * Runs until killed (SIGTERM) or its alarm; either way the kernel allows
 * whatever is still pending when the group fd closes.
 */
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/fanotify.h>

static int fan;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int queue[65536 / sizeof(struct fanotify_event_metadata) + 1];
static size_t queued;

static void *reader_thread(void *arg) {
  (void)arg;
  static char buf[65536] __attribute__((aligned(8)));
  char link[64], path[4096];
  struct pollfd pfd = {fan, POLLIN, 0};
  for (;;) {
    if (poll(&pfd, 1, -1) < 0) continue;
    ssize_t len = read(fan, buf, sizeof buf);
    if (len <= 0) continue;
    int batch[sizeof queue / sizeof queue[0]];
    size_t n = 0;
    struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
    for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
      if (m->fd < 0) continue;
      snprintf(link, sizeof link, "/proc/self/fd/%d", m->fd);
      ssize_t k = readlink(link, path, sizeof path - 1);
      (void)k;
      batch[n++] = m->fd;
    }
    pthread_mutex_lock(&mu);
    while (queued + n > sizeof queue / sizeof queue[0]) pthread_cond_wait(&cv, &mu);
    memcpy(queue + queued, batch, n * sizeof(int));
    queued += n;
    pthread_mutex_unlock(&mu);
    pthread_cond_broadcast(&cv);
  }
  return NULL;
}

static void run_threaded(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, reader_thread, NULL) != 0) die("pthread_create");
  int mine[sizeof queue / sizeof queue[0]];
  for (;;) {
    pthread_mutex_lock(&mu);
    while (queued == 0) pthread_cond_wait(&cv, &mu);
    size_t n = queued;
    memcpy(mine, queue, n * sizeof(int));
    queued = 0;
    pthread_mutex_unlock(&mu);
    pthread_cond_broadcast(&cv);
    for (size_t i = 0; i < n; i++) {
      struct fanotify_response r = {mine[i], FAN_ALLOW};
      if (write(fan, &r, sizeof r) != sizeof r) die("write response");
      close(mine[i]);
    }
  }
}

int main(int argc, char **argv) {
  time_limit("60");
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return fprintf(stderr, "usage: perm_handler DIR [path|thread]\n"), 1;
  const char *dir = argv[1];
  int with_path = argc > 2 && strcmp(argv[2], "path") == 0;
  int threaded = argc > 2 && strcmp(argv[2], "thread") == 0;
  require_tmpfs(dir);

  fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC);
  if (fan < 0) die("fanotify_init");
  if (fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD | FAN_ONDIR, AT_FDCWD, dir) != 0)
    die("fanotify_mark");
  printf("{\"type\":\"ready\"}\n");
  if (threaded) run_threaded();

  static char buf[65536] __attribute__((aligned(8)));
  char link[64], path[4096];
  struct pollfd pfd = {fan, POLLIN, 0};
  for (;;) {
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
      if (m->fd < 0) continue;
      if (with_path) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", m->fd);
        ssize_t k = readlink(link, path, sizeof path - 1);
        (void)k;
      }
      if (m->mask & FAN_OPEN_PERM) {
        struct fanotify_response r = {m->fd, FAN_ALLOW};
        if (write(fan, &r, sizeof r) != sizeof r) die("write response");
      }
      close(m->fd);
    }
  }
}
