/*
 * gust/daemon.h - what every daemon's main() does before building its parts.
 */
#ifndef GUST_DAEMON_H
#define GUST_DAEMON_H

#include <nng/nng.h>

#include "gust/config.h"

/*
 * Sets glibc's malloc thresholds so that megabyte buffers are reused, not
 * mapped afresh each time (daemon.c says why), loads cfg from the table
 * (defaults, --config file, environment, flags), names the log, applies the table's "log_level" key, ignores SIGPIPE and
 * routes SIGINT and SIGTERM to on_signal. Returns 0 to go on; otherwise the
 * process should exit with the value (2 after printing a bad config key,
 * -1 for "exit 0" after --help).
 */
int gust_daemon_init(const gust_cfg_key *table, void *cfg, const char *prog, const char *logname,
                     int argc, char **argv, void (*on_signal)(int));

/*
 * The nng URL to publish for a listener: `advertise` when set; else, for a
 * tcp:// or tls+tcp:// listen URL (which may say port 0), the same scheme and
 * host with the port actually bound; else the listen URL itself. Heap string.
 */
char *gust_nng_public_url(nng_listener l, const char *listen, const char *advertise);

#endif
