/*
 * Unit tests of pbx_lua (modules/pbx_lua.c and modules/pbx_lua_pattern.c):
 * the extension pattern matcher on its own, then the module loaded through
 * the real loader from a temporary module directory, with extensions.lua
 * written into a temporary configuration directory from tests/data/lua.
 * Calls run on channels of a small "Test" technology defined here, and the
 * dialplan reports what ran through the test application TestApp, which
 * records its data (and can block, or ask for a hangup). Log lines are
 * captured with a log subscriber. Covered: exists() with exact keys,
 * patterns and includes; precedence; the arguments of an extension
 * function; app.* and channel.* from Lua; errors (unknown application,
 * runtime error with its file:line, bad files at load and reload); reload
 * while a call is in progress; one run of the file per Lua state; calls
 * sharing a state while one is parked in an application (each with its
 * own globals, an error, the budget or the memory ceiling ending one call
 * only, Goto and 'h' beside it, a second state past 64 calls that closes
 * when idle, and the Lua memory a parked call costs); and load, unload,
 * load. With PBX_LUA_BENCH set, a measurement is printed too.
 */
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/dialplan.h>
#include <plexus/func.h>
#include <plexus/log.h>

#include "../../core/cli_internal.h"
#include "../../core/daemon.h"
#include "../../core/func_internal.h"
#include "../../core/loader.h"
#include "../../core/log_internal.h"
#include "../../modules/pbx_lua_pattern.h"

#ifndef PX_TEST_SRCDIR
#define PX_TEST_SRCDIR "tests"
#endif
/* Where the build leaves pbx_lua.so; PBX_LUA_SO in the environment wins. */
#ifndef PX_MODULES_BUILDDIR
#define PX_MODULES_BUILDDIR "modules/.libs"
#endif

static char tmpdir[] = "/tmp/plexus-test-pbx_lua-XXXXXX";
static char moddir[256];

/* ---------------------------------------------------------------- captured log */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_buf;
static size_t log_len, log_cap;

static void log_deliver(void *ctx, enum px_log_level level, const char *line, size_t len)
{
	(void)ctx;
	(void)level;
	pthread_mutex_lock(&log_lock);
	if (log_len + len + 1 > log_cap) {
		size_t cap = log_cap ? log_cap : 4096;
		char *n;
		while (cap < log_len + len + 1)
			cap *= 2;
		n = realloc(log_buf, cap);
		if (!n) {
			pthread_mutex_unlock(&log_lock);
			return;
		}
		log_buf = n;
		log_cap = cap;
	}
	memcpy(log_buf + log_len, line, len);
	log_len += len;
	log_buf[log_len] = '\0';
	pthread_mutex_unlock(&log_lock);
}

static struct px_log_subscriber log_sub = {
	.mask = PX_LOG_MASK(PX_LOG_ERROR) | PX_LOG_MASK(PX_LOG_WARNING) |
		PX_LOG_MASK(PX_LOG_NOTICE),
	.deliver = log_deliver,
};

static void log_clear(void)
{
	pthread_mutex_lock(&log_lock);
	log_len = 0;
	if (log_buf)
		log_buf[0] = '\0';
	pthread_mutex_unlock(&log_lock);
}

/* Whether a captured line holds every one of the (NULL-terminated) strings. */
static bool log_has_line(const char *first, ...)
{
	bool found = false;
	const char *p;

	pthread_mutex_lock(&log_lock);
	p = log_buf;
	while (p && *p && !found) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char *line = strndup(p, len);
		va_list ap;

		found = true;
		va_start(ap, first);
		for (const char *s = first; s; s = va_arg(ap, const char *))
			if (!strstr(line, s))
				found = false;
		va_end(ap);
		free(line);
		p = eol ? eol + 1 : NULL;
	}
	if (!found)
		fprintf(stderr, "\n--- captured log without the expected line:\n%s---\n",
			log_buf ? log_buf : "");
	pthread_mutex_unlock(&log_lock);
	return found;
}

/* ---------------------------------------------------------------- the Test technology */

static int tech_hangups;

static px_channel *tech_request(const char *dest, px_channel *requestor, int *cause)
{
	*cause = PX_CAUSE_UNALLOCATED;
	return NULL;
}

static int tech_call(px_channel *ch, int timeout_ms)
{
	return 0;
}

static int tech_answer(px_channel *ch)
{
	return 0;
}

static int tech_indicate(px_channel *ch, enum px_control control)
{
	return 0;
}

static int tech_hangup(px_channel *ch)
{
	__atomic_add_fetch(&tech_hangups, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static const struct px_channel_tech test_tech = {
	.type = "Test",
	.description = "Channels of the pbx_lua unit tests",
	.request = tech_request,
	.call = tech_call,
	.answer = tech_answer,
	.indicate = tech_indicate,
	.hangup = tech_hangup,
};

/* ---------------------------------------------------------------- the TestApp application */

static pthread_mutex_t app_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t app_cond = PTHREAD_COND_INITIALIZER;
static char *records[4096];
static size_t nrecords;
static int app_blocked; /* calls waiting in TestApp("block") */
static bool app_released;

/* Records its data. "hangup": returns -1. "hangup17": hangs the channel up
 * (cause 17) and returns -1. "block": waits for app_release(). */
static int testapp_exec(px_channel *ch, const char *data)
{
	if (!strcmp(data, "hangup17")) {
		px_channel_hangup(ch, PX_CAUSE_USER_BUSY);
		pthread_mutex_lock(&app_lock);
		records[nrecords++] = strdup(data);
		pthread_mutex_unlock(&app_lock);
		return -1;
	}
	pthread_mutex_lock(&app_lock);
	if (nrecords < sizeof(records) / sizeof(records[0]))
		records[nrecords++] = strdup(data);
	if (!strcmp(data, "block")) {
		app_blocked++;
		pthread_cond_broadcast(&app_cond);
		while (!app_released)
			pthread_cond_wait(&app_cond, &app_lock);
		app_blocked--;
	}
	pthread_mutex_unlock(&app_lock);
	return strcmp(data, "hangup") ? 0 : -1;
}

static const struct px_app test_app = {
	.name = "TestApp",
	.synopsis = "Records its data for the pbx_lua tests",
	.syntax = "TestApp(anything)",
	.description = "Records its data; 'hangup' returns -1, 'block' waits.",
	.exec = testapp_exec,
};

static void records_clear(void)
{
	pthread_mutex_lock(&app_lock);
	for (size_t i = 0; i < nrecords; i++)
		free(records[i]);
	nrecords = 0;
	app_blocked = 0;
	app_released = false;
	pthread_mutex_unlock(&app_lock);
}

static size_t records_count(void)
{
	size_t n;

	pthread_mutex_lock(&app_lock);
	n = nrecords;
	pthread_mutex_unlock(&app_lock);
	return n;
}

/* The record number i as a static copy ("" when there is none). */
static const char *record(size_t i)
{
	static char copy[1024];

	pthread_mutex_lock(&app_lock);
	snprintf(copy, sizeof(copy), "%s", i < nrecords ? records[i] : "");
	pthread_mutex_unlock(&app_lock);
	return copy;
}

static bool records_have(const char *data)
{
	bool found = false;

	pthread_mutex_lock(&app_lock);
	for (size_t i = 0; i < nrecords && !found; i++)
		found = !strcmp(records[i], data);
	pthread_mutex_unlock(&app_lock);
	return found;
}

/* Whether n calls are waiting in TestApp("block") within 10 s. */
static bool wait_blocked_n(int n)
{
	struct timespec until;
	bool reached;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&app_lock);
	while (app_blocked < n && rc == 0)
		rc = pthread_cond_timedwait(&app_cond, &app_lock, &until);
	reached = app_blocked >= n;
	pthread_mutex_unlock(&app_lock);
	return reached;
}

static bool wait_blocked(void)
{
	return wait_blocked_n(1);
}

static void app_release(void)
{
	pthread_mutex_lock(&app_lock);
	app_released = true;
	pthread_cond_broadcast(&app_cond);
	pthread_mutex_unlock(&app_lock);
}

/* ---------------------------------------------------------------- helpers */

static px_channel *new_channel(const char *context, const char *exten)
{
	px_channel *ch = px_channel_alloc(&test_tech, "Test/1001", NULL, NULL);

	px_channel_set_caller(ch, "1001", "Alice");
	px_channel_set_dialplan(ch, context, exten);
	return ch;
}

static void end_channel(px_channel *ch)
{
	px_channel_hangup(ch, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(ch);
}

/* Run context/exten on a new channel, as a session thread would. */
static int run(const char *context, const char *exten)
{
	px_channel *ch = new_channel(context, exten);
	int rc = px_dialplan_run(ch);

	end_channel(ch);
	return rc;
}

/* Run and return the one record it made ("" if not exactly one). */
static const char *run_record(const char *context, const char *exten)
{
	records_clear();
	if (run(context, exten) != 0 || records_count() != 1)
		return "";
	return record(0);
}

static int copy_file(const char *from, const char *to)
{
	char buf[8192];
	FILE *in = fopen(from, "rb"), *out;
	size_t n;

	if (!in)
		return -1;
	out = fopen(to, "wb");
	if (!out) {
		fclose(in);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	return fclose(out);
}

static char *data_path(const char *name)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/data/lua/%s", PX_TEST_SRCDIR, name);
	return path;
}

/* Make tests/data/lua/name the extensions.lua of the configuration directory. */
static int install_dialplan(const char *name)
{
	char to[PATH_MAX];

	snprintf(to, sizeof(to), "%s/extensions.lua", tmpdir);
	return copy_file(data_path(name), to);
}

static void use_dialplan(const char *name)
{
	CU_ASSERT_EQUAL_FATAL(install_dialplan(name), 0);
}

/* The line of tests/data/lua/name that contains text, or -1. */
static int line_of(const char *name, const char *text)
{
	FILE *f = fopen(data_path(name), "r");
	char line[1024];
	int n = 0, found = -1;

	if (!f)
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f)) {
		n++;
		if (strstr(line, text))
			found = n;
	}
	fclose(f);
	return found;
}

static int reload(void)
{
	px_err err = {""};

	return px_loader_reload("pbx_lua", &err);
}

/* A number from "dialplan show": the one right before "label". */
static long show_number(const char *label)
{
	char *out = NULL;
	long n = -1;

	if (px_cli_run_capture("dialplan show", &out) == PX_CLI_SUCCESS) {
		char *p = strstr(out, label);
		if (p) {
			while (p > out && p[-1] == ' ')
				p--;
			while (p > out && p[-1] >= '0' && p[-1] <= '9')
				p--;
			n = strtol(p, NULL, 10);
		}
	}
	free(out);
	return n;
}

/* ---------------------------------------------------------------- suite */

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	return remove(path);
}

static int suite_init(void)
{
	char so[PATH_MAX], real[PATH_MAX], link[PATH_MAX + 16], conf[PATH_MAX];
	const char *env = getenv("PBX_LUA_SO");
	struct px_log_sinks sinks = {.to_stderr = getenv("PBX_LUA_TEST_LOG") != NULL,
				     .stderr_mask = PX_LOG_MASK_ALL,
				     .syslog_facility = -1};
	px_err err = {""};

	if (!mkdtemp(tmpdir))
		return -1;
	px_log_init();
	px_log_configure(&sinks, &err);
	px_log_subscribe(&log_sub);
	snprintf(so, sizeof(so), "%s", env ? env : PX_MODULES_BUILDDIR "/pbx_lua.so");
	if (!realpath(so, real)) {
		fprintf(stderr, "pbx_lua.so not found at %s (set PBX_LUA_SO)\n", so);
		return -1;
	}
	snprintf(moddir, sizeof(moddir), "%s/modules", tmpdir);
	snprintf(link, sizeof(link), "%s/pbx_lua.so", moddir);
	snprintf(conf, sizeof(conf), "%s/plexus.conf", tmpdir);
	if (mkdir(moddir, 0700) < 0 || symlink(real, link) < 0)
		return -1;
	px_daemon_init(tmpdir, conf);
	if (px_loader_init(moddir, &err) < 0 || px_func_builtin_register(&err) < 0 ||
	    px_channel_tech_register(NULL, &test_tech, &err) < 0 ||
	    px_app_register(NULL, &test_app, &err) < 0) {
		fprintf(stderr, "suite init: %s\n", err.msg);
		return -1;
	}
	if (install_dialplan("basic.lua") < 0 || px_loader_load("pbx_lua", &err) < 0) {
		fprintf(stderr, "suite init: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int suite_cleanup(void)
{
	px_loader_shutdown();
	px_func_builtin_unregister();
	px_app_unregister(&test_app);
	px_channel_tech_unregister(&test_tech);
	px_cli_registry_shutdown();
	px_daemon_shutdown();
	px_log_unsubscribe(&log_sub);
	records_clear();
	free(log_buf);
	log_buf = NULL;
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------- the matcher alone */

static void test_pattern_match(void)
{
	CU_ASSERT_TRUE(pxlua_ext_match("1000", "1000"));
	CU_ASSERT_FALSE(pxlua_ext_match("1000", "10000"));
	CU_ASSERT_FALSE(pxlua_ext_match("1000", "100"));
	CU_ASSERT_TRUE(pxlua_ext_match("s", "s"));
	CU_ASSERT_FALSE(pxlua_ext_match("s", "S"));
	CU_ASSERT_TRUE(pxlua_ext_match("555-1234", "5551234"));
	CU_ASSERT_TRUE(pxlua_ext_match("_1XXX", "1234"));
	CU_ASSERT_FALSE(pxlua_ext_match("_1XXX", "123"));
	CU_ASSERT_FALSE(pxlua_ext_match("_1XXX", "12345"));
	CU_ASSERT_FALSE(pxlua_ext_match("_1XXX", "2234"));
	CU_ASSERT_FALSE(pxlua_ext_match("_1XXX", "12a4"));
	CU_ASSERT_TRUE(pxlua_ext_match("_1xxx", "1234"));
	CU_ASSERT_TRUE(pxlua_ext_match("_Z", "1"));
	CU_ASSERT_FALSE(pxlua_ext_match("_Z", "0"));
	CU_ASSERT_TRUE(pxlua_ext_match("_N", "2"));
	CU_ASSERT_FALSE(pxlua_ext_match("_N", "1"));
	CU_ASSERT_TRUE(pxlua_ext_match("_X.", "12"));
	CU_ASSERT_FALSE(pxlua_ext_match("_X.", "1"));
	CU_ASSERT_TRUE(pxlua_ext_match("_9!", "9"));
	CU_ASSERT_TRUE(pxlua_ext_match("_9!", "9123"));
	CU_ASSERT_FALSE(pxlua_ext_match("_9!", "8"));
	CU_ASSERT_TRUE(pxlua_ext_match("_[2-4]XX", "299"));
	CU_ASSERT_FALSE(pxlua_ext_match("_[2-4]XX", "599"));
	CU_ASSERT_TRUE(pxlua_ext_match("_[1-5,7]", "7"));
	CU_ASSERT_FALSE(pxlua_ext_match("_[1-5,7]", "6"));
	CU_ASSERT_TRUE(pxlua_ext_match("_[a-c]", "b"));
	CU_ASSERT_FALSE(pxlua_ext_match("_[a-c]", "d"));
	CU_ASSERT_TRUE(pxlua_ext_match("_[-5]", "5")); /* no range: '-' and '5' */
	CU_ASSERT_TRUE(pxlua_ext_match("_[5-]", "5"));
	CU_ASSERT_FALSE(pxlua_ext_match("_[5-]", "6"));
	CU_ASSERT_TRUE(pxlua_ext_match("_NXX-XXXX", "5551234"));
	CU_ASSERT_TRUE(pxlua_ext_match("_NXXNXXXXXX", "2125551234"));
	CU_ASSERT_FALSE(pxlua_ext_match("_NXXNXXXXXX", "2121551234"));
}

static void test_pattern_check(void)
{
	CU_ASSERT_PTR_NULL(pxlua_ext_check("1000"));
	CU_ASSERT_PTR_NULL(pxlua_ext_check("_1[2-3]X."));
	CU_ASSERT_PTR_NULL(pxlua_ext_check("s"));
	CU_ASSERT_PTR_NOT_NULL(pxlua_ext_check(""));
	CU_ASSERT_PTR_NOT_NULL(pxlua_ext_check("_"));
	CU_ASSERT_PTR_NOT_NULL(pxlua_ext_check("_1[23"));
	CU_ASSERT_PTR_NOT_NULL(pxlua_ext_check("_1[]"));
	CU_ASSERT_PTR_NOT_NULL(pxlua_ext_check("_X./1234"));
}

static void test_pattern_order(void)
{
	/* Literals first, then from the most to the least specific. */
	const char *ordered[] = {"1000",  "_12XX", "_1[2-3]XX", "_1NXX", "_1XXX", "_1XX.",
				 "_1XX!", "_1.",   "_N.",       "_X.",   "_X!"};
	size_t n = sizeof(ordered) / sizeof(ordered[0]);

	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(pxlua_ext_cmp(ordered[i], ordered[i]), 0);
		for (size_t j = i + 1; j < n; j++) {
			if (pxlua_ext_cmp(ordered[i], ordered[j]) >= 0 ||
			    pxlua_ext_cmp(ordered[j], ordered[i]) <= 0) {
				fprintf(stderr, "\norder: %s should come before %s\n", ordered[i],
					ordered[j]);
				CU_FAIL("pattern order");
			}
		}
	}
	/* Same size sets: the one with the lower characters first. */
	CU_ASSERT_TRUE(pxlua_ext_cmp("_[12]", "_[13]") < 0);
	/* Equal by specificity, still a total order. */
	CU_ASSERT_TRUE(pxlua_ext_cmp("_1-XX", "_1XX") != 0);
}

/* The key of keys (NULL-terminated) that a call to exten reaches: sorted
 * in the order of precedence, the first that matches; NULL for none. */
static const char *winner(const char *const *keys, const char *exten)
{
	const char *sorted[32];
	size_t n = 0;

	while (keys[n] && n < 32) {
		sorted[n] = keys[n];
		n++;
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && pxlua_ext_cmp(sorted[j - 1], sorted[j]) > 0; j--) {
			const char *t = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++)
		if (pxlua_ext_match(sorted[i], exten))
			return sorted[i];
	return NULL;
}

/* Overlapping keys, a dialled number, and the key Asterisk runs. */
static void test_precedence_table(void)
{
	static const char *const a[] = {"_X.",  "_1XXX", "_12XX",     "_1[2-3]XX", "_1NXX",
					"1234", "_1XX!", "_1X.",      "_N.",       "_X!",
					"_!",   "_1ZXX", "_[1-3]XXX", NULL};
	static const char *const b[] = {"_NXXXXXX", "_1NXXNXXXXXX", "_011.", "_NXXNXXXXXX",
					"911",      "_9!",          "_X.",   NULL};
	static const char *const c[] = {"555-1234", "_555-XXXX", "_5XX-XXXX", NULL};
	static const char *const d[] = {"_[13]X", "_[12]X", "_[1-4]X", "_[5-9]X", "_ZX", NULL};
	static const char *const e[] = {"s", "_sX", "_[a-c]X", "_N", NULL};
	static const char *const f[] = {"_1X", "_1X.", "_1X!", NULL};
	static const struct {
		const char *const *keys;
		const char *exten, *expect;
	} cases[] = {
		{a, "1234", "1234"},
		{a, "1235", "_12XX"},
		{a, "1335", "_1[2-3]XX"},
		{a, "1435", "_1NXX"},
		{a, "1135", "_1ZXX"},
		{a, "1035", "_1XXX"},
		{a, "103", "_1XX!"},
		{a, "10", "_X."},
		{a, "10355", "_1XX!"},
		{a, "2", "_X!"},
		{a, "25", "_N."},
		{a, "2555", "_[1-3]XXX"},
		{a, "4555", "_N."},
		{a, "0555", "_X."},
		{a, "a", "_!"},
		{a, "1", "_X!"},
		{a, "12345", "_1XX!"},
		{b, "911", "911"},
		{b, "9", "_9!"},
		{b, "9123", "_9!"},
		{b, "5551234", "_NXXXXXX"},
		{b, "2125551234", "_NXXNXXXXXX"},
		{b, "2120551234", "_X."},
		{b, "12125551234", "_1NXXNXXXXXX"},
		{b, "011441234", "_011."},
		{b, "01", "_X."},
		{b, "9115", "_9!"},
		{b, "8", NULL},
		{c, "5551234", "555-1234"},
		{c, "555-1234", "555-1234"},
		{c, "5559999", "_555-XXXX"},
		{c, "5669999", "_5XX-XXXX"},
		{c, "566-9999", "_5XX-XXXX"},
		{d, "15", "_[12]X"},
		{d, "25", "_[12]X"},
		{d, "35", "_[13]X"},
		{d, "45", "_[1-4]X"},
		{d, "55", "_[5-9]X"},
		{d, "05", NULL},
		{e, "s", "s"},
		{e, "s1", "_sX"},
		{e, "b7", "_[a-c]X"},
		{e, "S", NULL},
		{e, "7", "_N"},
		{e, "1", NULL},
		{f, "12", "_1X!"},
		{f, "123", "_1X."},
		{f, "1", NULL},
	};
	size_t n = sizeof(cases) / sizeof(cases[0]);

	CU_ASSERT_TRUE(n >= 40);
	for (size_t i = 0; i < n; i++) {
		const char *got = winner(cases[i].keys, cases[i].exten);
		bool ok = cases[i].expect ? got && !strcmp(got, cases[i].expect) : !got;
		if (!ok) {
			fprintf(stderr, "\nprecedence case %zu: '%s' reached %s, expected %s\n",
				i + 1, cases[i].exten, got ? got : "nothing",
				cases[i].expect ? cases[i].expect : "nothing");
			CU_FAIL("precedence table");
		}
	}
}

/* Asterisk's canmatch and matchmore for overlap dialling. */
static void test_pattern_close(void)
{
	CU_ASSERT_TRUE(pxlua_ext_close("_1XXX", "12", PXLUA_CANMATCH));
	CU_ASSERT_TRUE(pxlua_ext_close("_1XXX", "12", PXLUA_MATCHMORE));
	CU_ASSERT_TRUE(pxlua_ext_close("_1XXX", "1234", PXLUA_CANMATCH));
	CU_ASSERT_FALSE(pxlua_ext_close("_1XXX", "1234", PXLUA_MATCHMORE));
	CU_ASSERT_FALSE(pxlua_ext_close("_1XXX", "2", PXLUA_CANMATCH));
	CU_ASSERT_TRUE(pxlua_ext_close("_1XXX", "", PXLUA_CANMATCH));
	CU_ASSERT_TRUE(pxlua_ext_close("_X.", "12", PXLUA_MATCHMORE));
	CU_ASSERT_TRUE(pxlua_ext_close("_9!", "9", PXLUA_MATCHMORE));
	CU_ASSERT_TRUE(pxlua_ext_close("1000", "10", PXLUA_CANMATCH));
	CU_ASSERT_TRUE(pxlua_ext_close("1000", "10", PXLUA_MATCHMORE));
	CU_ASSERT_TRUE(pxlua_ext_close("1000", "1000", PXLUA_CANMATCH));
	CU_ASSERT_FALSE(pxlua_ext_close("1000", "1000", PXLUA_MATCHMORE));
	CU_ASSERT_FALSE(pxlua_ext_close("1000", "2", PXLUA_CANMATCH));
	CU_ASSERT_FALSE(pxlua_ext_close("1000", "10000", PXLUA_CANMATCH));
	CU_ASSERT_TRUE(pxlua_ext_same("555-1234", "5551234"));
	CU_ASSERT_TRUE(pxlua_ext_same("_1-XX", "_1XX"));
	CU_ASSERT_FALSE(pxlua_ext_same("_1XX", "_1XX."));
}

/* ---------------------------------------------------------------- through the module */

static void test_exists(void)
{
	CU_ASSERT_TRUE(px_dialplan_exists("default", "1000", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("default", "1999", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("default", "42", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("default", "2000", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("default", "4", NULL)); /* _X. needs two */
	CU_ASSERT_FALSE(px_dialplan_exists("nosuchcontext", "1000", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("default", "include", NULL));

	CU_ASSERT_TRUE(px_dialplan_exists("patterns", "234", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("patterns", "534", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("patterns", "2345", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("patterns", "2125551234", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("patterns", "2120551234", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("patterns", "212555123", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("patterns", "9", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("patterns", "9876", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("patterns", "83", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("patterns", "87", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("patterns", "86", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("patterns", "7b", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("patterns", "7d", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("patterns", "61", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("patterns", "6", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("patterns", "s", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("patterns", "S", NULL));
}

static void test_includes(void)
{
	/* office -> inner -> deeper -> inner (cycle) and a missing context. */
	CU_ASSERT_TRUE(px_dialplan_exists("office", "100", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("office", "600", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("office", "777", NULL));
	CU_ASSERT_TRUE(px_dialplan_exists("deeper", "100", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("office", "999", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("inner", "1000", NULL));

	/* The context's own extensions before its includes, even an exact key. */
	CU_ASSERT_STRING_EQUAL(run_record("office", "555"), "office _5XX,office,555");
	CU_ASSERT_STRING_EQUAL(run_record("inner", "555"), "inner 555,inner,555");
	/* Found through an include: the function gets the context asked for. */
	CU_ASSERT_STRING_EQUAL(run_record("office", "777"), "deeper 777,office,777");
	CU_ASSERT_STRING_EQUAL(run_record("deeper", "100"), "office 100,deeper,100");
}

static void test_precedence(void)
{
	CU_ASSERT_STRING_EQUAL(run_record("default", "1000"), "1000,default,1000");
	CU_ASSERT_STRING_EQUAL(run_record("default", "1234"), "_12XX,default,1234");
	CU_ASSERT_STRING_EQUAL(run_record("default", "1534"), "_1XXX,default,1534");
	CU_ASSERT_STRING_EQUAL(run_record("default", "12345"), "_X.,default,12345");
	CU_ASSERT_STRING_EQUAL(run_record("default", "42"), "_X.,default,42");
	CU_ASSERT_STRING_EQUAL(run_record("default", "2000"), "2000 (integer key),default,2000");
}

static void test_exec_unknown(void)
{
	log_clear();
	records_clear();
	CU_ASSERT_EQUAL(run("default", "4"), -1);
	CU_ASSERT_EQUAL(records_count(), 0);
	CU_ASSERT_TRUE(log_has_line("no extension '4' in context 'default'", NULL));
}

static void test_app_args(void)
{
	CU_ASSERT_STRING_EQUAL(run_record("api", "args"), "a,1");
	CU_ASSERT_STRING_EQUAL(run_record("api", "upper"), "upper");
	CU_ASSERT_STRING_EQUAL(run_record("api", "mixed"), "x,,true,2.5,");
}

static void test_channel_vars(void)
{
	px_channel *ch = new_channel("api", "setvar");
	char buf[64] = "";
	char expect[256];

	records_clear();
	CU_ASSERT_EQUAL(px_dialplan_run(ch), 0);
	CU_ASSERT_STRING_EQUAL(record(0), "bar");
	CU_ASSERT_EQUAL(px_channel_var_get(ch, "FOO", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "bar");
	end_channel(ch);

	CU_ASSERT_STRING_EQUAL(run_record("api", "assign"), "qux,42");
	CU_ASSERT_STRING_EQUAL(run_record("api", "unset"), "nil");

	ch = new_channel("api", "builtins");
	records_clear();
	CU_ASSERT_EQUAL(px_dialplan_run(ch), 0);
	snprintf(expect, sizeof(expect), "builtins,api,%s,1001,Alice,%s", px_channel_name(ch),
		 px_channel_uniqueid(ch));
	CU_ASSERT_STRING_EQUAL(record(0), expect);
	end_channel(ch);

	log_clear();
	CU_ASSERT_EQUAL(run("api", "readonly"), -1);
	CU_ASSERT_TRUE(log_has_line("channel.EXTEN is read-only", NULL));
}

static void test_unknown_app(void)
{
	char where[64];

	snprintf(where, sizeof(where),
		 "extensions.lua:%d:", line_of("basic.lua", "app.NoSuchApp(\"x\")"));
	log_clear();
	CU_ASSERT_EQUAL(run("api", "noapp"), -1);
	CU_ASSERT_TRUE(log_has_line(where, "no such application 'NoSuchApp'", "Test/1001-", NULL));
}

static void test_runtime_error(void)
{
	char where[64];
	long before;

	snprintf(where, sizeof(where), "extensions.lua:%d:", line_of("basic.lua", "crash here"));
	log_clear();
	CU_ASSERT_EQUAL(run("api", "crash"), -1);
	CU_ASSERT_TRUE(log_has_line(where, "attempt to call a nil value", "Test/1001-", NULL));
	/* The call's coroutine is dropped; the state serves the next calls. */
	before = show_number("Lua state");
	CU_ASSERT_STRING_EQUAL(run_record("api", "args"), "a,1");
	CU_ASSERT_STRING_EQUAL(run_record("api", "args"), "a,1");
	CU_ASSERT_EQUAL(show_number("Lua state"), before);
}

static void test_hangup(void)
{
	log_clear();
	records_clear();
	CU_ASSERT_EQUAL(run("api", "hangup"), 0);
	CU_ASSERT_EQUAL(records_count(), 1);
	CU_ASSERT_STRING_EQUAL(record(0), "hangup");
	pthread_mutex_lock(&log_lock);
	CU_ASSERT_FALSE(log_buf && strstr(log_buf, "ERROR["));
	pthread_mutex_unlock(&log_lock);
}

/* The file runs once per state: 100 calls in a row see loads == 1 and
 * come from no more states than were created. */
static void test_run_once_per_state(void)
{
	char ids[16][64];
	size_t nids = 0;
	long created;

	CU_ASSERT_EQUAL(reload(), 0); /* a new generation: its state count starts at 1 */
	CU_ASSERT_EQUAL(show_number("Lua state"), 1);
	records_clear();
	for (int i = 0; i < 100; i++)
		CU_ASSERT_EQUAL(run("api", "count"), 0);
	CU_ASSERT_EQUAL(records_count(), 100);
	for (size_t i = 0; i < records_count(); i++) {
		const char *r = record(i);
		const char *comma = strrchr(r, ',');
		bool seen = false;

		CU_ASSERT_PTR_NOT_NULL_FATAL(comma);
		CU_ASSERT_STRING_EQUAL(comma, ",1");
		for (size_t j = 0; j < nids; j++)
			seen = seen || !strncmp(ids[j], r, (size_t)(comma - r));
		if (!seen && nids < 16)
			snprintf(ids[nids++], sizeof(ids[0]), "%.*s", (int)(comma - r), r);
	}
	created = show_number("Lua state");
	CU_ASSERT_TRUE(nids >= 1);
	CU_ASSERT_TRUE((long)nids <= created);
	CU_ASSERT_EQUAL(created, 1); /* one call at a time: the one state is reused */
}

struct caller {
	const char *context, *exten;
	int calls;
	int failures;
	pthread_t thread;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;

	for (int i = 0; i < c->calls; i++)
		if (run(c->context, c->exten) != 0)
			c->failures++;
	return NULL;
}

/* Calls from several threads at once share the pool without trouble. */
static void test_concurrent_calls(void)
{
	struct caller callers[8];

	CU_ASSERT_EQUAL(reload(), 0);
	records_clear();
	for (int i = 0; i < 8; i++) {
		callers[i] = (struct caller){.context = "api", .exten = "count", .calls = 50};
		pthread_create(&callers[i].thread, NULL, caller_main, &callers[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(callers[i].thread, NULL);
		CU_ASSERT_EQUAL(callers[i].failures, 0);
	}
	CU_ASSERT_EQUAL(records_count(), 400);
	for (size_t i = 0; i < records_count(); i++) {
		const char *comma = strrchr(record(i), ',');
		CU_ASSERT_TRUE(comma && !strcmp(comma, ",1"));
	}
	CU_ASSERT_TRUE(show_number("Lua state") <= 9);
}

static void test_cli(void)
{
	char *out = NULL;

	CU_ASSERT_EQUAL(px_cli_run_capture("dialplan show default", &out), PX_CLI_SUCCESS);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "[ Context 'default' created by 'pbx_lua' ]"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "'_12XX'"));
	CU_ASSERT_PTR_NULL(strstr(out, "Context 'office'"));
	/* Literal keys first, then the patterns from the most specific. */
	CU_ASSERT_TRUE(strstr(out, "'1000'") < strstr(out, "'_12XX'"));
	CU_ASSERT_TRUE(strstr(out, "'_12XX'") < strstr(out, "'_1XXX'"));
	CU_ASSERT_TRUE(strstr(out, "'_1XXX'") < strstr(out, "'_X.'"));
	free(out);

	CU_ASSERT_EQUAL(px_cli_run_capture("dialplan show", &out), PX_CLI_SUCCESS);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Include =>            'inner'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "'missing'  (not defined)"));
	free(out);

	CU_ASSERT_EQUAL(px_cli_run_capture("dialplan show nosuchcontext", &out), PX_CLI_FAILURE);
	free(out);

	CU_ASSERT_EQUAL(px_cli_run_capture("dialplan reload", &out), PX_CLI_SUCCESS);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Dialplan reloaded"));
	free(out);

	out = px_cli_complete(&(px_cli){0}, "dialplan show off");
	CU_ASSERT_PTR_NOT_NULL(out);
	if (out)
		CU_ASSERT_STRING_EQUAL(out, "office");
	free(out);
}

static void test_reload_broken(void)
{
	char *out = NULL;

	use_dialplan("syntax_error.lua");
	log_clear();
	CU_ASSERT_NOT_EQUAL(reload(), 0);
	CU_ASSERT_TRUE(log_has_line("extensions.lua:4:", "running dialplan is kept", NULL));
	/* Still routed by the old dialplan. */
	CU_ASSERT_STRING_EQUAL(run_record("default", "1000"), "1000,default,1000");
	CU_ASSERT_TRUE(px_dialplan_exists("default", "1999", NULL));

	CU_ASSERT_EQUAL(px_cli_run_capture("dialplan reload", &out), PX_CLI_FAILURE);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "extensions.lua:4:"));
	free(out);
	use_dialplan("basic.lua");
}

static void test_reload_changed(void)
{
	use_dialplan("v2.lua");
	CU_ASSERT_EQUAL(reload(), 0);
	CU_ASSERT_STRING_EQUAL(run_record("default", "1000"), "v2 1000");
	CU_ASSERT_STRING_EQUAL(run_record("default", "3000"), "v2 3000");
	CU_ASSERT_FALSE(px_dialplan_exists("default", "1999", NULL));
	use_dialplan("basic.lua");
	CU_ASSERT_EQUAL(reload(), 0);
	CU_ASSERT_STRING_EQUAL(run_record("default", "1000"), "1000,default,1000");
}

static void *blocked_call(void *arg)
{
	*(int *)arg = run("api", "block");
	return NULL;
}

/* A call in progress during a reload finishes on the dialplan it started
 * with; a new call meanwhile runs the new one; unload is refused while the
 * call runs. */
static void test_reload_in_progress(void)
{
	pthread_t t;
	int rc = -2;
	px_err err = {""};

	records_clear();
	pthread_create(&t, NULL, blocked_call, &rc);
	CU_ASSERT_TRUE_FATAL(wait_blocked());

	CU_ASSERT_NOT_EQUAL(px_loader_unload("pbx_lua", false, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "in use"));

	use_dialplan("v2.lua");
	CU_ASSERT_EQUAL(reload(), 0);
	CU_ASSERT_TRUE(px_dialplan_exists("default", "3000", NULL));
	CU_ASSERT_EQUAL(run("default", "3000"), 0);
	CU_ASSERT_TRUE(records_have("v2 3000"));

	app_release();
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_TRUE(records_have("basic after block"));
	CU_ASSERT_FALSE(records_have("v2 after block"));

	use_dialplan("basic.lua");
	CU_ASSERT_EQUAL(reload(), 0);
}

/* ---------------------------------------------------------------- calls sharing a state */

/* The calls on the states of the current generation ("dialplan show"). */
static long show_calls(void)
{
	char *out = NULL, *p;
	long n = -1;

	if (px_cli_run_capture("dialplan show", &out) == PX_CLI_SUCCESS &&
	    (p = strstr(out, " KiB, ")))
		n = strtol(p + 6, NULL, 10);
	free(out);
	return n;
}

static void start_call(struct caller *c, const char *context, const char *exten)
{
	*c = (struct caller){.context = context, .exten = exten, .calls = 1};
	CU_ASSERT_EQUAL_FATAL(pthread_create(&c->thread, NULL, caller_main, c), 0);
}

static void join_call(struct caller *c)
{
	pthread_join(c->thread, NULL);
	CU_ASSERT_EQUAL(c->failures, 0);
}

/* Start shared/park and wait until it is parked in TestApp("block"). */
static void park(struct caller *c)
{
	start_call(c, "shared", "park");
	CU_ASSERT_TRUE_FATAL(wait_blocked());
}

/* Call 1 sets globals (one through _G's metatable, one with rawset into _G)
 * and parks; the calls that run meanwhile on the same state do not see
 * them, see their own, and one of them fails with a Lua error without
 * harming the parked one; Goto and an application's -1 unwind as alone;
 * 'h' sees each call's own globals. */
static void test_shared_globals_and_errors(void)
{
	struct caller parked;
	char where[64];
	long created;

	CU_ASSERT_EQUAL_FATAL(reload(), 0);
	created = show_number("Lua state");
	records_clear();
	park(&parked);
	CU_ASSERT_EQUAL(show_calls(), 1);

	CU_ASSERT_EQUAL(run("shared", "peek"), 0);
	CU_ASSERT_TRUE(records_have("peek sees nil,nil"));
	CU_ASSERT_TRUE(records_have("peek set peek,peek"));
	CU_ASSERT_TRUE(records_have("h peek"));

	snprintf(where, sizeof(where),
		 "extensions.lua:%d:", line_of("basic.lua", "crash while another call is parked"));
	log_clear();
	CU_ASSERT_EQUAL(run("shared", "crash"), -1);
	CU_ASSERT_TRUE(log_has_line(where, "attempt to call a nil value", NULL));
	CU_ASSERT_TRUE(records_have("h crash"));

	CU_ASSERT_EQUAL(run("shared", "jump"), 0);
	CU_ASSERT_TRUE(records_have("target sees jump"));
	CU_ASSERT_TRUE(records_have("h jump"));
	CU_ASSERT_EQUAL(run("shared", "quit"), 0);
	CU_ASSERT_FALSE(records_have("not reached"));

	/* All of them ran beside the parked call, on its state. */
	CU_ASSERT_EQUAL(show_calls(), 1);
	CU_ASSERT_EQUAL(show_number("Lua state"), created);
	app_release();
	join_call(&parked);
	CU_ASSERT_TRUE(records_have("park sees park,park"));
	CU_ASSERT_TRUE(records_have("h park"));
	CU_ASSERT_EQUAL(show_calls(), 0);
}

/* The instruction budget and the memory ceiling are per call: a runaway
 * loop and a memory hog on the state of a parked call are cut off with
 * the usual errors, and the parked call then goes on and ends normally. */
static void test_shared_limits(void)
{
	struct caller parked;

	CU_ASSERT_EQUAL_FATAL(reload(), 0);
	records_clear();
	park(&parked);
	log_clear();
	CU_ASSERT_EQUAL(run("shared", "runaway"), -1);
	CU_ASSERT_TRUE(log_has_line("extensions.lua:", "instruction_limit", "ended", NULL));
	CU_ASSERT_TRUE(records_have("h runaway"));
	log_clear();
	CU_ASSERT_EQUAL(run("shared", "hog"), -1);
	CU_ASSERT_TRUE(log_has_line("memory_limit", "ended", NULL));
	CU_ASSERT_TRUE(records_have("h hog"));
	/* Another call on the same state still has its whole budget. */
	CU_ASSERT_EQUAL(run("shared", "peek"), 0);
	CU_ASSERT_TRUE(records_have("peek set peek,peek"));
	CU_ASSERT_EQUAL(show_number("Lua state"), 1);
	app_release();
	join_call(&parked);
	CU_ASSERT_TRUE(records_have("park sees park,park"));
	CU_ASSERT_TRUE(records_have("h park"));
}

#define MANY_CALLS 65 /* one more than a state takes */

/* More parked calls than one state takes: a second state is made; each
 * call costs its state a few KiB, not a state; when they are over the
 * spare state is closed and one stays open for the next calls. */
static void test_shared_many_calls(void)
{
	static struct caller callers[MANY_CALLS];
	long loaded, total;

	CU_ASSERT_EQUAL_FATAL(reload(), 0);
	CU_ASSERT_EQUAL(show_number("Lua state"), 1);
	loaded = show_number("KiB after loading");
	records_clear();
	for (int i = 0; i < MANY_CALLS; i++)
		start_call(&callers[i], "api", "block");
	CU_ASSERT_TRUE(wait_blocked_n(MANY_CALLS));
	CU_ASSERT_EQUAL(show_calls(), MANY_CALLS);
	CU_ASSERT_EQUAL(show_number("Lua state"), 2);
	CU_ASSERT_EQUAL(show_number("open"), 2);
	total = show_number("KiB");
	printf("\n    %d parked calls: %ld KiB in 2 states of %ld KiB after loading\n", MANY_CALLS,
	       total, loaded);
	CU_ASSERT_TRUE(loaded > 0 && total < 2 * loaded + MANY_CALLS * 4);
	app_release();
	for (int i = 0; i < MANY_CALLS; i++)
		join_call(&callers[i]);
	CU_ASSERT_EQUAL(records_count(), 2 * MANY_CALLS);
	CU_ASSERT_EQUAL(show_calls(), 0);
	CU_ASSERT_EQUAL(show_number("open"), 1);
	CU_ASSERT_STRING_EQUAL(run_record("default", "1000"), "1000,default,1000");
	CU_ASSERT_EQUAL(show_number("Lua state"), 2);
}

/* Files that must not load: each is refused with its place in one line. */
static void test_bad_files(void)
{
	struct {
		const char *file;
		const char *expect1, *expect2;
	} cases[] = {
		{"syntax_error.lua", "extensions.lua:4:", "'}' expected"},
		{"runtime_error.lua", "extensions.lua:3:", "attempt to index a nil value"},
		{"no_extensions.lua", "extensions.lua", "global table 'extensions'"},
		{"bad_key.lua", "extensions.default[\"_1[23\"]", "without a closing ']'"},
		{"app_at_load.lua", "extensions.lua:3:", "only inside an extension"},
	};
	px_err err = {""};

	CU_ASSERT_EQUAL_FATAL(px_loader_unload("pbx_lua", false, &err), 0);
	CU_ASSERT_FALSE(px_dialplan_exists("default", "1000", NULL));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		use_dialplan(cases[i].file);
		log_clear();
		CU_ASSERT_NOT_EQUAL(px_loader_load("pbx_lua", &err), 0);
		if (!log_has_line(cases[i].expect1, cases[i].expect2, NULL))
			fprintf(stderr, "file %s\n", cases[i].file);
		CU_ASSERT_FALSE(px_loader_is_loaded("pbx_lua"));
	}
	use_dialplan("basic.lua");
	CU_ASSERT_EQUAL_FATAL(px_loader_load("pbx_lua", &err), 0);
	CU_ASSERT_TRUE(px_dialplan_exists("default", "1000", NULL));
}

static int fake_dial_exec(px_channel *ch, const char *data)
{
	char rec[256];

	snprintf(rec, sizeof(rec), "Dial(%s)", data);
	px_channel_var_set(ch, "DIALSTATUS", "NOANSWER");
	px_channel_set_hangup_cause(ch, PX_CAUSE_NO_ANSWER);
	return testapp_exec(ch, rec);
}

static const struct px_app fake_dial = {
	.name = "Dial",
	.synopsis = "Records its data for the pbx_lua tests",
	.exec = fake_dial_exec,
};

/* The sample dialplan/extensions.lua loads and routes as it says. */
static void test_sample(void)
{
	char from[PATH_MAX], to[PATH_MAX];
	px_err err = {""};

	snprintf(from, sizeof(from), "%s/../dialplan/extensions.lua", PX_TEST_SRCDIR);
	snprintf(to, sizeof(to), "%s/extensions.lua", tmpdir);
	CU_ASSERT_EQUAL_FATAL(copy_file(from, to), 0);
	CU_ASSERT_EQUAL_FATAL(reload(), 0);
	CU_ASSERT_EQUAL_FATAL(px_app_register(NULL, &fake_dial, &err), 0);
	CU_ASSERT_TRUE(px_dialplan_exists("default", "1002", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("default", "2002", NULL));
	CU_ASSERT_FALSE(px_dialplan_exists("default", "100", NULL));
	CU_ASSERT_STRING_EQUAL(run_record("default", "1002"), "Dial(SIP/1002,30)");
	CU_ASSERT_STRING_EQUAL(run_record("incoming", "4930555003"), "Dial(SIP/1003,30)");
	CU_ASSERT_STRING_EQUAL(run_record("incoming", "4930555999"), "Dial(SIP/1001,30)");
	px_app_unregister(&fake_dial);
	use_dialplan("basic.lua");
	CU_ASSERT_EQUAL(reload(), 0);
}

/* ---------------------------------------------------------------- compatibility (compat.lua) */

/* Run context/exten on a new channel; rc in *rc; the records joined by '|'. */
static const char *run_all(const char *context, const char *exten, int *rc)
{
	static char out[4096];
	size_t used = 0;
	int r;

	records_clear();
	r = run(context, exten);
	if (rc)
		*rc = r;
	out[0] = '\0';
	for (size_t i = 0; i < records_count(); i++)
		used += (size_t)snprintf(out + used, used < sizeof(out) ? sizeof(out) - used : 0,
					 "%s%s", i ? "|" : "", record(i));
	return out;
}

static void write_lua_conf(const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/lua.conf", tmpdir);
	if (!text) {
		unlink(path);
		return;
	}
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static void test_compat_channel(void)
{
	int rc;

	use_dialplan("compat.lua");
	CU_ASSERT_EQUAL_FATAL(reload(), 0);
	CU_ASSERT_STRING_EQUAL(run_all("feat", "vars", &rc), "1,2,3,4");
	CU_ASSERT_STRING_EQUAL(run_all("feat", "funcs", &rc), "Bob,2002,5,b-c,yes,no");
	CU_ASSERT_STRING_EQUAL(run_all("feat", "globals", &rc), "shared,shared");
	CU_ASSERT_STRING_EQUAL(run_all("feat", "hangupcheck", &rc), "false|true|false");
	CU_ASSERT_STRING_EQUAL(run_all("feat", "setapp", &rc),
			       "x=y,Dave|target,flow,target,target|h,h,16,nil,true");
	log_clear();
	run_all("feat", "badfunc", &rc);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_TRUE(log_has_line("compat.lua", "no such function 'NOSUCHFUNC'", NULL) ||
		       log_has_line("extensions.lua:", "no such function 'NOSUCHFUNC'", NULL));
	log_clear();
	run_all("feat", "unclosed", &rc);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_TRUE(log_has_line("extensions.lua:", "missing ')'", NULL));
}

/* What a call sets as a global is seen by that call only. */
static void test_compat_call_globals(void)
{
	for (int i = 0; i < 5; i++)
		CU_ASSERT_STRING_EQUAL(run_all("feat", "leak", NULL), "1");
}

/* Goto, 'i', falling off the end, 'h' with HANGUPCAUSE and DIALSTATUS. */
static void test_compat_flow(void)
{
	int rc;

	CU_ASSERT_STRING_EQUAL(run_all("flow", "jump", &rc),
			       "jump|target,flow,target,target|h,h,16,nil,true");
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(run_all("flow", "jumpbad", &rc), "i,nowhere|h,h,16,nil,true");
	CU_ASSERT_STRING_EQUAL(run_all("flow", "unknown", &rc), "i,unknown|h,h,16,nil,true");
	CU_ASSERT_STRING_EQUAL(run_all("flow", "fallthrough", &rc), "h,h,17,BUSY,true");
	CU_ASSERT_STRING_EQUAL(run_all("flow", "hangup", &rc), "hangup17|h,h,17,CANCEL,true");
	log_clear();
	CU_ASSERT_STRING_EQUAL(run_all("flow", "crash", &rc), "h,h,41,nil,true");
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_TRUE(
		log_has_line("extensions.lua:", "attempt to index a nil value", "traceback", NULL));
	/* An application returning -1 without a hangup leaves the dialplan, no 'h'. */
	CU_ASSERT_STRING_EQUAL(run_all("plain", "quit", &rc), "hangup");
}

/* The instruction budget ends a runaway function, even one that tries to
 * catch the unwind with pcall; the call goes to 'h'. */
static void test_compat_runaway(void)
{
	int rc;

	log_clear();
	CU_ASSERT_STRING_EQUAL(run_all("feat", "runaway", &rc), "runaway");
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_TRUE(log_has_line("extensions.lua:", "instruction_limit", "ended", NULL));
	log_clear();
	run_all("feat", "runaway_pcall", &rc);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_TRUE(log_has_line("instruction_limit", NULL));
	CU_ASSERT_STRING_EQUAL(run_all("guarded", "loop", &rc), "h after runaway,41");
	log_clear();
	run_all("feat", "hog", &rc);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_TRUE(log_has_line("memory_limit", NULL));
	/* pcall does not swallow the hangup unwind either. */
	CU_ASSERT_STRING_EQUAL(run_all("feat", "swallow", &rc), "hangup");
	/* and the pool still serves calls */
	CU_ASSERT_STRING_EQUAL(run_all("feat", "vars", &rc), "1,2,3,4");
}

static void test_compat_sandbox(void)
{
	char *out = NULL;

	CU_ASSERT_STRING_EQUAL(
		run_all("feat", "sandbox", NULL),
		"nil,nil,nil,nil,function,nil,nil,function|nil,binary refused|false");
	write_lua_conf("[general]\nallow_io = yes\nallow_os = yes\nallow_loadfile = yes\n"
		       "instruction_limit = 50000\n");
	CU_ASSERT_EQUAL_FATAL(reload(), 0);
	CU_ASSERT_STRING_EQUAL(run_all("feat", "sandbox", NULL),
			       "table,nil,function,nil,function,function,function,function|nil,"
			       "binary refused|false");
	CU_ASSERT_EQUAL(px_cli_run_capture("dialplan show", &out), PX_CLI_SUCCESS);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "limits: 50000 instructions"));
	free(out);
	/* A bad lua.conf is refused with its place; the running dialplan stays. */
	write_lua_conf("[general]\ninstruction_limit = lots\n");
	log_clear();
	CU_ASSERT_NOT_EQUAL(reload(), 0);
	CU_ASSERT_TRUE(log_has_line("lua.conf:2:", "instruction_limit", NULL));
	CU_ASSERT_STRING_EQUAL(run_all("feat", "vars", NULL), "1,2,3,4");
	write_lua_conf(NULL);
	CU_ASSERT_EQUAL_FATAL(reload(), 0);
}

/* A fake DB for plexus.db: one key. */
static char fake_db_key[256], fake_db_value[256];

static int fdb_read(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	snprintf(buf, size, "%s", strcmp(args, fake_db_key) ? "" : fake_db_value);
	return 0;
}

static int fdb_write(px_channel *ch, const char *args, const char *value, px_err *err)
{
	snprintf(fake_db_key, sizeof(fake_db_key), "%s", args);
	snprintf(fake_db_value, sizeof(fake_db_value), "%s", value);
	return 0;
}

static int fdb_exists(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	snprintf(buf, size, "%d", !strcmp(args, fake_db_key));
	return 0;
}

static int fdb_delete(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	fdb_read(ch, args, buf, size, err);
	if (!strcmp(args, fake_db_key))
		fake_db_key[0] = '\0';
	return 0;
}

static const struct px_func fake_db[] = {
	{.name = "DB", .synopsis = "fake", .read = fdb_read, .write = fdb_write},
	{.name = "DB_EXISTS", .synopsis = "fake", .read = fdb_exists},
	{.name = "DB_DELETE", .synopsis = "fake", .read = fdb_delete},
};

static void test_plexus_api(void)
{
	char expect[256];
	px_channel *ch;
	px_err err = {""};

	ch = new_channel("feat", "plex");
	log_clear();
	records_clear();
	CU_ASSERT_EQUAL(px_dialplan_run(ch), 0);
	CU_ASSERT_STRING_EQUAL(record(0), "name ok,1001,Alice,pv,3");
	CU_ASSERT_TRUE(log_has_line("extensions.lua:", "notice from lua 42", NULL));
	end_channel(ch);

	/* plexus.e164: "+", international and national prefixes, separators,
	 * and what is refused (no country for a national number, letters, a
	 * misplaced '+', nothing, too long, options that are not a table). */
	CU_ASSERT_STRING_EQUAL(
		run_all("feat", "pe164", NULL),
		"+15551234567 nil|+442079460000 nil|+15551234567 nil|"
		"+15551234567 nil|+33612345678 nil|+33612345678 nil|"
		"+33612345678 nil|"
		"nil '5551234' is national; give country = \"NN\"|"
		"nil '5551234' is national; give country = \"NN\"|"
		"nil '12ab' is not a phone number|nil '' is not a phone number|"
		"nil '+' is not a phone number|nil '1+2' is not a phone number|"
		"nil '9999999999999999999999999999999999999999999999999999999999999999999999'"
		" is not a phone number|false");

	CU_ASSERT_EQUAL_FATAL(px_app_register(NULL, &fake_dial, &err), 0);
	snprintf(expect, sizeof(expect), "Dial(Test/1&Test/2,7,)|NOANSWER,%d,Carol",
		 PX_CAUSE_NO_ANSWER);
	CU_ASSERT_STRING_EQUAL(run_all("feat", "pdial", NULL), expect);
	px_app_unregister(&fake_dial);

	log_clear();
	run_all("feat", "pdb", NULL);
	CU_ASSERT_TRUE(log_has_line("plexus.db", "res_db", NULL));
	for (size_t i = 0; i < 3; i++)
		CU_ASSERT_EQUAL_FATAL(px_func_register(NULL, &fake_db[i], &err), 0);
	CU_ASSERT_STRING_EQUAL(run_all("feat", "pdb", NULL), "v1,true|true,nil");
	for (size_t i = 0; i < 3; i++)
		px_func_unregister(&fake_db[i]);
}

/* canmatch and matchmore through the engine, includes searched. */
static void test_dialplan_close(void)
{
	char *out = NULL;

	use_dialplan("basic.lua");
	CU_ASSERT_EQUAL_FATAL(reload(), 0);
	CU_ASSERT_TRUE(px_dialplan_canmatch("default", "12", NULL));
	CU_ASSERT_TRUE(px_dialplan_matchmore("default", "12", NULL));
	CU_ASSERT_TRUE(px_dialplan_canmatch("office", "7", NULL)); /* deeper 777 */
	CU_ASSERT_TRUE(px_dialplan_matchmore("office", "77", NULL));
	CU_ASSERT_FALSE(px_dialplan_matchmore("office", "777", NULL));
	CU_ASSERT_FALSE(px_dialplan_canmatch("office", "9", NULL));
	CU_ASSERT_FALSE(px_dialplan_canmatch("nosuch", "1", NULL));

	CU_ASSERT_EQUAL(px_cli_run_capture("dialplan locate 1234@default", &out), PX_CLI_SUCCESS);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "'1000' no match"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "'_12XX' MATCHES"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "=> '_12XX' in context 'default'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "canmatch: yes; matchmore: yes"));
	free(out);
	CU_ASSERT_EQUAL(px_cli_run_capture("dialplan locate 777@office", &out), PX_CLI_SUCCESS);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Context 'deeper' (included)"));
	free(out);
	CU_ASSERT_EQUAL(px_cli_run_capture("dialplan locate 9@office", &out), PX_CLI_FAILURE);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "no entry matches"));
	free(out);
	CU_ASSERT_EQUAL(px_cli_run_capture("dialplan locate 9", &out), PX_CLI_SHOWUSAGE);
	free(out);
	CU_ASSERT_EQUAL(px_cli_run_capture("dialplan show default", &out), PX_CLI_SUCCESS);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "'1000'               => hint: Test/1000"));
	free(out);
}

static void test_load_unload_load(void)
{
	px_err err = {""};

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(px_loader_unload("pbx_lua", false, &err), 0);
		CU_ASSERT_FALSE(px_dialplan_exists("default", "1000", NULL));
		CU_ASSERT_EQUAL(run("default", "1000"), -1);
		CU_ASSERT_EQUAL_FATAL(px_loader_load("pbx_lua", &err), 0);
		CU_ASSERT_STRING_EQUAL(run_record("default", "1000"), "1000,default,1000");
	}
}

/* Not a test: with PBX_LUA_BENCH set, print the cost of one exec of a
 * trivial extension and the memory of a pooled state. */
static void bench(void)
{
	px_channel *ch = new_channel("api", "trivial");
	struct timespec a, b;
	const int n = 200000;
	double us;
	long kib, idle;

	CU_ASSERT_EQUAL(px_dialplan_run(ch), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++)
		px_dialplan_run(ch);
	clock_gettime(CLOCK_MONOTONIC, &b);
	end_channel(ch);
	us = ((double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3) / n;
	kib = show_number("KiB");
	idle = show_number("idle");
	printf("\npbx_lua: %.2f us per exec of a trivial extension (%d runs); "
	       "%ld KiB in %ld pooled state%s\n",
	       us, n, kib, idle, idle == 1 ? "" : "s");
}

int main(void)
{
	CU_pSuite s;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("pattern", NULL, NULL);
	CU_add_test(s, "match", test_pattern_match);
	CU_add_test(s, "check", test_pattern_check);
	CU_add_test(s, "order of precedence", test_pattern_order);
	CU_add_test(s, "precedence table: keys, number, winner", test_precedence_table);
	CU_add_test(s, "canmatch and matchmore", test_pattern_close);

	s = CU_add_suite("pbx_lua", suite_init, suite_cleanup);
	CU_add_test(s, "exists: exact keys and patterns", test_exists);
	CU_add_test(s, "includes: after own extensions, cycle-safe", test_includes);
	CU_add_test(s, "precedence: exact, then the most specific pattern", test_precedence);
	CU_add_test(s, "exec of a missing extension fails", test_exec_unknown);
	CU_add_test(s, "app.*: names, arguments joined by commas", test_app_args);
	CU_add_test(s, "channel.*: variables and built-ins", test_channel_vars);
	CU_add_test(s, "unknown application: error with file:line", test_unknown_app);
	CU_add_test(s, "runtime error: file:line logged, next call works", test_runtime_error);
	CU_add_test(s, "application asks for a hangup: function stops", test_hangup);
	CU_add_test(s, "the file runs once per state, not per call", test_run_once_per_state);
	CU_add_test(s, "concurrent calls share the pool", test_concurrent_calls);
	CU_add_test(s, "console: dialplan show and reload", test_cli);
	CU_add_test(s, "reload with a broken file keeps the old dialplan", test_reload_broken);
	CU_add_test(s, "reload with a changed file", test_reload_changed);
	CU_add_test(s, "a call in progress finishes on its generation", test_reload_in_progress);
	CU_add_test(s, "shared state: per-call globals, an error ends one call only",
		    test_shared_globals_and_errors);
	CU_add_test(s, "shared state: budget and memory ceiling per call", test_shared_limits);
	CU_add_test(s, "shared state: a second state past 64 calls, closed when idle",
		    test_shared_many_calls);
	CU_add_test(s, "bad files are refused at load with file:line", test_bad_files);
	CU_add_test(s, "the sample dialplan/extensions.lua", test_sample);
	CU_add_test(s, "pbx_lua API: channel variables and functions", test_compat_channel);
	CU_add_test(s, "globals set by a call stay with the call", test_compat_call_globals);
	CU_add_test(s, "Goto, i, fallthrough, h", test_compat_flow);
	CU_add_test(s, "runaway loop and memory hog are cut off", test_compat_runaway);
	CU_add_test(s, "sandbox and lua.conf", test_compat_sandbox);
	CU_add_test(s, "plexus.* API", test_plexus_api);
	CU_add_test(s, "canmatch, matchmore, dialplan locate", test_dialplan_close);
	CU_add_test(s, "load, unload, load", test_load_unload_load);
	if (getenv("PBX_LUA_BENCH"))
		CU_add_test(s, "measurement (PBX_LUA_BENCH)", bench);

	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
