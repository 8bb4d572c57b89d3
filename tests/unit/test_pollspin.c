/*
 * Unit tests of core/pollspin.c: epoll_wait as the libraries find it (by
 * dynamic lookup, as libsofia-sip-ua binds to it) is plexusd's; on a thread
 * that asked to avoid poll spins, the fourth empty zero-timeout wait in a row
 * sleeps about a millisecond and the count starts again after it; a ready
 * event is returned at once whatever the count; a thread that did not ask
 * keeps zero-timeout waits as they are.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <plexus/core.h>

typedef int epoll_wait_fn(int, struct epoll_event *, int, int);

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

struct poll_set {
	int ep, ev;
};

static int poll_set_open(struct poll_set *s)
{
	struct epoll_event e = {.events = EPOLLIN};

	s->ep = epoll_create1(0);
	s->ev = eventfd(0, EFD_NONBLOCK);
	if (s->ep < 0 || s->ev < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, s->ev, &e) < 0)
		return -1;
	return 0;
}

static void poll_set_close(struct poll_set *s)
{
	close(s->ep);
	close(s->ev);
}

/* One zero-timeout wait through the library-visible epoll_wait; returns its
 * result and how long it took in *took_us. */
static int zero_wait(const struct poll_set *s, long long *took_us)
{
	epoll_wait_fn *wait = (epoll_wait_fn *)dlsym(RTLD_DEFAULT, "epoll_wait");
	struct epoll_event out[4];
	long long t0 = now_us();
	int n = wait(s->ep, out, 4, 0);

	*took_us = now_us() - t0;
	return n;
}

static void test_libraries_find_ours(void)
{
	CU_ASSERT_PTR_EQUAL(dlsym(RTLD_DEFAULT, "epoll_wait"), (void *)epoll_wait);
}

static void test_spin_is_bounded(void)
{
	struct poll_set s;
	long long took;

	CU_ASSERT_FATAL(poll_set_open(&s) == 0);
	px_thread_avoid_poll_spin();
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 3; i++)
			CU_ASSERT_EQUAL(zero_wait(&s, &took), 0);
		CU_ASSERT_EQUAL(zero_wait(&s, &took), 0);
		CU_ASSERT(took >= 900); /* the fourth one slept */
	}
	poll_set_close(&s);
}

static void test_ready_event_not_delayed(void)
{
	struct poll_set s;
	long long took;
	uint64_t one = 1;

	CU_ASSERT_FATAL(poll_set_open(&s) == 0);
	px_thread_avoid_poll_spin();
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(zero_wait(&s, &took), 0);
	CU_ASSERT_EQUAL(write(s.ev, &one, sizeof(one)), (ssize_t)sizeof(one));
	CU_ASSERT_EQUAL(zero_wait(&s, &took), 1);
	/* the event reset the count: three more may find nothing at once */
	CU_ASSERT_EQUAL(read(s.ev, &one, sizeof(one)), (ssize_t)sizeof(one));
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(zero_wait(&s, &took), 0);
	poll_set_close(&s);
}

/* A thread that did not ask: ten empty zero-timeout waits never sleep a
 * millisecond each (all ten together well under the 10 ms they would take). */
static void *plain_thread(void *arg)
{
	struct poll_set *s = arg;
	long long took, total = 0;

	for (int i = 0; i < 10; i++) {
		if (zero_wait(s, &took) != 0)
			return (void *)1;
		total += took;
	}
	return total < 9000 ? NULL : (void *)2;
}

static void test_other_threads_untouched(void)
{
	struct poll_set s;
	pthread_t t;
	void *res = (void *)3;

	CU_ASSERT_FATAL(poll_set_open(&s) == 0);
	CU_ASSERT_FATAL(pthread_create(&t, NULL, plain_thread, &s) == 0);
	pthread_join(t, &res);
	CU_ASSERT_PTR_NULL(res);
	poll_set_close(&s);
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc func;
	} tests[] = {
		{"libraries find plexusd's epoll_wait", test_libraries_find_ours},
		{"spin is bounded", test_spin_is_bounded},
		{"ready event not delayed", test_ready_event_not_delayed},
		{"other threads untouched", test_other_threads_untouched},
	};
	CU_pSuite suite;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("pollspin", NULL, NULL);
	for (size_t i = 0; suite && i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].func))
			suite = NULL;
	if (!suite) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures != 0;
}
