/* gust-invoker: parse config, build the parts, serve until SIGINT/SIGTERM. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gust/daemon.h"
#include "gust/integrity.h"
#include "gust/log.h"
#include "invoker.h"

#define K(f) offsetof(inv_config, f)
const gust_cfg_key inv_config_table[] = {
    {"listen", GUST_CFG_STR, K(listen), "tls+tcp://127.0.0.1:0", 1, 1024, "GUST_INVOKER_LISTEN",
     "nng URL to take activations on (port 0: any free port)"},
    {"listen_peers", GUST_CFG_STR, K(listen_peers), "scheduler", 1, 128,
     "GUST_INVOKER_LISTEN_PEERS",
     "roles whose certificates may send activations to listen, comma-separated (gateway, "
     "scheduler, invoker, trigger); the listener trusts only their CAs"},
    {"advertise", GUST_CFG_STR, K(advertise), "", 0, 1024, "GUST_INVOKER_ADVERTISE",
     "URL published in etcd for schedulers; default: the bound listen URL"},
    {"etcd", GUST_CFG_STR, K(etcd), "http://127.0.0.1:2379", 1, 4096, "GUST_ETCD",
     "etcd endpoints, comma-separated"},
    {"redis", GUST_CFG_STR, K(redis), "127.0.0.1:6379", 1, 1024, "GUST_REDIS",
     "Redis for activation records (host:port or unix:/path)"},
    {"id", GUST_CFG_STR, K(id), "", 0, 128, "GUST_INVOKER_ID",
     "this invoker's id; default inv-<hostname>"},
    {"state_dir", GUST_CFG_STR, K(state_dir), "/var/lib/gust/invoker", 1, 4096,
     "GUST_INVOKER_STATE_DIR", "where sandbox roots are made"},
    {"runtime_dir", GUST_CFG_STR, K(runtime_dir), GUST_RUNTIME_DIR_DEFAULT, 1, 4096,
     "GUST_RUNTIME_DIR", "the language launchers (python/, nodejs/, native/)"},
    {"memory_mb", GUST_CFG_INT, K(memory_mb), "2048", 128, 1048576, "GUST_INVOKER_MEMORY_MB",
     "user memory for sandboxes, as OpenWhisk's userMemory"},
    {"workers", GUST_CFG_INT, K(workers), "0", 0, 4096, "GUST_INVOKER_WORKERS",
     "threads running activations (each waits on one sandbox); 0: memory_mb / 128"},
    {"contexts", GUST_CFG_INT, K(contexts), "1024", 1, 65536, "GUST_INVOKER_CONTEXTS",
     "activations accepted at once (nng contexts)"},
    {"idle_timeout_s", GUST_CFG_INT, K(idle_timeout_s), "600", 1, 86400,
     "GUST_INVOKER_IDLE_TIMEOUT_S", "an idle warm sandbox is evicted after this long"},
    {"record_ttl_s", GUST_CFG_INT, K(record_ttl_s), "86400", 10, 31536000, "GUST_RECORD_TTL_S",
     "time to live of activation records in Redis"},
    {"drain_timeout_s", GUST_CFG_INT, K(drain_timeout_s), "30", 0, 3600,
     "GUST_INVOKER_DRAIN_TIMEOUT_S",
     "on SIGTERM, how long activations already taken may run before the invoker stops"},
    {"lease_ttl_s", GUST_CFG_INT, K(lease_ttl_s), "3", 2, 300, "GUST_INVOKER_LEASE_TTL_S",
     "etcd lease time of this invoker's registration"},
    {"metrics_host", GUST_CFG_STR, K(metrics_host), "127.0.0.1", 1, 64, "GUST_INVOKER_METRICS_HOST",
     "address for /health and /metrics"},
    {"metrics_port", GUST_CFG_INT, K(metrics_port), "9321", 0, 65535, "GUST_INVOKER_METRICS_PORT",
     "port for /health and /metrics (0: off)"},
    {"metrics_token_file", GUST_CFG_STR, K(metrics_token_file), "", 0, 4096,
     "GUST_INVOKER_METRICS_TOKEN_FILE",
     "file holding a bearer token /metrics requires (\"\": /metrics open; /health always is)"},
    {"cgroup", GUST_CFG_STR, K(cgroup), "auto", 1, 8, "GUST_INVOKER_CGROUP",
     "cgroup back-end for sandbox limits: auto, v1, v2 or none"},
    {"cgroup_favordynmods", GUST_CFG_BOOL, K(cgroup_favordynmods), "true", 0, 1,
     "GUST_INVOKER_CGROUP_FAVORDYNMODS",
     "set favordynmods on the host's cgroup2 hierarchy, so that moving a sandbox into its "
     "cgroup does not wait for an RCU grace period (1-15 ms here); host-wide, kept after exit"},
    {"netns_pool", GUST_CFG_INT, K(netns_pool), "4", 0, 64, "GUST_INVOKER_NETNS_POOL",
     "network namespaces made ahead of need by a background thread (0: each sandbox makes "
     "its own on its critical path)"},
    {"userns_base", GUST_CFG_INT, K(userns_base), "1879048192", 0, 4294901759LL,
     "GUST_INVOKER_USERNS_BASE",
     "first host uid/gid of the sandboxes' id ranges, a multiple of 65536: sandbox slot k "
     "maps its 65536 ids to base + k*65536 (0: no user namespace, only with "
     "insecure_no_userns)"},
    {"userns_slots", GUST_CFG_INT, K(userns_slots), "1024", 1, 65536, "GUST_INVOKER_USERNS_SLOTS",
     "host id ranges of 65536 ids from userns_base, one per live sandbox, shared by every "
     "invoker of the host (a lock file per range in /run/gust/userns): per-user kernel counts "
     "(inotify, user namespaces, keys) are then per sandbox; no sandbox starts while all "
     "are taken"},
    {"insecure_no_userns", GUST_CFG_BOOL, K(insecure_no_userns), "false", 0, 1,
     "GUST_INVOKER_INSECURE_NO_USERNS",
     "start even when sandboxes cannot have a user namespace (the kernel forbids them, or "
     "userns_base is 0): sandbox root is then host root. Insecure; logged at WARN on every "
     "start"},
    {"pids_max", GUST_CFG_INT, K(pids_max), "256", 16, 65536, "GUST_INVOKER_PIDS_MAX",
     "processes and threads per sandbox"},
    {"stem_cells", GUST_CFG_STR, K(stem_cells), "python:3=2,nodejs:20=2,native=2", 0, 1024,
     "GUST_INVOKER_STEM_CELLS", "prewarmed sandboxes per runtime: kind=count,..."},
    {"native_launcher", GUST_CFG_STR, K(native_launcher), GUST_NATIVE_LAUNCHER_DEFAULT, 0, 4096,
     "GUST_INVOKER_NATIVE_LAUNCHER",
     "the C launcher of native actions (empty: runtime_dir's native/launcher script)"},
    {"binding_timeout_ms", GUST_CFG_INT, K(binding_timeout_ms), "5000", 100, 300000,
     "GUST_INVOKER_BINDING_TIMEOUT_MS",
     "how long one attempt to publish to an output binding may take (Kafka's "
     "message.timeout.ms, Redis's timeout) before it counts as failed and is retried"},
    {"freeze_idle_ms", GUST_CFG_INT, K(freeze_idle_ms), "100", -1, 3600000,
     "GUST_INVOKER_FREEZE_IDLE_MS",
     "an idle warm sandbox is frozen (cgroup freezer) after this long without an activation "
     "and thawed before its next one, so that nothing it left running runs unbilled "
     "(-1: never)"},
    {"state_value_bytes", GUST_CFG_INT, K(state_value_bytes), "1048576", 1024, 8388608,
     "GUST_INVOKER_STATE_VALUE_BYTES",
     "state cache: the most one value may hold, and one request may carry beyond 64 KiB of "
     "keys and names (a namespace's limits.stateValueBytes overrides; docs/state.md)"},
    {"state_quota_bytes", GUST_CFG_INT, K(state_quota_bytes), "67108864", 65536, 1099511627776LL,
     "GUST_INVOKER_STATE_QUOTA_BYTES",
     "state cache: a namespace's bytes in Redis (MEMORY USAGE of its keys) above which its "
     "writes are refused (a namespace's limits.stateBytes overrides)"},
    {"state_quota_interval_ms", GUST_CFG_INT, K(state_quota_interval_ms), "1000", 50, 600000,
     "GUST_INVOKER_STATE_QUOTA_INTERVAL_MS",
     "state cache: how often each namespace's bytes are sampled (SCAN + MEMORY USAGE)"},
    {"state_conns_per_sandbox", GUST_CFG_INT, K(state_conns_per_sandbox), "16", 1, 4096,
     "GUST_INVOKER_STATE_CONNS_PER_SANDBOX",
     "state cache: connections one sandbox may hold open at once; more are answered with an "
     "error and closed"},
    {"egress_resolver", GUST_CFG_STR, K(egress_resolver), "", 0, 64, "GUST_INVOKER_EGRESS_RESOLVER",
     "the DNS resolver of egress sandboxes, IPv4 ADDR[:PORT] (default: the first IPv4 "
     "nameserver of /etc/resolv.conf; on 127.0.0.0/8, as systemd-resolved's, it works too; "
     "'none': no DNS); the egress policy's names are resolved through it too"},
    {"egress_refresh_s", GUST_CFG_INT, K(egress_refresh_s), "60", 1, 86400,
     "GUST_INVOKER_EGRESS_REFRESH_S",
     "how often the egress policy's DNS names are resolved again and the cluster's node "
     "addresses read again (changes in etcd apply at once)"},
    GUST_TRANSPORT_CFG_KEYS(inv_config, tls, "GUST_INVOKER"),
    {"log_level", GUST_CFG_STR, K(log_level), "info", 1, 16, "GUST_LOG_LEVEL",
     "debug, info, warn or error"},
    GUST_STORES_CFG_KEYS(K, stores),
    GUST_CFG_END,
};

static volatile sig_atomic_t inv_stop;

static void on_signal(int sig)
{
	inv_stop = 1;
}

static int inv_register(inv *v, int64_t lease, gust_error **err)
{
	cleanup_free char *key = gust_xasprintf("/gust/invokers/%s", v->cfg.id);
	gust_buf b = {0};
	gust_buf_puts(&b, "{\"id\":");
	gust_buf_json_str(&b, v->cfg.id, strlen(v->cfg.id));
	gust_buf_puts(&b, ",\"address\":");
	gust_buf_json_str(&b, v->address, strlen(v->address));
	gust_buf_printf(&b, ",\"memory_mb\":%lld}", v->cfg.memory_mb);
	int rv = gust_etcd_put(v->etcd, key, b.data, b.len, lease, NULL, err);
	gust_buf_free(&b);
	return rv;
}

static void inv_on_renew(void *arg, int64_t lease)
{
	inv *v = arg;
	gust_error *e = NULL;
	if (inv_register(v, lease, &e) != 0)
		gust_log_error("INV-REGISTER", "re-registering: %s", gust_error_msg(e));
	gust_error_free(e);
}

static int inv_health(void *arg, gust_buf *body)
{
	inv *v = arg;
	pthread_mutex_lock(&v->lock);
	int used = v->used_mb;
	pthread_mutex_unlock(&v->lock);
	gust_buf_printf(body, "{\"status\":\"ok\",\"id\":\"%s\",\"used_mb\":%d,\"memory_mb\":%lld}",
	                v->cfg.id, used, v->cfg.memory_mb);
	return 0;
}

static int mkdir_p(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* True when this kernel lets us make user namespaces (a sysctl may forbid).
 * The sysctl is read in our own user namespace, where it is what holds. */
static bool inv_userns_allowed(void)
{
	FILE *f = fopen("/proc/sys/user/max_user_namespaces", "re");
	long n = 0;
	if (f == NULL)
		return false;
	if (fscanf(f, "%ld", &n) != 1)
		n = 0;
	fclose(f);
	return n > 0;
}

/* A sandbox without a user namespace has the host's root as its root (only
 * capabilities, seccomp and the mounts keep it in): the invoker does not
 * start so unless the operator said so in its config, and then says so on
 * every start. */
static int inv_userns_check(inv *v, gust_error **err)
{
	const char *why = NULL;
	if (v->cfg.userns_base == 0)
		why = "config key 'userns_base' is 0";
	else if (!inv_userns_allowed())
		why = "the kernel does not allow user namespaces "
		      "(/proc/sys/user/max_user_namespaces is 0 or unreadable)";
	if (why == NULL) {
		if (v->cfg.userns_base % INV_USERNS_SIZE != 0 ||
		    v->cfg.userns_base + v->cfg.userns_slots * (long long)INV_USERNS_SIZE >
		        4294967295LL)
			return gust_error_set(err, GUST_EINVAL,
			                      "config key 'userns_base': %lld must be a multiple "
			                      "of 65536, and its %lld ranges (config key "
			                      "'userns_slots') must end below 2^32",
			                      v->cfg.userns_base, v->cfg.userns_slots);
		v->userns_base = (unsigned)v->cfg.userns_base;
		v->userns_slots = (unsigned)v->cfg.userns_slots;
		return inv_userns_ids_check(v->userns_base, v->userns_slots, err);
	}
	if (!v->cfg.insecure_no_userns)
		return gust_error_set(err, GUST_ENOTSUP,
		                      "%s: sandboxes would run as host root; refusing to start "
		                      "(config key 'insecure_no_userns' allows it)",
		                      why);
	gust_log_warn("INV-USERNS-INSECURE",
	              "%s: sandboxes run WITHOUT a user namespace, their root is host root "
	              "(config key 'insecure_no_userns' is set)",
	              why);
	v->userns_base = 0;
	return 0;
}

static int inv_build(inv *v, gust_error **err)
{
	int rv;
	if (v->cfg.id[0] == '\0') {
		char host[64] = "host";
		gethostname(host, sizeof(host) - 1);
		free(v->cfg.id);
		v->cfg.id = gust_xasprintf("inv-%s", host);
	}
	if ((rv = inv_userns_check(v, err)) != 0)
		return rv;
	/* Activations from listen_peers (the schedulers), status to the
	 * scheduler: the CAs of those roles, checked before anything starts. */
	if ((rv = gust_roles_parse(v->cfg.listen_peers, "listen_peers", &v->listen_peers, err)) !=
	        0 ||
	    (rv = gust_transport_open(&v->cfg.tls, GUST_ROLE_INVOKER,
	                              v->listen_peers | GUST_ROLE_SCHEDULER, &v->transport, err)) !=
	        0)
		return rv;
	if (mkdir_p(v->cfg.state_dir) != 0)
		return gust_error_set(err, GUST_EIO, "config key 'state_dir': cannot create %s: %s",
		                      v->cfg.state_dir, strerror(errno));
	/* Everything this invoker makes on the host carries its tag, so that a
	 * restart removes exactly what its killed predecessor left, and two
	 * invokers on one host (tests, several state dirs) never touch each
	 * other's. */
	cleanup_free char *real = realpath(v->cfg.state_dir, NULL);
	const char *sd = real != NULL ? real : v->cfg.state_dir;
	v->tag = gust_xasprintf("%s-%08x", v->cfg.id, (unsigned)gust_hash64(sd, strlen(sd)));
	inv_sweep_state(v->cfg.state_dir);
	inv_net_sweep(v->tag);
	inv_net_open(v->tag, inv_egress_net_granted, v, &v->net);
	if ((rv = inv_cgroups_open(v->cfg.cgroup, v->tag, &v->cgroups, err)) != 0)
		return gust_error_wrap(err, "config key 'cgroup'");
	if (v->cgroups != NULL && v->cfg.cgroup_favordynmods) {
		gust_error *e = NULL;
		if (inv_cgroups_favor_dynmods(&e) != 0)
			gust_log_warn(
			    "INV-CG-DYNMODS",
			    "config key 'cgroup_favordynmods': %s; each sandbox start may "
			    "wait for an RCU grace period",
			    gust_error_msg(e));
		gust_error_free(e);
	}
	if ((rv = inv_netns_pool_open((int)v->cfg.netns_pool, v->cfg.state_dir, &v->netns, err)) !=
	    0)
		return gust_error_wrap(err, "config key 'netns_pool'");
	gust_log_info("INV-SANDBOX-CFG", "tag %s, cgroups %s, user namespace %s", v->tag,
	              inv_cgroups_backend(v->cgroups), v->userns_base != 0 ? "on" : "off");
	if (v->cfg.native_launcher[0] != '\0' && access(v->cfg.native_launcher, X_OK) != 0) {
		gust_log_warn("INV-NATIVE-LAUNCHER",
		              "config key 'native_launcher': %s: %s; native actions use the "
		              "script launcher",
		              v->cfg.native_launcher, strerror(errno));
		v->cfg.native_launcher[0] = '\0';
	}
	cleanup_free char *probe = gust_xasprintf("%s/python/launcher.py", v->cfg.runtime_dir);
	if (access(probe, R_OK) != 0)
		return gust_error_set(err, GUST_EINVAL,
		                      "config key 'runtime_dir': %s has no launchers",
		                      v->cfg.runtime_dir);
	static const char *const st[] = {"status=\"success\"", "status=\"application_error\"",
	                                 "status=\"developer_error\"", "status=\"whisk_error\""};
	for (int i = 0; i < 4; i++)
		v->m_act[i] =
		    gust_counter_new("gust_activations_total", "activations run by status", st[i]);
	v->m_cold =
	    gust_counter_new("gust_invoker_starts_total", "sandbox starts", "start=\"cold\"");
	v->m_stem =
	    gust_counter_new("gust_invoker_starts_total", "sandbox starts", "start=\"stem\"");
	v->m_warm =
	    gust_counter_new("gust_invoker_starts_total", "sandbox starts", "start=\"warm\"");
	v->m_duration = gust_histogram_new("gust_activation_duration_seconds",
	                                   "activation time in the invoker, init included", NULL);
	v->m_sandboxes = gust_gauge_new("gust_invoker_sandboxes", "sandboxes alive", NULL);
	v->m_queue =
	    gust_gauge_new("gust_invoker_queue", "activations waiting for a sandbox", NULL);
	v->m_rejected = gust_counter_new(
	    "gust_invoker_requests_rejected_total",
	    "activation requests refused unrun: integrity check (MAC) failed or code of "
	    "another namespace",
	    NULL);
	if ((rv = gust_stores_apply(&v->cfg.stores, v->cfg.etcd, "invoker", err)) != 0)
		return rv;
	if ((rv = gust_etcd_open(&v->etcd, v->cfg.etcd, err)) != 0)
		return gust_error_wrap(err, "config key 'etcd'");
	/* Before anything that signs or verifies: see gust/integrity.h. */
	if ((rv = gust_secret_start(v->etcd, err)) != 0)
		return gust_error_wrap(err, "cluster secret (%s)", GUST_SECRET_KEY);
	if ((rv = gust_redis_writer_start(v->cfg.redis, &v->records, err)) != 0)
		return gust_error_wrap(err, "config key 'redis'");
	/* Before the server: no egress runs before the grants are known. */
	if ((rv = inv_egress_start(v, err)) != 0)
		return rv;
	if ((rv = inv_state_start(v, err)) != 0)
		return rv;
	if ((rv = inv_binding_start(v, err)) != 0)
		return rv;
	if ((rv = inv_pool_start(v, err)) != 0)
		return rv;
	if ((rv = inv_freeze_start(v, err)) != 0)
		return rv;
	if ((rv = inv_stem_start(v, err)) != 0)
		return rv;
	if ((rv = inv_server_start(v, err)) != 0)
		return rv;
	if (v->cfg.metrics_port > 0 &&
	    (rv = gust_admin_http_start(v->cfg.metrics_host, (int)v->cfg.metrics_port,
	                                v->cfg.metrics_token_file, inv_health, v, &v->admin,
	                                err)) != 0)
		return gust_error_wrap(err, "config key 'metrics_port'");
	if ((rv = inv_status_start(v, err)) != 0)
		return rv;
	if ((rv = gust_etcd_lease_keeper_start(v->etcd, v->cfg.lease_ttl_s, inv_on_renew, v,
	                                       &v->lease, err)) != 0)
		return gust_error_wrap(err, "etcd lease");
	if ((rv = inv_register(v, gust_etcd_lease_keeper_id(v->lease), err)) != 0)
		return gust_error_wrap(err, "registering in etcd");
	return 0;
}

static void inv_destroy(inv *v)
{
	/* Leave placement first, so that no new work arrives while we stop; then
	 * let what was taken finish (up to drain_timeout_s), so a rolling restart
	 * answers its blocking callers instead of failing them. */
	if (v->lease)
		gust_etcd_lease_keeper_stop(v->lease, true);
	if (v->threads != NULL && atomic_load(&v->running) > 0) {
		gust_log_info("INV-DRAIN", "draining %d activations (at most %lld s)",
		              atomic_load(&v->running), v->cfg.drain_timeout_s);
		uint64_t until = gust_now_ms() + (uint64_t)v->cfg.drain_timeout_s * 1000;
		while (atomic_load(&v->running) > 0 && gust_now_ms() < until)
			usleep(20 * 1000);
	}
	gust_admin_http_stop(v->admin);
	inv_status_stop(v);
	inv_freeze_stop(v); /* before the pool frees its slots */
	inv_pool_stop(v);
	/* After the pool: a sandbox dies with the thread that made it
	 * (PR_SET_PDEATHSIG), and adopted stem cells were made by this one. */
	inv_stem_stop(v);
	inv_state_stop(v);   /* after the sandboxes, which detach their sockets */
	inv_binding_stop(v); /* after the pool: answers what it made durable */
	inv_server_stop(v);
	inv_egress_stop(v);    /* its thread updates the table: before it goes */
	inv_net_close(v->net); /* after the sandboxes: their veths are gone */
	inv_netns_pool_close(v->netns);
	inv_cgroups_close(v->cgroups);
	free(v->tag);
	gust_redis_writer_stop(v->records, 2000);
	gust_secret_stop();
	if (v->etcd)
		gust_etcd_close(v->etcd);
	gust_transport_close(v->transport); /* after the sockets: each held its own config */
	gust_cfg_free(inv_config_table, &v->cfg);
}

int main(int argc, char **argv)
{
	inv v = {0};
	gust_error *err = NULL;
	int rv = gust_daemon_init(inv_config_table, &v.cfg, "gust-invoker", "invoker", argc, argv,
	                          on_signal);
	if (rv != 0)
		return rv < 0 ? 0 : rv;
	if ((rv = inv_build(&v, &err)) != 0) {
		gust_log_error("INV-START", "%s", gust_error_msg(err));
		gust_error_free(err);
		inv_destroy(&v);
		return 1;
	}
	gust_log_info("INV-READY", "invoker %s taking activations at %s with %lld MB", v.cfg.id,
	              v.address, v.cfg.memory_mb);
	while (!inv_stop)
		pause();
	gust_log_info("INV-STOP", "stopping");
	inv_destroy(&v);
	return 0;
}
