/*
 * speed_probe: a gauge of how fast this machine runs at the moment, for
 * bench/run.sh. Twice a second it does two fixed pieces of work and
 * prints the CPU time each took, in microseconds: "MEM ALU". MEM follows
 * 20000 steps of a random cycle of pointers through 4 MiB (every load
 * waits for the one before, so it measures the caches' and memory's
 * latency); ALU is a chain of multiplications (the core alone). The times are the thread's own CPU
 * time, so waiting for a core does not count: a MEM that rises while ALU
 * stays is memory that got slower, from our own load or from whatever
 * else shares the host's caches. On this project's virtual machine
 * plexusd's CPU per call differs by a fifth between steps of the same
 * rate and configuration; this says whether the machine slowed down in
 * those steps.
 * (Measured on the idle machine: after half a second's sleep even 1 MiB
 * has left the caches, about 70 ns a load against 17 ns when warm, so MEM
 * is mostly the latency of memory and of caches shared with the host's
 * other guests.) Under 1 % of a core. Ends by itself after SECONDS; any further
 * arguments are ignored (run.sh passes its work directory, so that it
 * knows the process as its own). Built by run.sh with the C compiler.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define CHASE_BYTES (4u << 20)
#define CHASE_STEPS 20000
#define ALU_STEPS   1000000
#define PERIOD_US   500000

static double thread_cpu_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* One random cycle through every slot (Sattolo's shuffle), so the chase
 * visits the whole 8 MiB in an order no prefetcher guesses. */
static size_t *make_cycle(size_t n)
{
	size_t *next = malloc(n * sizeof(*next));
	uint64_t seed = 88172645463325252ull;

	if (!next)
		return NULL;
	for (size_t i = 0; i < n; i++)
		next[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j, t;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		j = (size_t)(seed % i);
		t = next[i];
		next[i] = next[j];
		next[j] = t;
	}
	return next;
}

int main(int argc, char **argv)
{
	size_t n = CHASE_BYTES / sizeof(size_t), at = 0;
	uint64_t x = 1;
	size_t *next;
	long secs;

	if (argc < 2 || (secs = strtol(argv[1], NULL, 10)) <= 0 || secs > 86400) {
		fprintf(stderr, "usage: speed_probe SECONDS [ignored...]\n");
		return 2;
	}
	next = make_cycle(n);
	if (!next) {
		fprintf(stderr, "speed_probe: out of memory\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (long k = 0; k < secs * (1000000 / PERIOD_US); k++) {
		double t0 = thread_cpu_us(), t1, t2;

		for (int i = 0; i < CHASE_STEPS; i++)
			at = next[at];
		t1 = thread_cpu_us();
		for (int i = 0; i < ALU_STEPS; i++)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		t2 = thread_cpu_us();
		/* at and x are printed, so the loops cannot be left out. */
		if (printf("%.0f %.0f\n", t1 - t0, t2 - t1) < 0 || (at == n && x == 0))
			break;
		usleep(PERIOD_US);
	}
	free(next);
	return 0;
}
