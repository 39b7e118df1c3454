/* daemon.c - the start-up every daemon shares (config, log level, signals)
 * and the address it publishes for its nng listeners. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "gust/daemon.h"
#include "gust/log.h"
#include "gust/util.h"

/* The daemons pass buffers of about a megabyte along all the time: a trigger
 * fire is up to max_payload (1 MiB), and it is read from Kafka, built,
 * packed, received, journaled and forwarded in buffers that size. glibc
 * serves such a request with mmap (128 KiB and up, until its threshold
 * adapts) and gives freed heap tops back past 128 KiB, so each buffer came
 * as fresh pages that the kernel cleared on first touch: in a drain of a
 * Kafka backlog, page faults were ~8% of all CPU in gust-trigger's broker
 * thread, gust-scheduler and nng's threads (perf). Fixed thresholds keep
 * such buffers in the arenas for reuse; at the cost that a daemon holds on
 * to up to trim_threshold of freed memory per arena. The top pad matters
 * for the threads' arenas (nng's, the journal's): glibc deletes a thread
 * heap that became free unless more than the pad would remain, whatever
 * the trim threshold, and a heap of 64 MiB came and went (mmap, mprotect a
 * megabyte at a time, page faults) several times a second in a drain. The
 * pad is address space; pages are only backed once touched. */
static void daemon_malloc_tune(void)
{
	mallopt(M_MMAP_THRESHOLD, 16 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_TOP_PAD, 64 << 20);
	/* Each arena may now keep up to the trim threshold of freed memory,
	 * and glibc makes up to 8 arenas a core: 16 bounds what a daemon can
	 * hold on to at 1 GiB on a large host, and is glibc's own number on
	 * the 2-core machines these figures were measured on. */
	mallopt(M_ARENA_MAX, 16);
}

int gust_daemon_init(const gust_cfg_key *table, void *cfg, const char *prog, const char *logname,
                     int argc, char **argv, void (*on_signal)(int))
{
	gust_error *err = NULL;
	daemon_malloc_tune();
	gust_log_set_name(logname);
	int rv = gust_cfg_load(table, cfg, prog, argc, argv, &err);
	if (rv == GUST_ECLOSED)
		return -1;
	if (rv != 0) {
		fprintf(stderr, "%s: %s\n", prog, gust_error_msg(err));
		gust_error_free(err);
		return 2;
	}
	for (const gust_cfg_key *k = table; k->name != NULL; k++) {
		if (strcmp(k->name, "log_level") != 0 || k->type != GUST_CFG_STR)
			continue;
		const char *v = *(char **)(void *)((char *)cfg + k->offset);
		int lvl = gust_log_level_parse(v);
		if (lvl < 0) {
			fprintf(stderr,
			        "%s: config key 'log_level': '%s' is not one of debug, info, warn, "
			        "error\n",
			        prog, v);
			return 2;
		}
		gust_log_threshold = lvl;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return 0;
}

char *gust_nng_public_url(nng_listener l, const char *listen, const char *advertise)
{
	if (advertise != NULL && advertise[0] != '\0')
		return gust_xstrdup(advertise);
	/* The scheme stays: dialers follow it (tls+tcp:// or, only with
	 * insecure_transport, tcp://). */
	size_t skip = strncmp(listen, "tcp://", 6) == 0        ? 6
	              : strncmp(listen, "tls+tcp://", 10) == 0 ? 10
	                                                       : 0;
	if (skip == 0)
		return gust_xstrdup(listen);
	int port = 0;
	nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
	const char *hp = listen + skip;
	const char *colon = strrchr(hp, ':');
	return gust_xasprintf("%.*s%.*s:%d", (int)skip, listen, (int)(colon ? colon - hp : 0), hp,
	                      port);
}
