/*
 * counter: the demo process. Prints "READY" once, then "count N pid P"
 * every second, forever. On SIGUSR2 it prints PASS and exits 0, so the
 * harness can drive it like the other test programs.
 *
 * Usage: counter [WORKDIR]   (WORKDIR is accepted and ignored)
 */
#include "common.h"

int main(void)
{
	install_trigger();
	ready();
	for (unsigned long n = 0; !g_triggered; n++) {
		say("count %lu pid %d", n, getpid());
		/* SIGUSR2 interrupts the sleep (no SA_RESTART): reacts at once. */
		struct timespec ts = { 1, 0 };
		while (!g_triggered && nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	say("PASS");
	return 0;
}
