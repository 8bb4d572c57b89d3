/*
 * Unit tests of the Dial application (apps/app_dial.c), run as the real
 * module, loaded through the loader from a temporary module directory. The
 * channels are those of a fake technology "Fake" defined here, whose
 * operations only record what they were asked to do; Dial runs in a thread
 * of its own as it would in a session thread, and the test plays the far
 * ends by queueing controls and hangups on the outbound channels (and on
 * the caller) and waits, always with a bound, for what Dial does in reply.
 * Covered: answer and what it sets, busy, timeout, cancel by the caller,
 * unreachable and failing targets and how several results are summed up,
 * ringing passed once, the losers of an answer hung up, hangups and hold
 * passed across an answered call, early media and the bridge relaying real
 * RTP through the media engine, channels without RTP, arguments and
 * options, the documentation shown by the console, and load -> unload ->
 * load of the module. After each test every channel must be gone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/log.h>
#include <plexus/media.h>
#include <plexus/module.h>

#include "../../core/channel_commands.h"
#include "../../core/cli_internal.h"
#include "../../core/loader.h"
#include "../../core/log_internal.h"
#include "../../core/media_internal.h"

/* The longest any single wait of a test may take. */
#define WAIT_MS 3000

#define ASSERT_STR(actual, expected)                                                               \
	do {                                                                                       \
		const char *a_ = (actual), *e_ = (expected);                                       \
		bool same_ = a_ && !strcmp(a_, e_);                                                \
		if (!same_)                                                                        \
			fprintf(stderr, "\n  expected \"%s\", got \"%s\" (line %d)\n", e_,         \
				a_ ? a_ : "(null)", __LINE__);                                     \
		CU_ASSERT(same_);                                                                  \
	} while (0)

static char tmpdir[] = "/tmp/plexus-test-app-dial-XXXXXX";
static char moddir[PATH_MAX];
static bool dial_loaded;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the fake channel technology ---- */

#define MAX_IND  64
#define MAX_LEGS 16

struct fake_pvt {
	char dest[64];
	int calls, answers, hangups;
	int call_timeout_ms;
	int hangup_cause; /* the channel's cause when hangup() ran */
	enum px_control ind[MAX_IND];
	int nind;
	px_rtp *rtp;
};

/* Guards every fake_pvt and the tables below; fake_cond is signalled
 * whenever anything recorded changes. */
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fake_cond;
static px_channel *outbound[MAX_LEGS]; /* a reference each, in request order */
static int noutbound;
static int destroyed;
static bool legs_get_rtp; /* request() gives each leg an RTP session */
/* When ringing is indicated to a channel, that channel hangs up and this
 * one answers, at the same moment (see test_cancel). */
static px_channel *answer_on_ringing;

static const struct px_channel_tech fake_tech;

static void fake_changed(void)
{
	pthread_cond_broadcast(&fake_cond);
}

static px_rtp *new_rtp(void)
{
	struct sockaddr_in local = {.sin_family = AF_INET};
	px_rtp *r = NULL;
	px_err err = {""};

	local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (px_rtp_new((struct sockaddr *)&local, &r, &err) < 0)
		fprintf(stderr, "\n  px_rtp_new: %s\n", err.msg);
	return r;
}

static px_channel *fake_new(const char *dest, const char *linkedid, bool with_rtp)
{
	struct fake_pvt *pvt = calloc(1, sizeof(*pvt));
	char prefix[80];
	px_channel *ch;

	if (!pvt)
		return NULL;
	snprintf(pvt->dest, sizeof(pvt->dest), "%s", dest);
	snprintf(prefix, sizeof(prefix), "Fake/%s", dest);
	ch = px_channel_alloc(&fake_tech, prefix, linkedid, pvt);
	if (!ch) {
		free(pvt);
		return NULL;
	}
	if (with_rtp) {
		pvt->rtp = new_rtp();
		px_channel_set_rtp(ch, pvt->rtp);
	}
	return ch;
}

static px_channel *fake_request(const char *dest, px_channel *requestor, int *cause)
{
	px_channel *ch;

	if (!strncmp(dest, "unreach", 7)) {
		*cause = PX_CAUSE_SUBSCRIBER_ABSENT;
		return NULL;
	}
	if (!strncmp(dest, "congest", 7)) {
		*cause = PX_CAUSE_CONGESTION;
		return NULL;
	}
	pthread_mutex_lock(&fake_lock);
	if (noutbound == MAX_LEGS) {
		pthread_mutex_unlock(&fake_lock);
		*cause = PX_CAUSE_CONGESTION;
		return NULL;
	}
	pthread_mutex_unlock(&fake_lock);
	ch = fake_new(dest, requestor ? px_channel_linkedid(requestor) : NULL, legs_get_rtp);
	if (!ch) {
		*cause = PX_CAUSE_CONGESTION;
		return NULL;
	}
	pthread_mutex_lock(&fake_lock);
	outbound[noutbound++] = px_channel_ref(ch);
	fake_changed();
	pthread_mutex_unlock(&fake_lock);
	return ch;
}

static int fake_call(px_channel *ch, int timeout_ms)
{
	struct fake_pvt *pvt = px_channel_pvt(ch);
	bool fail = !strncmp(pvt->dest, "failcall", 8);

	pthread_mutex_lock(&fake_lock);
	pvt->calls++;
	pvt->call_timeout_ms = timeout_ms;
	fake_changed();
	pthread_mutex_unlock(&fake_lock);
	if (fail)
		return -1;
	px_channel_set_state(ch, PX_STATE_DIALING);
	return 0;
}

static int fake_answer(px_channel *ch)
{
	struct fake_pvt *pvt = px_channel_pvt(ch);

	pthread_mutex_lock(&fake_lock);
	pvt->answers++;
	fake_changed();
	pthread_mutex_unlock(&fake_lock);
	return 0;
}

static int fake_indicate(px_channel *ch, enum px_control control)
{
	struct fake_pvt *pvt = px_channel_pvt(ch);
	px_channel *answering = NULL;

	pthread_mutex_lock(&fake_lock);
	if (pvt->nind < MAX_IND)
		pvt->ind[pvt->nind++] = control;
	if (control == PX_CONTROL_RINGING) {
		answering = answer_on_ringing;
		answer_on_ringing = NULL;
	}
	fake_changed();
	pthread_mutex_unlock(&fake_lock);
	if (answering) {
		px_channel_queue_hangup(ch, PX_CAUSE_NORMAL_CLEARING);
		px_channel_queue_control(answering, PX_CONTROL_ANSWER);
	}
	return 0;
}

static int fake_hangup(px_channel *ch)
{
	struct fake_pvt *pvt = px_channel_pvt(ch);
	int cause = px_channel_hangup_cause(ch);

	pthread_mutex_lock(&fake_lock);
	pvt->hangups++;
	pvt->hangup_cause = cause;
	fake_changed();
	pthread_mutex_unlock(&fake_lock);
	return 0;
}

static void fake_destroy(px_channel *ch)
{
	struct fake_pvt *pvt = px_channel_pvt(ch);

	if (pvt->rtp) {
		px_channel_set_rtp(ch, NULL);
		px_rtp_destroy(pvt->rtp);
	}
	free(pvt);
	pthread_mutex_lock(&fake_lock);
	destroyed++;
	fake_changed();
	pthread_mutex_unlock(&fake_lock);
}

static const struct px_channel_tech fake_tech = {
	.type = "Fake",
	.description = "test: records what it is asked to do",
	.request = fake_request,
	.call = fake_call,
	.answer = fake_answer,
	.indicate = fake_indicate,
	.hangup = fake_hangup,
	.destroy = fake_destroy,
};

/* A copy of what the fake recorded for ch. */
static struct fake_pvt rec(px_channel *ch)
{
	struct fake_pvt copy = {.calls = -1};

	if (!ch)
		return copy;
	pthread_mutex_lock(&fake_lock);
	copy = *(struct fake_pvt *)px_channel_pvt(ch);
	pthread_mutex_unlock(&fake_lock);
	return copy;
}

/* How many times control was indicated to ch. */
static int indicated(px_channel *ch, enum px_control control)
{
	struct fake_pvt r = rec(ch);
	int n = 0;

	for (int i = 0; i < r.nind; i++)
		n += r.ind[i] == control;
	return n;
}

/* The outbound channel requested for dest (the table's reference), or NULL. */
static px_channel *leg(const char *dest)
{
	px_channel *found = NULL;

	pthread_mutex_lock(&fake_lock);
	for (int i = 0; i < noutbound && !found; i++)
		if (!strcmp(((struct fake_pvt *)px_channel_pvt(outbound[i]))->dest, dest))
			found = outbound[i];
	pthread_mutex_unlock(&fake_lock);
	return found;
}

static int legs_requested(void)
{
	int n;

	pthread_mutex_lock(&fake_lock);
	n = noutbound;
	pthread_mutex_unlock(&fake_lock);
	return n;
}

static bool called(const char *dest)
{
	return rec(leg(dest)).calls >= 1;
}

/* Sleep until the fake records something, or 10 ms. */
static void nap(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += 10 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&fake_lock);
	pthread_cond_timedwait(&fake_cond, &fake_lock, &ts);
	pthread_mutex_unlock(&fake_lock);
}

/* Evaluate expr until it holds or ms pass; its last value. */
#define WAIT_UNTIL(expr, ms)                                                                       \
	({                                                                                         \
		long long until_ = now_ms() + (ms);                                                \
		bool ok_;                                                                          \
		while (!(ok_ = (expr)) && now_ms() < until_)                                       \
			nap();                                                                     \
		ok_;                                                                               \
	})

/* ---- the caller and Dial in its own thread ---- */

static px_channel *caller;

static px_channel *make_caller(bool with_rtp)
{
	px_channel *ch = fake_new("caller", NULL, with_rtp);

	if (ch) {
		px_channel_set_caller(ch, "1001", "Alice");
		px_channel_set_state(ch, PX_STATE_RING);
	}
	return ch;
}

struct dial_run {
	pthread_t thread;
	px_channel *ch;
	char args[256];
	int rc;
	bool done;
	long long started, ended;
};

static void *dial_main(void *arg)
{
	struct dial_run *r = arg;
	px_err err = {""};
	int rc = px_app_exec(r->ch, "Dial", r->args, &err);

	if (err.msg[0])
		fprintf(stderr, "\n  px_app_exec: %s\n", err.msg);
	pthread_mutex_lock(&fake_lock);
	r->rc = rc;
	r->ended = now_ms();
	r->done = true;
	fake_changed();
	pthread_mutex_unlock(&fake_lock);
	return NULL;
}

static bool dial_start(struct dial_run *r, const char *args)
{
	memset(r, 0, sizeof(*r));
	r->ch = caller;
	snprintf(r->args, sizeof(r->args), "%s", args);
	r->started = now_ms();
	return pthread_create(&r->thread, NULL, dial_main, r) == 0;
}

static bool dial_done(struct dial_run *r)
{
	bool done;

	pthread_mutex_lock(&fake_lock);
	done = r->done;
	pthread_mutex_unlock(&fake_lock);
	return done;
}

/* Wait (bounded) for Dial to return and give its result. If it does not,
 * the test fails and every channel is hung up so that Dial ends anyway. */
static int dial_finish(struct dial_run *r)
{
	bool ok = WAIT_UNTIL(dial_done(r), WAIT_MS);

	CU_ASSERT(ok);
	if (!ok) {
		fprintf(stderr, "\n  Dial(%s) did not return in time\n", r->args);
		px_channel_hangup(caller, PX_CAUSE_NORMAL_CLEARING);
		for (int i = 0; i < legs_requested(); i++)
			px_channel_hangup(outbound[i], PX_CAUSE_NORMAL_CLEARING);
		if (!WAIT_UNTIL(dial_done(r), 10000)) {
			fprintf(stderr, "test_app_dial: Dial is stuck; giving up\n");
			abort();
		}
	}
	pthread_join(r->thread, NULL);
	return r->rc;
}

/* Dial on the caller in this thread, for dials that end without help. */
static int dial_now(const char *args)
{
	px_err err = {""};

	return px_app_exec(caller, "Dial", args, &err);
}

/* A channel variable of the caller; "(unset)" when there is none. */
static const char *var(const char *name)
{
	static char buf[256];

	if (px_channel_var_get(caller, name, buf, sizeof(buf)) < 0)
		snprintf(buf, sizeof(buf), "(unset)");
	return buf;
}

static bool peer_is(px_channel *ch, px_channel *expected)
{
	px_channel *p = px_channel_get_peer(ch);

	px_channel_unref(p);
	return p == expected;
}

/* Drop the test's references to every channel; how many channels remain. */
static size_t release_all(void)
{
	pthread_mutex_lock(&fake_lock);
	int n = noutbound;
	noutbound = 0;
	pthread_mutex_unlock(&fake_lock);
	for (int i = 0; i < n; i++)
		px_channel_unref(outbound[i]);
	px_channel_unref(caller);
	caller = NULL;
	return px_channel_count();
}

/* ---- log capture ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char logbuf[16384];
static size_t loglen;

static void capture_deliver(void *ctx, enum px_log_level level, const char *line, size_t len)
{
	if (level > PX_LOG_WARNING)
		return;
	pthread_mutex_lock(&log_lock);
	if (loglen + len + 2 < sizeof(logbuf)) {
		memcpy(logbuf + loglen, line, len);
		loglen += len;
		logbuf[loglen++] = '\n';
		logbuf[loglen] = '\0';
	}
	pthread_mutex_unlock(&log_lock);
}

static struct px_log_subscriber capture_sub = {
	.mask = PX_LOG_MASK(PX_LOG_ERROR) | PX_LOG_MASK(PX_LOG_WARNING),
	.deliver = capture_deliver,
};

static void clear_log(void)
{
	pthread_mutex_lock(&log_lock);
	loglen = 0;
	logbuf[0] = '\0';
	pthread_mutex_unlock(&log_lock);
}

static bool logged(const char *needle)
{
	bool found;

	pthread_mutex_lock(&log_lock);
	found = strstr(logbuf, needle) != NULL;
	pthread_mutex_unlock(&log_lock);
	return found;
}

/* ---- RTP "phones": plain UDP sockets that send to and hear from a session ---- */

static int phone_open(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Make fd the far end of r. */
static void phone_attach(int fd, px_rtp *r)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	getsockname(fd, (struct sockaddr *)&ss, &len);
	px_rtp_set_remote(r, (struct sockaddr *)&ss, false);
}

/* Send one RTP packet (PCMU, 20 ms) from the phone to session r. */
static void phone_send(int fd, px_rtp *r, uint16_t seq, uint32_t ssrc)
{
	struct sockaddr_in to = {.sin_family = AF_INET};
	unsigned char p[172] = {0x80, 0x00};
	uint32_t ts = (uint32_t)seq * 160;

	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	to.sin_port = htons(px_rtp_local_port(r));
	p[2] = seq >> 8;
	p[3] = seq & 0xff;
	p[4] = ts >> 24;
	p[5] = (ts >> 16) & 0xff;
	p[6] = (ts >> 8) & 0xff;
	p[7] = ts & 0xff;
	p[8] = ssrc >> 24;
	p[9] = (ssrc >> 16) & 0xff;
	p[10] = (ssrc >> 8) & 0xff;
	p[11] = ssrc & 0xff;
	memset(p + 12, 0xff, sizeof(p) - 12);
	sendto(fd, p, sizeof(p), 0, (struct sockaddr *)&to, sizeof(to));
}

/* Did the phone receive a packet within ms? */
static bool phone_hears(int fd, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	unsigned char buf[2048];

	if (poll(&pfd, 1, ms) != 1)
		return false;
	return recv(fd, buf, sizeof(buf), 0) > 0;
}

static void phone_drain(int fd)
{
	while (phone_hears(fd, 0))
		;
}

/* Keep sending from one phone into session r until the other phone hears
 * something (true), or a while passes (false). */
static uint16_t seqno = 1;
static bool flows(int from, px_rtp *r, int to)
{
	long long until = now_ms() + WAIT_MS;

	phone_drain(to);
	while (now_ms() < until) {
		phone_send(from, r, seqno++, 0x1234);
		if (phone_hears(to, 20))
			return true;
	}
	return false;
}

/* Send a burst; true if the other phone heard nothing of it. */
static bool silent(int from, px_rtp *r, int to)
{
	phone_drain(to);
	for (int i = 0; i < 10; i++) {
		phone_send(from, r, seqno++, 0x1234);
		if (phone_hears(to, 20))
			return false;
	}
	return true;
}

/* ---- suite set-up ---- */

/* PX_TEST_MODULEDIR is <builddir>/tests/modules/.libs, which need not
 * exist yet; the module is built as <builddir>/apps/.libs/app_dial.so. */
static int dial_module_path(char *buf, size_t size)
{
	static const char tail[] = "/tests/modules/.libs";
	const char *dir = PX_TEST_MODULEDIR;
	size_t len = strlen(dir), tlen = sizeof(tail) - 1;

	snprintf(buf, size, "%s", dir);
	if (len < tlen || strcmp(dir + len - tlen, tail))
		return -1;
	len -= tlen;
	if (snprintf(buf, size, "%.*s/apps/.libs/app_dial.so", (int)len, dir) >= (int)size)
		return -1;
	return 0;
}

static int suite_init(void)
{
	char path[PATH_MAX], link[PATH_MAX];
	px_err err = {""};

	if (!mkdtemp(tmpdir) || snprintf(moddir, sizeof(moddir), "%s/modules", tmpdir) < 0 ||
	    mkdir(moddir, 0700) != 0) {
		fprintf(stderr, "test_app_dial: %s: %s\n", tmpdir, strerror(errno));
		return -1;
	}
	if (dial_module_path(path, sizeof(path)) < 0 || access(path, R_OK) != 0) {
		fprintf(stderr, "test_app_dial: %s is missing (build the modules)\n", path);
		return -1;
	}
	if (snprintf(link, sizeof(link), "%s/app_dial.so", moddir) >= (int)sizeof(link) ||
	    symlink(path, link) != 0) {
		fprintf(stderr, "test_app_dial: cannot link %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (px_media_init(NULL, &err) < 0) {
		fprintf(stderr, "test_app_dial: px_media_init: %s\n", err.msg);
		return -1;
	}
	if (px_channel_tech_register(NULL, &fake_tech, &err) < 0 ||
	    px_channel_commands_register(&err) < 0) {
		fprintf(stderr, "test_app_dial: %s\n", err.msg);
		return -1;
	}
	if (px_loader_init(moddir, &err) < 0 || px_loader_load("app_dial", &err) < 0) {
		fprintf(stderr, "test_app_dial: %s\n", err.msg);
		return -1;
	}
	dial_loaded = true;
	px_log_subscribe(&capture_sub);
	return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	return remove(path);
}

static int suite_cleanup(void)
{
	px_log_unsubscribe(&capture_sub);
	px_loader_shutdown();
	px_channel_commands_unregister();
	px_channel_tech_unregister(&fake_tech);
	px_cli_registry_shutdown();
	px_media_shutdown();
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_setup(void)
{
	legs_get_rtp = false;
	destroyed = 0;
	clear_log();
	caller = make_caller(false);
}

static void test_teardown(void)
{
	answer_on_ringing = NULL;
	release_all();
	legs_get_rtp = false;
}

/* ---- tests ---- */

static void test_answer(void)
{
	struct dial_run r;
	px_channel *a;
	char num[32], name[32];

	CU_ASSERT_FATAL(dial_loaded && caller);
	CU_ASSERT_FATAL(dial_start(&r, "Fake/a,5"));
	CU_ASSERT(WAIT_UNTIL(called("a"), WAIT_MS));
	a = leg("a");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);

	/* The outbound leg: caller ID, connected line, linkedid, shared waiter. */
	CU_ASSERT_EQUAL(rec(a).call_timeout_ms, 5000);
	px_channel_get_caller(a, num, sizeof(num), name, sizeof(name));
	ASSERT_STR(num, "1001");
	ASSERT_STR(name, "Alice");
	px_channel_get_connected(a, num, sizeof(num), name, sizeof(name));
	ASSERT_STR(num, "1001");
	ASSERT_STR(name, "Alice");
	ASSERT_STR(px_channel_linkedid(a), px_channel_linkedid(caller));
	CU_ASSERT_PTR_EQUAL(px_channel_waiter(a), px_channel_waiter(caller));

	px_channel_queue_control(a, PX_CONTROL_RINGING);
	CU_ASSERT(WAIT_UNTIL(indicated(caller, PX_CONTROL_RINGING) == 1, WAIT_MS));
	CU_ASSERT_EQUAL(rec(caller).answers, 0);

	px_channel_queue_control(a, PX_CONTROL_ANSWER);
	CU_ASSERT(WAIT_UNTIL(peer_is(a, caller), WAIT_MS));
	CU_ASSERT(peer_is(caller, a));
	CU_ASSERT_EQUAL(rec(caller).answers, 1);
	CU_ASSERT_EQUAL(px_channel_state(caller), PX_STATE_UP);
	ASSERT_STR(var("DIALSTATUS"), "ANSWER");
	ASSERT_STR(var("DIALEDPEERNAME"), px_channel_name(a));
	ASSERT_STR(var("DIALEDPEERNUMBER"), "a");
	px_channel_get_connected(caller, num, sizeof(num), name, sizeof(name));
	ASSERT_STR(num, "a");
	CU_ASSERT_FALSE(dial_done(&r));

	/* The callee hangs up: the caller is hung up with the same cause. */
	px_channel_queue_hangup(a, PX_CAUSE_NORMAL_UNSPECIFIED);
	CU_ASSERT_EQUAL(dial_finish(&r), -1);
	CU_ASSERT(px_channel_is_hungup(caller));
	CU_ASSERT_EQUAL(px_channel_hangup_cause(caller), PX_CAUSE_NORMAL_UNSPECIFIED);
	CU_ASSERT_EQUAL(rec(caller).hangups, 1);
	CU_ASSERT_EQUAL(rec(caller).hangup_cause, PX_CAUSE_NORMAL_UNSPECIFIED);
	CU_ASSERT_EQUAL(rec(a).hangups, 0); /* it ended on the wire already */
	CU_ASSERT_EQUAL(rec(caller).answers, 1);
	CU_ASSERT(peer_is(caller, NULL));
	CU_ASSERT(peer_is(a, NULL));
	ASSERT_STR(var("ANSWEREDTIME"), "0");
	CU_ASSERT_STRING_NOT_EQUAL(var("DIALEDTIME"), "(unset)");
	CU_ASSERT_PTR_NOT_EQUAL(px_channel_waiter(a), px_channel_waiter(caller));
	CU_ASSERT_EQUAL(release_all(), 0);
	CU_ASSERT_EQUAL(destroyed, 2);
}

static void test_busy(void)
{
	struct dial_run r;

	CU_ASSERT_FATAL(dial_loaded && caller);

	/* Busy as a control: Dial ends the leg with cause 17. */
	CU_ASSERT_FATAL(dial_start(&r, "Fake/a,5"));
	CU_ASSERT(WAIT_UNTIL(called("a"), WAIT_MS));
	px_channel_queue_control(leg("a"), PX_CONTROL_RINGING);
	px_channel_queue_control(leg("a"), PX_CONTROL_BUSY);
	CU_ASSERT_EQUAL(dial_finish(&r), 0);
	ASSERT_STR(var("DIALSTATUS"), "BUSY");
	CU_ASSERT_EQUAL(rec(leg("a")).hangups, 1);
	CU_ASSERT_EQUAL(rec(leg("a")).hangup_cause, PX_CAUSE_USER_BUSY);

	/* Busy as a hangup with cause 17 (486 then the leg is gone). */
	CU_ASSERT_FATAL(dial_start(&r, "Fake/b,5"));
	CU_ASSERT(WAIT_UNTIL(called("b"), WAIT_MS));
	px_channel_queue_hangup(leg("b"), PX_CAUSE_USER_BUSY);
	CU_ASSERT_EQUAL(dial_finish(&r), 0);
	ASSERT_STR(var("DIALSTATUS"), "BUSY");
	CU_ASSERT_EQUAL(rec(leg("b")).hangups, 0);

	/* The caller was neither answered nor hung up: the dialplan goes on,
	 * and the caller would be told "busy" if it ended now. */
	CU_ASSERT_EQUAL(rec(caller).answers, 0);
	CU_ASSERT_EQUAL(rec(caller).hangups, 0);
	CU_ASSERT_FALSE(px_channel_is_hungup(caller));
	CU_ASSERT_EQUAL(px_channel_hangup_cause(caller), PX_CAUSE_USER_BUSY);
	px_channel_hangup(caller, PX_CAUSE_NORMAL_CLEARING);
	CU_ASSERT_EQUAL(rec(caller).hangup_cause, PX_CAUSE_USER_BUSY);
	ASSERT_STR(var("DIALEDPEERNAME"), "(unset)");
	CU_ASSERT_EQUAL(release_all(), 0);
}

static void test_timeout(void)
{
	struct dial_run r;
	long long took;

	CU_ASSERT_FATAL(dial_loaded && caller);
	CU_ASSERT_FATAL(dial_start(&r, "Fake/a,1"));
	CU_ASSERT(WAIT_UNTIL(called("a"), WAIT_MS));
	CU_ASSERT_EQUAL(rec(leg("a")).call_timeout_ms, 1000);
	px_channel_queue_control(leg("a"), PX_CONTROL_RINGING);
	CU_ASSERT_EQUAL(dial_finish(&r), 0);
	took = r.ended - r.started;
	if (took < 950 || took > 1500)
		fprintf(stderr, "\n  Dial(Fake/a,1) took %lld ms\n", took);
	CU_ASSERT(took >= 950 && took <= 1500);
	ASSERT_STR(var("DIALSTATUS"), "NOANSWER");
	ASSERT_STR(var("DIALEDTIME"), "1");
	CU_ASSERT_EQUAL(rec(leg("a")).hangups, 1);
	CU_ASSERT_EQUAL(rec(leg("a")).hangup_cause, PX_CAUSE_NO_ANSWER);
	CU_ASSERT_EQUAL(rec(caller).hangups, 0);
	CU_ASSERT_EQUAL(px_channel_hangup_cause(caller), PX_CAUSE_NO_ANSWER);

	/* A decimal timeout. */
	CU_ASSERT_FATAL(dial_start(&r, "Fake/b,0.3"));
	CU_ASSERT_EQUAL(dial_finish(&r), 0);
	took = r.ended - r.started;
	CU_ASSERT(took >= 250 && took <= 800);
	ASSERT_STR(var("DIALSTATUS"), "NOANSWER");
	CU_ASSERT_EQUAL(release_all(), 0);
}

static void test_cancel(void)
{
	struct dial_run r;

	CU_ASSERT_FATAL(dial_loaded && caller);
	CU_ASSERT_FATAL(dial_start(&r, "Fake/a&Fake/b,10"));
	CU_ASSERT(WAIT_UNTIL(called("a") && called("b"), WAIT_MS));
	px_channel_queue_control(leg("a"), PX_CONTROL_RINGING);
	px_channel_queue_control(leg("b"), PX_CONTROL_RINGING);
	CU_ASSERT(WAIT_UNTIL(indicated(caller, PX_CONTROL_RINGING) == 1, WAIT_MS));

	/* The caller's phone hangs up (CANCEL on the wire). */
	px_channel_queue_hangup(caller, PX_CAUSE_NORMAL_CLEARING);
	CU_ASSERT_EQUAL(dial_finish(&r), -1);
	ASSERT_STR(var("DIALSTATUS"), "CANCEL");
	CU_ASSERT_EQUAL(rec(leg("a")).hangups, 1);
	CU_ASSERT_EQUAL(rec(leg("b")).hangups, 1);
	CU_ASSERT_EQUAL(rec(leg("a")).hangup_cause, PX_CAUSE_NORMAL_CLEARING);
	CU_ASSERT_EQUAL(rec(caller).answers, 0);
	CU_ASSERT_EQUAL(rec(caller).hangups, 0);
	CU_ASSERT_PTR_NOT_EQUAL(px_channel_waiter(leg("a")), px_channel_waiter(caller));
	CU_ASSERT_PTR_NOT_EQUAL(px_channel_waiter(leg("b")), px_channel_waiter(caller));

	CU_ASSERT_EQUAL(release_all(), 0);

	/* The caller hangs up just as the callee answers: both are let go. */
	caller = make_caller(false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(caller);
	CU_ASSERT_FATAL(dial_start(&r, "Fake/a,10"));
	CU_ASSERT(WAIT_UNTIL(called("a"), WAIT_MS));
	pthread_mutex_lock(&fake_lock);
	answer_on_ringing = outbound[0];
	pthread_mutex_unlock(&fake_lock);
	px_channel_queue_control(leg("a"), PX_CONTROL_RINGING);
	CU_ASSERT_EQUAL(dial_finish(&r), -1);
	ASSERT_STR(var("DIALSTATUS"), "CANCEL");
	CU_ASSERT_EQUAL(rec(caller).answers, 0);
	CU_ASSERT_EQUAL(rec(leg("a")).hangups, 1);
	CU_ASSERT(peer_is(caller, NULL));
	CU_ASSERT(peer_is(leg("a"), NULL));

	/* Dial on a caller that is gone already calls nobody. */
	CU_ASSERT_EQUAL(dial_now("Fake/c,5"), -1);
	ASSERT_STR(var("DIALSTATUS"), "CANCEL");
	CU_ASSERT_PTR_NULL(leg("c"));
	CU_ASSERT_EQUAL(release_all(), 0);
}

static void test_unreachable(void)
{
	struct dial_run r;

	CU_ASSERT_FATAL(dial_loaded && caller);

	/* The technology cannot make the channel (cause 20). */
	CU_ASSERT_EQUAL(dial_now("Fake/unreach,5"), 0);
	ASSERT_STR(var("DIALSTATUS"), "CHANUNAVAIL");
	CU_ASSERT_EQUAL(legs_requested(), 0);
	CU_ASSERT_EQUAL(px_channel_hangup_cause(caller), PX_CAUSE_SUBSCRIBER_ABSENT);

	/* No such technology; not Tech/Resource at all. */
	CU_ASSERT_EQUAL(dial_now("Nope/1002"), 0);
	ASSERT_STR(var("DIALSTATUS"), "CHANUNAVAIL");
	CU_ASSERT_EQUAL(dial_now("bogus"), 0);
	ASSERT_STR(var("DIALSTATUS"), "CHANUNAVAIL");

	/* Congestion at request; it tells more than an unreachable target. */
	CU_ASSERT_EQUAL(dial_now("Fake/congest"), 0);
	ASSERT_STR(var("DIALSTATUS"), "CONGESTION");
	CU_ASSERT_EQUAL(dial_now("Fake/unreach&Fake/congest"), 0);
	ASSERT_STR(var("DIALSTATUS"), "CONGESTION");
	CU_ASSERT_EQUAL(px_channel_hangup_cause(caller), PX_CAUSE_CONGESTION);

	/* The channel is made but calling fails: it is ended and released. */
	CU_ASSERT_EQUAL(dial_now("Fake/failcall,5"), 0);
	ASSERT_STR(var("DIALSTATUS"), "CHANUNAVAIL");
	CU_ASSERT_EQUAL(rec(leg("failcall")).hangups, 1);
	CU_ASSERT_PTR_NOT_EQUAL(px_channel_waiter(leg("failcall")), px_channel_waiter(caller));

	/* One target unreachable, the other busy: BUSY. */
	CU_ASSERT_FATAL(dial_start(&r, "Fake/unreach&Fake/a,5"));
	CU_ASSERT(WAIT_UNTIL(called("a"), WAIT_MS));
	px_channel_queue_control(leg("a"), PX_CONTROL_BUSY);
	CU_ASSERT_EQUAL(dial_finish(&r), 0);
	ASSERT_STR(var("DIALSTATUS"), "BUSY");

	CU_ASSERT_EQUAL(rec(caller).hangups, 0);
	CU_ASSERT_EQUAL(release_all(), 0);
}

/* Hangup causes before answer, and how several results are summed up. */
static void test_causes(void)
{
	static const struct {
		int cause;
		const char *status;
	} cases[] = {
		{PX_CAUSE_USER_BUSY, "BUSY"},
		{PX_CAUSE_NO_USER_RESPONSE, "NOANSWER"},
		{PX_CAUSE_NO_ANSWER, "NOANSWER"},
		{PX_CAUSE_UNALLOCATED, "CHANUNAVAIL"},
		{PX_CAUSE_SUBSCRIBER_ABSENT, "CHANUNAVAIL"},
		{PX_CAUSE_CONGESTION, "CONGESTION"},
		{38, "CONGESTION"},
		{41, "CONGESTION"},
		{42, "CONGESTION"},
		{PX_CAUSE_CALL_REJECTED, "CHANUNAVAIL"},
		{PX_CAUSE_NORMAL_CLEARING, "CHANUNAVAIL"},
	};
	struct dial_run r;
	char dest[32], args[64];

	CU_ASSERT_FATAL(dial_loaded && caller);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(dest, sizeof(dest), "c%zu", i);
		snprintf(args, sizeof(args), "Fake/%s,5", dest);
		CU_ASSERT_FATAL(dial_start(&r, args));
		CU_ASSERT(WAIT_UNTIL(called(dest), WAIT_MS));
		px_channel_queue_hangup(leg(dest), cases[i].cause);
		CU_ASSERT_EQUAL(dial_finish(&r), 0);
		ASSERT_STR(var("DIALSTATUS"), cases[i].status);
		CU_ASSERT_EQUAL(px_channel_hangup_cause(caller), cases[i].cause);
	}

	/* Three targets: unavailable, no answer, congested -> NOANSWER. */
	CU_ASSERT_FATAL(dial_start(&r, "Fake/x&Fake/y&Fake/z,5"));
	CU_ASSERT(WAIT_UNTIL(called("x") && called("y") && called("z"), WAIT_MS));
	px_channel_queue_hangup(leg("x"), PX_CAUSE_SUBSCRIBER_ABSENT);
	px_channel_queue_hangup(leg("y"), PX_CAUSE_NO_ANSWER);
	px_channel_queue_control(leg("z"), PX_CONTROL_CONGESTION);
	CU_ASSERT_EQUAL(dial_finish(&r), 0);
	ASSERT_STR(var("DIALSTATUS"), "NOANSWER");
	CU_ASSERT_EQUAL(px_channel_hangup_cause(caller), PX_CAUSE_NO_ANSWER);
	CU_ASSERT_EQUAL(rec(leg("z")).hangup_cause, PX_CAUSE_CONGESTION);
	CU_ASSERT_EQUAL(release_all(), 0);
}

static void test_second_answers(void)
{
	struct dial_run r;
	px_channel *a, *b;

	CU_ASSERT_FATAL(dial_loaded && caller);
	CU_ASSERT_FATAL(dial_start(&r, "Fake/a&Fake/b,10"));
	CU_ASSERT(WAIT_UNTIL(called("a") && called("b"), WAIT_MS));
	a = leg("a");
	b = leg("b");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);

	/* Both ring, more than once: the caller hears of it once. */
	px_channel_queue_control(a, PX_CONTROL_RINGING);
	px_channel_queue_control(b, PX_CONTROL_RINGING);
	CU_ASSERT(WAIT_UNTIL(indicated(caller, PX_CONTROL_RINGING) >= 1, WAIT_MS));
	px_channel_queue_control(b, PX_CONTROL_RINGING);
	px_channel_queue_control(a, PX_CONTROL_RINGING);
	usleep(100 * 1000);

	px_channel_queue_control(b, PX_CONTROL_ANSWER);
	CU_ASSERT(WAIT_UNTIL(peer_is(caller, b), WAIT_MS));
	CU_ASSERT(WAIT_UNTIL(rec(a).hangups == 1, WAIT_MS));
	CU_ASSERT_EQUAL(indicated(caller, PX_CONTROL_RINGING), 1);
	CU_ASSERT_EQUAL(rec(a).hangup_cause, 26); /* answered elsewhere */
	CU_ASSERT_EQUAL(rec(b).hangups, 0);
	CU_ASSERT_EQUAL(rec(caller).answers, 1);
	CU_ASSERT(peer_is(b, caller));
	CU_ASSERT(peer_is(a, NULL));
	ASSERT_STR(var("DIALEDPEERNAME"), px_channel_name(b));
	ASSERT_STR(var("DIALEDPEERNUMBER"), "b");

	/* Events of the loser after the answer change nothing. */
	px_channel_queue_control(a, PX_CONTROL_BUSY);
	usleep(50 * 1000);
	ASSERT_STR(var("DIALSTATUS"), "ANSWER");

	/* The caller hangs up the answered call: the callee follows, same cause. */
	px_channel_queue_hangup(caller, PX_CAUSE_NORMAL_CLEARING);
	CU_ASSERT_EQUAL(dial_finish(&r), -1);
	CU_ASSERT_EQUAL(rec(b).hangups, 1);
	CU_ASSERT_EQUAL(rec(b).hangup_cause, PX_CAUSE_NORMAL_CLEARING);
	CU_ASSERT_EQUAL(rec(a).hangups, 1);
	CU_ASSERT_EQUAL(rec(caller).hangups, 0); /* gone on the wire already */
	ASSERT_STR(var("DIALSTATUS"), "ANSWER");
	CU_ASSERT(peer_is(caller, NULL));
	CU_ASSERT(peer_is(b, NULL));
	CU_ASSERT_EQUAL(release_all(), 0);
}

static void test_hold(void)
{
	struct dial_run r;
	px_channel *a;
	struct px_channel_event dtmf = {.type = PX_EVENT_DTMF, .digit = '5'};

	CU_ASSERT_FATAL(dial_loaded && caller);
	px_channel_set_state(caller, PX_STATE_UP); /* answered before Dial */
	CU_ASSERT_FATAL(dial_start(&r, "Fake/a"));
	CU_ASSERT(WAIT_UNTIL(called("a"), WAIT_MS));
	a = leg("a");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(rec(a).call_timeout_ms, -1); /* no timeout */
	px_channel_queue_control(a, PX_CONTROL_ANSWER);
	CU_ASSERT(WAIT_UNTIL(peer_is(caller, a), WAIT_MS));
	CU_ASSERT_EQUAL(rec(caller).answers, 0); /* it was up already */

	px_channel_queue_control(caller, PX_CONTROL_HOLD);
	CU_ASSERT(WAIT_UNTIL(indicated(a, PX_CONTROL_HOLD) == 1, WAIT_MS));
	px_channel_queue_control(caller, PX_CONTROL_UNHOLD);
	CU_ASSERT(WAIT_UNTIL(indicated(a, PX_CONTROL_UNHOLD) == 1, WAIT_MS));
	px_channel_queue_control(a, PX_CONTROL_HOLD);
	CU_ASSERT(WAIT_UNTIL(indicated(caller, PX_CONTROL_HOLD) == 1, WAIT_MS));
	px_channel_queue_control(a, PX_CONTROL_UNHOLD);
	CU_ASSERT(WAIT_UNTIL(indicated(caller, PX_CONTROL_UNHOLD) == 1, WAIT_MS));

	/* Media changes without RTP and stray digits: nothing breaks. */
	px_channel_queue_control(a, PX_CONTROL_MEDIA_CHANGED);
	px_channel_queue_control(caller, PX_CONTROL_MEDIA_CHANGED);
	px_channel_queue_event(caller, &dtmf);
	usleep(50 * 1000);
	CU_ASSERT_FALSE(dial_done(&r));
	CU_ASSERT_EQUAL(indicated(a, PX_CONTROL_HOLD), 1);
	CU_ASSERT_EQUAL(indicated(caller, PX_CONTROL_HOLD), 1);

	/* A console hangs up the caller: the callee follows with its cause. */
	px_channel_hangup(caller, PX_CAUSE_CALL_REJECTED);
	CU_ASSERT_EQUAL(dial_finish(&r), -1);
	CU_ASSERT_EQUAL(rec(a).hangups, 1);
	CU_ASSERT_EQUAL(rec(a).hangup_cause, PX_CAUSE_CALL_REJECTED);
	CU_ASSERT_EQUAL(release_all(), 0);
}

/* Early media and the answered call relay real RTP through the media engine. */
static void test_rtp_bridge(void)
{
	struct dial_run r;
	px_channel *a, *b, *c;
	px_rtp *rc, *ra, *rb;
	int pc = phone_open(), pa = phone_open(), pb = phone_open(), pcc = phone_open();

	CU_ASSERT_FATAL(dial_loaded);
	CU_ASSERT_FATAL(pc >= 0 && pa >= 0 && pb >= 0 && pcc >= 0);
	px_channel_unref(caller);
	caller = make_caller(true);
	CU_ASSERT_FATAL(caller && px_channel_rtp(caller));
	rc = px_channel_rtp(caller);
	phone_attach(pc, rc);
	legs_get_rtp = true;

	CU_ASSERT_FATAL(dial_start(&r, "Fake/a&Fake/b&Fake/c,10"));
	CU_ASSERT(WAIT_UNTIL(called("a") && called("b") && called("c"), WAIT_MS));
	a = leg("a");
	b = leg("b");
	c = leg("c");
	CU_ASSERT_FATAL(a && b && c && px_channel_rtp(a) && px_channel_rtp(b) && px_channel_rtp(c));
	ra = px_channel_rtp(a);
	rb = px_channel_rtp(b);
	phone_attach(pa, ra);
	phone_attach(pb, rb);
	phone_attach(pcc, px_channel_rtp(c));

	/* Nothing is bridged before anyone gives early media. */
	CU_ASSERT(silent(pc, rc, pa));

	/* a gives early media: the caller hears a, both ways. */
	px_channel_queue_control(a, PX_CONTROL_PROGRESS);
	CU_ASSERT(WAIT_UNTIL(indicated(caller, PX_CONTROL_PROGRESS) == 1, WAIT_MS));
	CU_ASSERT(flows(pa, ra, pc));
	CU_ASSERT(flows(pc, rc, pa));

	/* a turns out busy: its early media stops, b's is the next heard. */
	px_channel_queue_control(a, PX_CONTROL_BUSY);
	CU_ASSERT(WAIT_UNTIL(rec(a).hangups == 1, WAIT_MS));
	CU_ASSERT(silent(pc, rc, pa));
	px_channel_queue_control(b, PX_CONTROL_PROGRESS);
	CU_ASSERT(flows(pb, rb, pc));

	/* c's early media comes second: the caller keeps hearing b. */
	px_channel_queue_control(c, PX_CONTROL_PROGRESS);
	usleep(100 * 1000);
	CU_ASSERT(silent(pc, rc, pcc));
	CU_ASSERT(flows(pc, rc, pb));
	CU_ASSERT_EQUAL(indicated(caller, PX_CONTROL_PROGRESS), 1);

	/* c answers: b is hung up and the caller talks to c. */
	px_channel_queue_control(c, PX_CONTROL_ANSWER);
	CU_ASSERT(WAIT_UNTIL(peer_is(caller, c), WAIT_MS));
	CU_ASSERT(WAIT_UNTIL(rec(b).hangups == 1, WAIT_MS));
	CU_ASSERT(flows(pc, rc, pcc));
	CU_ASSERT(flows(pcc, px_channel_rtp(c), pc));
	CU_ASSERT(silent(pc, rc, pb));

	/* A media change re-bridges: still talking. */
	px_channel_queue_control(c, PX_CONTROL_MEDIA_CHANGED);
	usleep(50 * 1000);
	CU_ASSERT(flows(pc, rc, pcc));

	/* c hangs up: the bridge is gone with the call. */
	px_channel_queue_hangup(c, PX_CAUSE_NORMAL_CLEARING);
	CU_ASSERT_EQUAL(dial_finish(&r), -1);
	CU_ASSERT(silent(pc, rc, pcc));
	CU_ASSERT(silent(pcc, px_channel_rtp(c), pc));

	close(pc);
	close(pa);
	close(pb);
	close(pcc);
	CU_ASSERT_EQUAL(release_all(), 0);
	CU_ASSERT_EQUAL(px_media_session_count(), 0);
}

/* One side without RTP (a technology that has no media yet): no bridging,
 * and everything else goes on as usual. */
static void test_null_rtp(void)
{
	struct dial_run r;
	px_channel *a;

	CU_ASSERT_FATAL(dial_loaded);
	px_channel_unref(caller);
	caller = make_caller(true); /* the caller has RTP, the legs have none */
	CU_ASSERT_PTR_NOT_NULL_FATAL(caller);
	CU_ASSERT_FATAL(dial_start(&r, "Fake/a,5"));
	CU_ASSERT(WAIT_UNTIL(called("a"), WAIT_MS));
	a = leg("a");
	CU_ASSERT_PTR_NULL(px_channel_rtp(a));
	px_channel_queue_control(a, PX_CONTROL_PROGRESS);
	px_channel_queue_control(a, PX_CONTROL_MEDIA_CHANGED);
	CU_ASSERT(WAIT_UNTIL(indicated(caller, PX_CONTROL_PROGRESS) == 1, WAIT_MS));
	px_channel_queue_control(a, PX_CONTROL_ANSWER);
	CU_ASSERT(WAIT_UNTIL(peer_is(caller, a), WAIT_MS));
	px_channel_queue_control(a, PX_CONTROL_MEDIA_CHANGED);
	px_channel_queue_hangup(a, PX_CAUSE_NORMAL_CLEARING);
	CU_ASSERT_EQUAL(dial_finish(&r), -1);
	ASSERT_STR(var("DIALSTATUS"), "ANSWER");
	CU_ASSERT_EQUAL(release_all(), 0);

	/* Neither side has RTP. */
	caller = make_caller(false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(caller);
	CU_ASSERT_FATAL(dial_start(&r, "Fake/b,5"));
	CU_ASSERT(WAIT_UNTIL(called("b"), WAIT_MS));
	px_channel_queue_control(leg("b"), PX_CONTROL_PROGRESS);
	px_channel_queue_control(leg("b"), PX_CONTROL_ANSWER);
	CU_ASSERT(WAIT_UNTIL(peer_is(caller, leg("b")), WAIT_MS));
	px_channel_queue_hangup(caller, PX_CAUSE_NORMAL_CLEARING);
	CU_ASSERT_EQUAL(dial_finish(&r), -1);
	CU_ASSERT_EQUAL(rec(leg("b")).hangups, 1);
	CU_ASSERT_EQUAL(release_all(), 0);
}

static void test_arguments(void)
{
	struct dial_run r;

	CU_ASSERT_FATAL(dial_loaded && caller);

	/* No target: the dialplan stops. */
	CU_ASSERT_EQUAL(dial_now(""), -1);
	ASSERT_STR(var("DIALSTATUS"), "INVALIDARGS");
	CU_ASSERT(logged("Dial requires an argument"));
	CU_ASSERT_EQUAL(dial_now(" ,5"), -1);
	CU_ASSERT_EQUAL(legs_requested(), 0);

	/* Options are not supported yet: each is named, then ignored. Blanks
	 * around targets and timeout are fine; empty targets are skipped. */
	clear_log();
	CU_ASSERT_FATAL(dial_start(&r, " Fake/a && Fake/b , 5 ,tm(moh)T"));
	CU_ASSERT(WAIT_UNTIL(called("a") && called("b"), WAIT_MS));
	CU_ASSERT_EQUAL(rec(leg("a")).call_timeout_ms, 5000);
	px_channel_queue_control(leg("a"), PX_CONTROL_BUSY);
	px_channel_queue_control(leg("b"), PX_CONTROL_BUSY);
	CU_ASSERT_EQUAL(dial_finish(&r), 0);
	ASSERT_STR(var("DIALSTATUS"), "BUSY");
	CU_ASSERT(logged("option 't'"));
	CU_ASSERT(logged("option 'm'"));
	CU_ASSERT(logged("option 'T'"));
	CU_ASSERT_FALSE(logged("option 'o'")); /* inside m(...) */
	CU_ASSERT_EQUAL(legs_requested(), 2);

	/* A bad timeout is reported and means no timeout. */
	clear_log();
	CU_ASSERT_FATAL(dial_start(&r, "Fake/c,soon"));
	CU_ASSERT(WAIT_UNTIL(called("c"), WAIT_MS));
	CU_ASSERT_EQUAL(rec(leg("c")).call_timeout_ms, -1);
	CU_ASSERT(logged("invalid timeout 'soon'"));
	px_channel_queue_hangup(leg("c"), PX_CAUSE_NO_ANSWER);
	CU_ASSERT_EQUAL(dial_finish(&r), 0);
	ASSERT_STR(var("DIALSTATUS"), "NOANSWER");
	CU_ASSERT_EQUAL(release_all(), 0);
}

static void test_module(void)
{
	px_err err = {""};
	char *out = NULL;

	CU_ASSERT_FATAL(dial_loaded);
	CU_ASSERT(px_app_exists("Dial"));
	CU_ASSERT(px_app_exists("dial"));
	CU_ASSERT_EQUAL(px_cli_run_capture("core show application Dial", &out), PX_CLI_SUCCESS);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Dial(Tech/Resource"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "DIALSTATUS"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "CHANUNAVAIL"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "DIALEDPEERNAME"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "ANSWEREDTIME"));
	free(out);

	CU_ASSERT_EQUAL(px_loader_unload("app_dial", false, &err), 0);
	dial_loaded = false;
	CU_ASSERT_FALSE(px_app_exists("Dial"));
	CU_ASSERT_EQUAL(dial_now("Fake/a"), -1);
	CU_ASSERT_EQUAL(legs_requested(), 0);
	CU_ASSERT_EQUAL(px_loader_load("app_dial", &err), 0);
	dial_loaded = px_app_exists("Dial");
	CU_ASSERT(dial_loaded);

	/* It works after the reload. */
	CU_ASSERT_EQUAL(dial_now("Fake/unreach"), 0);
	ASSERT_STR(var("DIALSTATUS"), "CHANUNAVAIL");
	CU_ASSERT_EQUAL(release_all(), 0);
}

int main(void)
{
	CU_pSuite suite;
	pthread_condattr_t attr;
	unsigned int failures;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&fake_cond, &attr);
	pthread_condattr_destroy(&attr);
	px_log_init();
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite_with_setup_and_teardown("app_dial", suite_init, suite_cleanup,
						     test_setup, test_teardown);
	if (!suite || !CU_add_test(suite, "answer, then the callee hangs up", test_answer) ||
	    !CU_add_test(suite, "busy", test_busy) ||
	    !CU_add_test(suite, "timeout", test_timeout) ||
	    !CU_add_test(suite, "caller hangs up while ringing", test_cancel) ||
	    !CU_add_test(suite, "unreachable and failing targets", test_unreachable) ||
	    !CU_add_test(suite, "hangup causes before answer", test_causes) ||
	    !CU_add_test(suite, "two targets, the second answers", test_second_answers) ||
	    !CU_add_test(suite, "hold across an answered call", test_hold) ||
	    !CU_add_test(suite, "early media and bridge relay RTP", test_rtp_bridge) ||
	    !CU_add_test(suite, "channels without RTP", test_null_rtp) ||
	    !CU_add_test(suite, "arguments and options", test_arguments) ||
	    !CU_add_test(suite, "documentation and load/unload/load", test_module)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	px_log_shutdown();
	pthread_cond_destroy(&fake_cond);
	return failures != 0;
}
