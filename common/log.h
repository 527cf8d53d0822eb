/*
 * log.h - process logging to stderr in the form journald keeps.
 *
 * Each line starts with a syslog priority prefix ("<3>") so journald files it
 * at the right level; outside journald the prefix is still readable.  Only
 * callers that decide log: library modules (store, sandbox, fnconfig…) return
 * errors instead.  Tokens and secrets never reach these functions.
 */
#ifndef FAASD_LOG_H
#define FAASD_LOG_H

#include <syslog.h>

/* Set the process role shown in every line ("parent", "gateway", "worker1"). */
void log_set_ident(const char *ident);

/* Lines with a priority numerically above this are dropped (LOG_INFO default). */
void log_set_level(int level);

/* Parse "debug", "info", "notice", "warning", "err"; -EINVAL otherwise. */
int log_level_parse(const char *s);

void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)    log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)  log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
