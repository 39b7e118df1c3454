/*
 * init.c - gust-sandbox-init: pid 1 of a sandbox, exec'd by the sandbox setup
 * (sandbox_root.c) once the launcher runs, so that no copy of the invoker's
 * memory (its code cache, its heap) stays inside the sandbox. It reaps
 * orphans and exits with the launcher's status when the launcher exits;
 * its exit kills whatever is left in the pid namespace.
 *
 *   gust-sandbox-init <launcher pid>
 *
 * Built static by CMake and bind-mounted at /.init.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	pid_t launcher = argc > 1 ? (pid_t)atoi(argv[1]) : 0;
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			_exit(125);
		if (w == launcher)
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
}
