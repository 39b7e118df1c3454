/*
 * launcher.c - Gust's native runtime in C (gust-native-launcher): the same job
 * as the Python script next to it (see there and invoker/sandbox.h) without
 * paying for a Python start on every native cold start. Built static by
 * CMake and bind-mounted into native sandboxes at /launcher.
 *
 * Reads the init line, writes the action's executable to /tmp/action/exec
 * (code as text, or base64 of an executable or of a zip holding `exec`,
 * unpacked with python3's zipfile CLI: zips are rare and the slow path),
 * sets init's env, answers {"ok":true}, and execs the
 * action with fds 0-3 as they are. The invoker writes the next message only
 * after our answer, so nothing past the init line sits unread in our buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ACTION_DIR "/tmp/action"
#define EXE ACTION_DIR "/exec"
#define ZIP ACTION_DIR "/action.zip"

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(1);
		p += w;
		n -= (size_t)w;
	}
}

static void answer(const char *json)
{
	write_all(3, json, strlen(json));
	write_all(3, "\n", 1);
}

static void answer_error(const char *why)
{
	json_t *o = json_pack("{s:s+}", "error", "Initialization has failed due to: ", why);
	char *s = json_dumps(o, JSON_COMPACT);
	answer(s != NULL ? s : "{\"error\":\"Initialization has failed\"}");
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decodes base64 in place (whitespace skipped, padding optional); returns
 * the length, or -1 on a bad character. */
static ssize_t b64decode(char *s, size_t n)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '=' || c == '\n' || c == '\r' || c == ' ' || c == '\t')
			continue;
		int v = b64val(c);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			s[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	return (ssize_t)o;
}

static int write_file(const char *path, const char *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd < 0)
		return -1;
	while (n > 0) {
		ssize_t w = write(fd, data, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return -1;
		}
		data += w;
		n -= (size_t)w;
	}
	return close(fd);
}

/* Unpacks ZIP into ACTION_DIR with python3 -m zipfile. */
static const char *unzip(void)
{
	pid_t p = fork();
	if (p < 0)
		return "cannot fork to unzip";
	if (p == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1); /* its listing is not the action's log */
		execl("/usr/bin/python3", "python3", "-m", "zipfile", "-e", ZIP, ACTION_DIR,
		      (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(p, &st, 0) < 0 && errno == EINTR)
		;
	unlink(ZIP);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return "the zip cannot be unpacked";
	if (access(EXE, F_OK) != 0)
		return "the zip has no file named 'exec'";
	return NULL;
}

/* Installs the executable; NULL or why not. */
static const char *install(json_t *init)
{
	size_t n = 0;
	const char *code = NULL;
	json_t *c = json_object_get(init, "code");
	if (json_is_string(c)) {
		code = json_string_value(c);
		n = json_string_length(c);
	}
	if (mkdir(ACTION_DIR, 0755) < 0 && errno != EEXIST)
		return "cannot create /tmp/action";
	if (json_is_true(json_object_get(init, "binary"))) {
		char *buf = malloc(n + 1);
		if (buf == NULL)
			return "out of memory";
		memcpy(buf, code != NULL ? code : "", n);
		ssize_t len = b64decode(buf, n);
		if (len < 0) {
			free(buf);
			return "the code is not valid base64";
		}
		bool zip = len >= 4 && memcmp(buf, "PK\x03\x04", 4) == 0;
		int rv = write_file(zip ? ZIP : EXE, buf, (size_t)len);
		free(buf);
		if (rv != 0)
			return "cannot write the executable";
		if (zip) {
			const char *why = unzip();
			if (why != NULL)
				return why;
		}
	} else if (write_file(EXE, code != NULL ? code : "", n) != 0) {
		return "cannot write the executable";
	}
	if (chmod(EXE, 0755) != 0)
		return "cannot make the executable executable";
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(init, "env"), k, v)
	{
		char *dump = NULL;
		const char *val = json_is_string(v)
		                      ? json_string_value(v)
		                      : (dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
		if (val != NULL)
			setenv(k, val, 1);
		free(dump);
	}
	return NULL;
}

int main(void)
{
	/* The init line, read in one go or a few; never past its newline, which
	 * is the last byte the invoker sent before waiting for us. */
	size_t cap = 1 << 16, len = 0;
	char *line = malloc(cap);
	if (line == NULL)
		return 1;
	for (;;) {
		if (len + 1 >= cap) {
			cap *= 2;
			char *bigger = realloc(line, cap);
			if (bigger == NULL)
				return 1;
			line = bigger;
		}
		ssize_t r = read(0, line + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		len += (size_t)r;
		if (line[len - 1] == '\n')
			break;
	}
	json_error_t je;
	json_t *msg = json_loadb(line, len, 0, &je);
	free(line);
	json_t *init = json_object_get(msg, "init");
	const char *why = NULL;
	if (!json_is_object(msg) || init == NULL)
		why = "the first message must be init";
	else
		why = install(json_is_object(init) ? init : NULL);
	if (why != NULL) {
		answer_error(why);
		/* Stay up to answer anything else, as the other runtimes do. */
		char buf[65536];
		ssize_t r;
		while ((r = read(0, buf, sizeof(buf))) > 0 || (r < 0 && errno == EINTR))
			if (r > 0 && memchr(buf, '\n', (size_t)r) != NULL)
				answer("{\"error\":\"not initialized\"}");
		return 0;
	}
	json_decref(msg);
	answer("{\"ok\":true}");
	char *const argv[] = {EXE, NULL};
	execv(EXE, argv);
	/* The invoker has our "ok": a failed exec ends the runtime, and the run
	 * that follows reports it as a developer error. */
	return 127;
}
