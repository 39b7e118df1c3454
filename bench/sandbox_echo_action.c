/* sandbox_echo_action.c - the native action of bench/sandbox_bench.c: speaks
 * the action-loop protocol itself (one line in, {"ok":true} on fd 3, which
 * also ends the activation's logs). Built small (dynamic, stripped) by
 * sandbox_bench.sh: the launcher is what is measured. */
#include <unistd.h>

int main(void)
{
	char buf[65536];
	ssize_t n;
	while ((n = read(0, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n')
				continue;
			if (write(3, "{\"ok\":true}\n", 12) != 12)
				return 1;
		}
	}
	return 0;
}
