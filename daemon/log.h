/* One line per event: "2026-11-23T11:32:29.123Z LEVEL message". */
#ifndef PT_LOG_H
#define PT_LOG_H

typedef enum { PT_LOG_DEBUG, PT_LOG_INFO, PT_LOG_WARN, PT_LOG_ERROR } pt_log_level;

void pt_log_set_level(pt_log_level l);
int pt_log_parse_level(const char *s, pt_log_level *out); /* 0 on success */
void pt_log(pt_log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pt_debug(...) pt_log(PT_LOG_DEBUG, __VA_ARGS__)
#define pt_info(...) pt_log(PT_LOG_INFO, __VA_ARGS__)
#define pt_warn(...) pt_log(PT_LOG_WARN, __VA_ARGS__)
#define pt_error(...) pt_log(PT_LOG_ERROR, __VA_ARGS__)

#endif
