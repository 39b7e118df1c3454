/* sandbox_echo_action.c - the native action of bench/sandbox_bench.c: speaks
 * the action-loop protocol itself (one line in, {"ok":true} on fd 3, the
 * sentinels on stdout and stderr). Built small (dynamic, stripped) by sandbox_bench.sh: the launcher is what is measured. */
#include <unistd.h>

#define SENTINEL "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"

int main(void)
{
	char buf[65536];
	ssize_t n;
	while ((n = read(0, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n')
				continue;
			if (write(3, "{\"ok\":true}\n", 12) != 12 ||
			    write(1, SENTINEL, sizeof(SENTINEL) - 1) < 0 ||
			    write(2, SENTINEL, sizeof(SENTINEL) - 1) < 0)
				return 1;
		}
	}
	return 0;
}
