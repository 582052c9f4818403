#define _GNU_SOURCE /* pipe2 */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS 16

typedef struct pair {
  int a, b; /* a: accepted from the client; b: to the target; -1 when closed */
} pair;

struct pt_proxy {
  int listen_fd, port, target;
  int wake[2]; /* the test's commands reach the thread through this pipe */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t seen;
  bool cut, stop;
  unsigned generation, seen_generation; /* commands sent / seen by the thread */
  pair pairs[MAX_PAIRS];
  int npairs;
};

static void close_pair(pair *pr) {
  if (pr->a >= 0) close(pr->a);
  if (pr->b >= 0) close(pr->b);
  pr->a = pr->b = -1;
}

static int connect_target(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

/* Copies what from has into to (blocking write: loopback, small). 0, or -1
 * when either side closed. */
static int copy_once(int from, int to) {
  char buf[65536];
  ssize_t n = read(from, buf, sizeof buf);
  if (n <= 0) return -1;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = write(to, buf + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    off += w;
  }
  return 0;
}

static void *run(void *arg) {
  pt_proxy *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    bool cut = p->cut, stop = p->stop;
    p->seen_generation = p->generation;
    pthread_cond_broadcast(&p->seen);
    pthread_mutex_unlock(&p->mu);
    if (stop) break;
    struct pollfd fds[2 + 2 * MAX_PAIRS];
    int n = 0;
    fds[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
    fds[n++] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
    for (int i = 0; i < p->npairs; i++) { /* cut: nothing is read, so nothing crosses */
      fds[n++] = (struct pollfd){.fd = cut ? -1 : p->pairs[i].a, .events = POLLIN};
      fds[n++] = (struct pollfd){.fd = cut ? -1 : p->pairs[i].b, .events = POLLIN};
    }
    if (poll(fds, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) {
      char c[64];
      if (read(p->wake[0], c, sizeof c) < 0 && errno != EAGAIN) break;
    }
    if (fds[1].revents && p->npairs < MAX_PAIRS) {
      int a = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
      if (a >= 0) {
        int b = connect_target(p->target);
        if (b < 0) close(a); /* the target is down: so is the proxied connection */
        else p->pairs[p->npairs++] = (pair){a, b};
      }
    }
    for (int i = 0; i < p->npairs; i++) {
      pair *pr = &p->pairs[i];
      struct pollfd *fa = &fds[2 + 2 * i], *fb = &fds[3 + 2 * i];
      if ((fa->revents && copy_once(pr->a, pr->b)) || (fb->revents && copy_once(pr->b, pr->a)))
        close_pair(pr);
    }
    int k = 0; /* forget closed pairs */
    for (int i = 0; i < p->npairs; i++)
      if (p->pairs[i].a >= 0) p->pairs[k++] = p->pairs[i];
    p->npairs = k;
  }
  for (int i = 0; i < p->npairs; i++) close_pair(&p->pairs[i]);
  return NULL;
}

pt_proxy *proxy_start(int target_port) {
  pt_proxy *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->target = target_port;
  p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) ||
      listen(p->listen_fd, 16) || getsockname(p->listen_fd, (struct sockaddr *)&a, &len) ||
      pipe2(p->wake, O_CLOEXEC | O_NONBLOCK)) {
    if (p->listen_fd >= 0) close(p->listen_fd);
    free(p);
    return NULL;
  }
  p->port = ntohs(a.sin_port);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->seen, NULL);
  if (pthread_create(&p->thread, NULL, run, p)) {
    close(p->listen_fd), close(p->wake[0]), close(p->wake[1]);
    free(p);
    return NULL;
  }
  return p;
}

int proxy_port(const pt_proxy *p) { return p->port; }

/* Sets the flags, wakes the thread and waits until its loop has read them. */
static void command(pt_proxy *p, bool cut, bool stop) {
  pthread_mutex_lock(&p->mu);
  p->cut = cut, p->stop = stop;
  unsigned want = ++p->generation;
  pthread_mutex_unlock(&p->mu);
  if (write(p->wake[1], "x", 1) < 0 && errno != EAGAIN) abort();
  pthread_mutex_lock(&p->mu);
  while (p->seen_generation < want) pthread_cond_wait(&p->seen, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

void proxy_cut(pt_proxy *p, bool cut) { command(p, cut, false); }

void proxy_stop(pt_proxy *p) {
  command(p, p->cut, true);
  pthread_join(p->thread, NULL);
  close(p->listen_fd), close(p->wake[0]), close(p->wake[1]);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->seen);
  free(p);
}
