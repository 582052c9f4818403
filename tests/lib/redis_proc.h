/* Real redis-server processes for tests: started on a free loopback port in
 * a private directory, waited for until they answer PING, stopped, killed,
 * paused, and started again on the same port and directory (so AOF/RDB
 * files survive a restart when the test asks for persistence). */
#ifndef PT_REDIS_PROC_H
#define PT_REDIS_PROC_H

#include <sys/types.h>

typedef struct pt_redis_proc {
  pid_t pid;
  int port;
  char dir[64];
  char addr[32]; /* "127.0.0.1:PORT" */
  char extra[8][64];
  int nextra;
} pt_redis_proc;

/* Starts redis-server (extra args NULL-ended, e.g. "--appendonly", "yes").
 * 0, or -1 (its log is printed). */
int redis_start(pt_redis_proc *r, const char *const *extra);
/* Starts it again after a stop or kill: same port, same directory. */
int redis_restart(pt_redis_proc *r);
/* SIGTERM and wait (0), or -1. */
int redis_stop(pt_redis_proc *r);
/* SIGKILL and wait. */
void redis_kill(pt_redis_proc *r);
/* Stops everything and removes the directory. */
void redis_cleanup(pt_redis_proc *r);
/* Runs one command (a redis-cli argument string, space-separated) and
 * returns its reply as text in out (integers and strings; arrays joined by
 * newlines). 0, or -1 on a connection error or an error reply. */
int redis_cmd(const pt_redis_proc *r, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
