/*
 * Unit tests of the module loader (core/loader.c) against real shared
 * objects: the test modules of tests/modules and the real res_db module,
 * gathered by symlinks in a temporary module directory. They cover the load
 * order that requirements impose and the use count it takes, the one-line
 * report and the carrying on for every kind of bad module (missing
 * requirement, dependency cycle, wrong ABI, failing load(), unresolved
 * symbol, no descriptor), the load/noload/require/autoload options of
 * modules.conf, load -> unload -> load of good modules, the release of the
 * console commands a module leaves registered, the errors of single loads,
 * unloads and reloads, reload() callbacks and unload() refusals (through
 * tm_reload), and shutdown. Every test starts from px_loader_init
 * and ends with px_loader_shutdown, so tests are independent; log lines are
 * captured through a log subscriber.
 */
#include <dlfcn.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <plexus/cli.h>
#include <plexus/config.h>
#include <plexus/log.h>
#include <plexus/module.h>
#include <plexus/store.h>

#include "../../core/cli_internal.h"
#include "../../core/loader.h"
#include "../../core/log_internal.h"

/* Like CU_ASSERT_PTR_NOT_NULL(strstr(haystack, needle)), but prints both on failure. */
#define ASSERT_CONTAINS(haystack, needle)                                                          \
	do {                                                                                       \
		const char *h_ = (haystack), *n_ = (needle);                                       \
		bool found_ = h_ && strstr(h_, n_);                                                \
		if (!found_)                                                                       \
			fprintf(stderr, "\n  expected \"%s\" in \"%s\"\n", n_,                     \
				h_ ? h_ : "(null)");                                               \
		CU_ASSERT(found_);                                                                 \
	} while (0)



/* The test modules this file knows, and those of them that must not load. */
static const char *const test_modules[] = {
	"tm_bad_abi",   "tm_base",       "tm_cli",         "tm_cycle_a",       "tm_cycle_b",
	"tm_dependent", "tm_load_fails", "tm_missing_dep", "tm_no_descriptor", "tm_unresolved",
};
#define NTEST_MODULES (sizeof(test_modules) / sizeof(test_modules[0]))
static const char *const bad_modules[] = {
	"tm_bad_abi",     "tm_cycle_a",       "tm_cycle_b",    "tm_load_fails",
	"tm_missing_dep", "tm_no_descriptor", "tm_unresolved",
};
#define NBAD_MODULES (sizeof(bad_modules) / sizeof(bad_modules[0]))

static char tmpdir[] = "/tmp/plexus-test-loader-XXXXXX";
static char moddir[PATH_MAX];
static px_store *store;
static bool loader_ready;
/* tm_reload is linked into the module directory when it is built. */
static bool have_tm_reload;

/* ---- log capture ---- */

struct captured {
	enum px_log_level level;
	char *text;
};
static struct captured *lines;
static size_t nlines, lines_cap;

/* Called with the logger's subscriber lock held. */
static void capture_deliver(void *ctx, enum px_log_level level, const char *line, size_t len)
{
	if (nlines == lines_cap) {
		size_t ncap = lines_cap ? lines_cap * 2 : 64;
		struct captured *n = realloc(lines, ncap * sizeof(*n));
		if (!n)
			return;
		lines = n;
		lines_cap = ncap;
	}
	lines[nlines].level = level;
	lines[nlines].text = strndup(line, len);
	if (lines[nlines].text)
		nlines++;
}

static struct px_log_subscriber capture_sub = {
	.mask = PX_LOG_MASK_ALL,
	.verbose = 1,
	.debug = 0,
	.deliver = capture_deliver,
};

static void clear_lines(void)
{
	for (size_t i = 0; i < nlines; i++)
		free(lines[i].text);
	nlines = 0;
}

/* Lines (of level at most max_level) that contain every needle; NULL ends the needles. */
static size_t count_lines_v(enum px_log_level max_level, const char *first, va_list ap)
{
	const char *needles[8];
	size_t nneedles = 0, count = 0;

	for (const char *n = first; n && nneedles < 8; n = va_arg(ap, const char *))
		needles[nneedles++] = n;
	for (size_t i = 0; i < nlines; i++) {
		size_t k;
		if (lines[i].level > max_level)
			continue;
		for (k = 0; k < nneedles; k++)
			if (!strstr(lines[i].text, needles[k]))
				break;
		if (k == nneedles)
			count++;
	}
	return count;
}

/* Warning and error lines containing every needle. */
static size_t __attribute__((sentinel)) count_problems(const char *first, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, first);
	n = count_lines_v(PX_LOG_WARNING, first, ap);
	va_end(ap);
	return n;
}

/* Lines of any level containing every needle. */
static size_t __attribute__((sentinel)) count_lines(const char *first, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, first);
	n = count_lines_v(PX_LOG_DEBUG, first, ap);
	va_end(ap);
	return n;
}

/* Index of the first captured line containing needle, or -1. */
static long line_index(const char *needle)
{
	for (size_t i = 0; i < nlines; i++)
		if (strstr(lines[i].text, needle))
			return (long)i;
	return -1;
}

/* The warning "<name> not loaded" the loader logs once per module it skips. */
static size_t not_loaded_lines(const char *name)
{
	char needle[128];

	snprintf(needle, sizeof(needle), "%s not loaded", name);
	return count_problems(needle, NULL);
}

/* The one "not loaded" line of name, if there is exactly one. */
static const char *not_loaded_line(const char *name)
{
	char needle[128];
	const char *found = NULL;

	snprintf(needle, sizeof(needle), "%s not loaded", name);
	for (size_t i = 0; i < nlines; i++) {
		if (lines[i].level <= PX_LOG_WARNING && strstr(lines[i].text, needle)) {
			if (found)
				return NULL;
			found = lines[i].text;
		}
	}
	return found;
}

/* ---- helpers ---- */

static int load_conf(const char *text, px_err *err)
{
	px_config *cfg = NULL;
	int rc;

	if (px_config_load_string("modules.conf", text, &cfg, err) < 0) {
		fprintf(stderr, "\n  modules.conf does not parse: %s\n", err->msg);
		CU_FAIL("modules.conf does not parse");
		return -2;
	}
	rc = px_loader_load_all(cfg, err);
	px_config_unref(cfg);
	return rc;
}

/* Position of name in the load order, or -1. */
static int load_position(const char *name)
{
	struct px_module_status list[64];
	size_t n = px_loader_list(list, 64);

	for (size_t i = 0; i < n && i < 64; i++)
		if (!strcmp(list[i].name, name))
			return (int)i;
	return -1;
}

static int use_count_of(const char *name)
{
	struct px_module_status list[64];
	size_t n = px_loader_list(list, 64);

	for (size_t i = 0; i < n && i < 64; i++)
		if (!strcmp(list[i].name, name))
			return list[i].use_count;
	return -1;
}

/* Run a console command; returns its status and (if out) its output, to free. */
static enum px_cli_status run(const char *line, char **out)
{
	char *o = NULL;
	enum px_cli_status st = px_cli_run_capture(line, &o);

	if (out)
		*out = o;
	else
		free(o);
	return st;
}

/* Path of a module in the test module directory. */
static void module_path(char *buf, size_t size, const char *name)
{
	if (snprintf(buf, size, "%s/%s.so", moddir, name) >= (int)size)
		buf[0] = '\0';
}

/* Is the module's shared object mapped in the process? (Asking with
 * RTLD_NOLOAD neither loads it nor, once closed again, keeps it.) Note that
 * dlsym(RTLD_DEFAULT) must not be used on module symbols: glibc then marks
 * the module "nodelete" and it would never be unmapped again. */
static bool is_mapped(const char *name)
{
	char path[PATH_MAX];
	void *h;

	module_path(path, sizeof(path), name);
	h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
	if (h)
		dlclose(h);
	return h != NULL;
}

/* ---- suite set-up ---- */

static int link_module(const char *target, const char *name)
{
	char link[PATH_MAX];

	if (snprintf(link, sizeof(link), "%s/%s.so", moddir, name) >= (int)sizeof(link))
		return -1;
	if (access(target, R_OK) != 0) {
		fprintf(stderr, "test_loader: %s is missing (build the test modules)\n", target);
		return -1;
	}
	return symlink(target, link);
}

static int suite_init(void)
{
	char path[PATH_MAX], builddir[PATH_MAX];
	px_err err = {""};

	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(moddir, sizeof(moddir), "%s/modules", tmpdir);
	if (mkdir(moddir, 0700) != 0)
		return -1;
	for (size_t i = 0; i < NTEST_MODULES; i++) {
		snprintf(path, sizeof(path), "%s/%s.so", PX_TEST_MODULEDIR, test_modules[i]);
		if (link_module(path, test_modules[i]) != 0)
			return -1;
	}
	snprintf(path, sizeof(path), "%s/tm_reload.so", PX_TEST_MODULEDIR);
	if (access(path, R_OK) == 0) {
		if (link_module(path, "tm_reload") != 0)
			return -1;
		have_tm_reload = true;
	}
	/* The build directory is three levels above tests/modules/.libs. */
	if (!realpath(PX_TEST_MODULEDIR "/../../..", builddir))
		return -1;
	if (snprintf(path, sizeof(path), "%s/modules/.libs/res_db.so", builddir) >=
		    (int)sizeof(path) ||
	    link_module(path, "res_db") != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/plexus.db", tmpdir);
	if (px_store_open(path, &store, &err) != 0) {
		fprintf(stderr, "test_loader: %s\n", err.msg);
		return -1;
	}
	px_store_set_default(store);
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
	clear_lines();
	free(lines);
	lines = NULL;
	lines_cap = 0;
	px_store_set_default(NULL);
	px_store_close(store);
	px_cli_registry_shutdown();
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_setup(void)
{
	px_err err = {""};

	clear_lines();
	loader_ready = px_loader_init(moddir, &err) == 0;
	if (!loader_ready)
		fprintf(stderr, "\n  px_loader_init: %s\n", err.msg);
}

static void test_teardown(void)
{
	px_loader_shutdown();
	loader_ready = false;
}

/* ---- tests ---- */

static void test_dependency_order(void)
{
	px_err err = {""};

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = no\n"
				  "load = tm_dependent\n"
				  "load = tm_base\n",
				  &err),
			0);
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 2);
	CU_ASSERT_EQUAL(load_position("tm_base"), 0);
	CU_ASSERT_EQUAL(load_position("tm_dependent"), 1);
	CU_ASSERT_EQUAL(use_count_of("tm_base"), 1);
	CU_ASSERT_EQUAL(use_count_of("tm_dependent"), 0);
	CU_ASSERT_EQUAL(count_problems("tm_", NULL), 0);
	/* The load messages come in load order too. */
	CU_ASSERT(line_index("Loaded tm_base") >= 0);
	CU_ASSERT(line_index("Loaded tm_base") < line_index("Loaded tm_dependent"));

	/* In use: refused without force, and nothing changes. */
	CU_ASSERT_EQUAL(px_loader_unload("tm_base", false, &err), -1);
	ASSERT_CONTAINS(err.msg, "in use");
	ASSERT_CONTAINS(err.msg, "tm_base");
	CU_ASSERT(px_loader_is_loaded("tm_base"));
	CU_ASSERT_EQUAL(use_count_of("tm_base"), 1);
	CU_ASSERT_EQUAL(run("tm base ping", NULL), PX_CLI_SUCCESS);

	/* Once its user is gone, it unloads normally. */
	CU_ASSERT_EQUAL(px_loader_unload("tm_dependent", false, &err), 0);
	CU_ASSERT_EQUAL(use_count_of("tm_base"), 0);
	CU_ASSERT_EQUAL(px_loader_unload("tm_base", false, &err), 0);
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_base"));
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 0);
	CU_ASSERT_EQUAL(run("tm base ping", NULL), PX_CLI_NOCOMMAND);
}

static void test_missing_requirement(void)
{
	px_err err = {""};
	const char *line;

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = no\n"
				  "load = tm_missing_dep\n"
				  "load = tm_base\n",
				  &err),
			0);
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_missing_dep"));
	CU_ASSERT(px_loader_is_loaded("tm_base"));
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 1);
	CU_ASSERT_EQUAL(count_problems("tm_missing_dep", "tm_does_not_exist", NULL), 1);
	CU_ASSERT_EQUAL(not_loaded_lines("tm_missing_dep"), 1);
	line = not_loaded_line("tm_missing_dep");
	CU_ASSERT_PTR_NOT_NULL(line);
	ASSERT_CONTAINS(line, "tm_does_not_exist");

	/* Loaded by hand, it fails the same way and leaves nothing behind. */
	CU_ASSERT_EQUAL(px_loader_load("tm_missing_dep", &err), -1);
	ASSERT_CONTAINS(err.msg, "tm_does_not_exist");
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_missing_dep"));
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 1);
}

static void test_dependency_cycle(void)
{
	px_err err = {""};

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = no\n"
				  "load = tm_cycle_a\n"
				  "load = tm_cycle_b\n"
				  "load = tm_base\n",
				  &err),
			0);
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_cycle_a"));
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_cycle_b"));
	CU_ASSERT(px_loader_is_loaded("tm_base"));
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 1);
	/* Each module of the cycle is reported once, by a line naming the whole cycle. */
	CU_ASSERT_EQUAL(not_loaded_lines("tm_cycle_a"), 1);
	CU_ASSERT_EQUAL(not_loaded_lines("tm_cycle_b"), 1);
	CU_ASSERT(count_problems("dependency cycle", "tm_cycle_a", "tm_cycle_b", NULL) >= 1);
	ASSERT_CONTAINS(not_loaded_line("tm_cycle_a"), "dependency cycle");
	ASSERT_CONTAINS(not_loaded_line("tm_cycle_a"), "tm_cycle_b");
	ASSERT_CONTAINS(not_loaded_line("tm_cycle_b"), "dependency cycle");
	ASSERT_CONTAINS(not_loaded_line("tm_cycle_b"), "tm_cycle_a");
	CU_ASSERT_EQUAL(count_lines("Loaded tm_cycle", NULL), 0);
}

static void test_bad_modules_are_skipped(void)
{
	px_err err = {""};

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = no\n"
				  "load = tm_bad_abi\n"
				  "load = tm_load_fails\n"
				  "load = tm_dependent\n"
				  "load = tm_unresolved.so\n"
				  "load = tm_no_descriptor\n"
				  "load = tm_base\n",
				  &err),
			0);
	/* The good ones load, in order, whatever sits around them in the file. */
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 2);
	CU_ASSERT_EQUAL(load_position("tm_base"), 0);
	CU_ASSERT_EQUAL(load_position("tm_dependent"), 1);

	CU_ASSERT_FALSE(px_loader_is_loaded("tm_bad_abi"));
	CU_ASSERT_EQUAL(not_loaded_lines("tm_bad_abi"), 1);
	ASSERT_CONTAINS(not_loaded_line("tm_bad_abi"), "ABI");

	CU_ASSERT_FALSE(px_loader_is_loaded("tm_load_fails"));
	CU_ASSERT_EQUAL(not_loaded_lines("tm_load_fails"), 1);
	ASSERT_CONTAINS(not_loaded_line("tm_load_fails"), "load failed");
	/* Its own message came before the loader's verdict. */
	CU_ASSERT_EQUAL(count_problems("refusing to load (on purpose)", NULL), 1);
	/* The command its load() registered before failing is gone. */
	CU_ASSERT_EQUAL(run("tm fails cmd", NULL), PX_CLI_NOCOMMAND);

	CU_ASSERT_FALSE(px_loader_is_loaded("tm_unresolved"));
	CU_ASSERT_EQUAL(not_loaded_lines("tm_unresolved"), 1);
	CU_ASSERT(count_problems("tm_unresolved not loaded", "undefined symbol", NULL) == 1 ||
		  count_problems("tm_unresolved not loaded", "px_function_that_does_not_exist",
				 NULL) == 1);

	CU_ASSERT_FALSE(px_loader_is_loaded("tm_no_descriptor"));
	CU_ASSERT_EQUAL(not_loaded_lines("tm_no_descriptor"), 1);
	ASSERT_CONTAINS(not_loaded_line("tm_no_descriptor"), "px_module_info");

	/* Bad modules are not a failure of load_all unless required. */
	CU_ASSERT_EQUAL(err.msg[0], '\0');
}

static void test_single_load_errors(void)
{
	px_err err = {""};

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_EQUAL(px_loader_load("tm_bad_abi", &err), -1);
	ASSERT_CONTAINS(err.msg, "tm_bad_abi");
	ASSERT_CONTAINS(err.msg, "ABI");

	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_loader_load("tm_load_fails", &err), -1);
	ASSERT_CONTAINS(err.msg, "tm_load_fails");
	ASSERT_CONTAINS(err.msg, "load failed");
	CU_ASSERT_EQUAL(run("tm fails cmd", NULL), PX_CLI_NOCOMMAND);

	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_loader_load("tm_unresolved", &err), -1);
	CU_ASSERT(strstr(err.msg, "undefined symbol") ||
		  strstr(err.msg, "px_function_that_does_not_exist"));

	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_loader_load("tm_no_descriptor", &err), -1);
	ASSERT_CONTAINS(err.msg, "px_module_info");

	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_loader_load("tm_nonexistent", &err), -1);
	ASSERT_CONTAINS(err.msg, "tm_nonexistent");

	/* A single load does not pull in requirements. */
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_loader_load("tm_dependent", &err), -1);
	ASSERT_CONTAINS(err.msg, "tm_base");
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_dependent"));

	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 0);

	/* A refused module is closed again: its code is no longer mapped. */
	CU_ASSERT_FALSE(is_mapped("tm_no_descriptor"));

	/* "name.so" names the same module as "name". */
	CU_ASSERT_EQUAL(px_loader_load("tm_base.so", &err), 0);
	CU_ASSERT(px_loader_is_loaded("tm_base"));
	CU_ASSERT(px_loader_is_loaded("tm_base.so"));
	CU_ASSERT_EQUAL(px_loader_load("tm_dependent", &err), 0);
	CU_ASSERT_EQUAL(use_count_of("tm_base"), 1);
	CU_ASSERT_EQUAL(load_position("tm_dependent"), 1);
}

static void test_require(void)
{
	px_err err = {""};
	struct px_module_status list[8];

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = no\n"
				  "load = tm_base\n"
				  "require = tm_load_fails\n"
				  "load = tm_cli\n",
				  &err),
			-1);
	ASSERT_CONTAINS(err.msg, "tm_load_fails");
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_load_fails"));
	CU_ASSERT_EQUAL(not_loaded_lines("tm_load_fails"), 1);
	CU_ASSERT_EQUAL(count_lines("tm_load_fails not loaded", NULL), 1);
	/* The others still load: the daemon decides what to do with the failure. */
	CU_ASSERT(px_loader_is_loaded("tm_base"));
	CU_ASSERT(px_loader_is_loaded("tm_cli"));
	px_loader_shutdown();
	CU_ASSERT_EQUAL_FATAL(px_loader_init(moddir, &err), 0);

	/* A required module that loads is marked so. */
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = no\n"
				  "require = tm_base.so\n"
				  "load = tm_cli\n",
				  &err),
			0);
	CU_ASSERT_EQUAL(err.msg[0], '\0');
	CU_ASSERT_EQUAL_FATAL(px_loader_list(list, 8), 2);
	CU_ASSERT_STRING_EQUAL(list[0].name, "tm_base");
	CU_ASSERT(list[0].required);
	CU_ASSERT_STRING_EQUAL(list[1].name, "tm_cli");
	CU_ASSERT_FALSE(list[1].required);
	px_loader_shutdown();
	CU_ASSERT_EQUAL_FATAL(px_loader_init(moddir, &err), 0);

	/* A requirement that cannot load fails the required module too. */
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = no\n"
				  "require = tm_missing_dep\n",
				  &err),
			-1);
	ASSERT_CONTAINS(err.msg, "tm_missing_dep");
	ASSERT_CONTAINS(err.msg, "tm_does_not_exist");

	/* Configuration errors load nothing and name the line. */
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = no\n"
				  "require = tm_base\n"
				  "noload = tm_base\n",
				  &err),
			-1);
	ASSERT_CONTAINS(err.msg, "modules.conf:4");
	ASSERT_CONTAINS(err.msg, "tm_base");
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_base"));
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = no\n"
				  "load = tm_base\n"
				  "preload = tm_cli\n",
				  &err),
			-1);
	ASSERT_CONTAINS(err.msg, "modules.conf:4");
	ASSERT_CONTAINS(err.msg, "preload");
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = perhaps\n"
				  "load = tm_base\n",
				  &err),
			-1);
	ASSERT_CONTAINS(err.msg, "modules.conf:2");
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 0);
}

static void test_noload(void)
{
	px_err err = {""};

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = yes\n"
				  "noload = tm_cli\n"
				  "noload = tm_bad_abi.so\n"
				  "noload = tm_unresolved\n",
				  &err),
			0);
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_cli"));
	CU_ASSERT_EQUAL(run("tm cli hello", NULL), PX_CLI_NOCOMMAND);
	/* Not even opened: nothing is said about them. */
	CU_ASSERT_EQUAL(count_lines("tm_cli", NULL), 0);
	CU_ASSERT_EQUAL(count_lines("tm_bad_abi", NULL), 0);
	CU_ASSERT_EQUAL(count_lines("tm_unresolved", NULL), 0);
	/* The rest of the directory is loaded or reported as usual. */
	CU_ASSERT(px_loader_is_loaded("tm_base"));
	CU_ASSERT(px_loader_is_loaded("tm_dependent"));
	CU_ASSERT(px_loader_is_loaded("res_db"));
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 3 + have_tm_reload);
	CU_ASSERT_EQUAL(not_loaded_lines("tm_load_fails"), 1);
	CU_ASSERT_EQUAL(not_loaded_lines("tm_no_descriptor"), 1);

	/* noload wins over an explicit load, and over autoload of a module that is
	 * not in the directory at all. */
	px_loader_shutdown();
	CU_ASSERT_EQUAL_FATAL(px_loader_init(moddir, &err), 0);
	clear_lines();
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = no\n"
				  "load = tm_base\n"
				  "load = tm_cli\n"
				  "noload = tm_cli\n"
				  "noload = tm_not_there\n",
				  &err),
			0);
	CU_ASSERT(px_loader_is_loaded("tm_base"));
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_cli"));
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 1);
	CU_ASSERT_EQUAL(count_problems("tm_", NULL), 0);
}

static void test_autoload(void)
{
	static const char *const good[] = {"res_db", "tm_base", "tm_cli", "tm_dependent"};
	px_err err = {""};
	size_t problems = 0;

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_EQUAL(load_conf("[modules]\nautoload = yes\n", &err), 0);
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 4 + have_tm_reload);
	CU_ASSERT_EQUAL(px_loader_is_loaded("tm_reload"), have_tm_reload);
	for (size_t i = 0; i < 4; i++) {
		CU_ASSERT(px_loader_is_loaded(good[i]));
		CU_ASSERT_EQUAL(not_loaded_lines(good[i]), 0);
	}
	CU_ASSERT(load_position("tm_base") < load_position("tm_dependent"));
	for (size_t i = 0; i < NBAD_MODULES; i++) {
		CU_ASSERT_FALSE(px_loader_is_loaded(bad_modules[i]));
		CU_ASSERT_EQUAL(not_loaded_lines(bad_modules[i]), 1);
	}
	/* Seven bad modules, seven lines: nothing else was reported. */
	for (size_t i = 0; i < nlines; i++)
		if (lines[i].level <= PX_LOG_WARNING && strstr(lines[i].text, "not loaded"))
			problems++;
	CU_ASSERT_EQUAL(problems, NBAD_MODULES);
	CU_ASSERT_EQUAL(run("tm fails cmd", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_EQUAL(run("tm cli hello", NULL), PX_CLI_SUCCESS);
	CU_ASSERT_EQUAL(run("tm base ping", NULL), PX_CLI_SUCCESS);

	/* Loading everything again (no modules.conf: autoload) leaves the loaded
	 * ones alone and reports the bad ones again. */
	clear_lines();
	CU_ASSERT_EQUAL(px_loader_load_all(NULL, &err), 0);
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 4 + have_tm_reload);
	CU_ASSERT_EQUAL(use_count_of("tm_base"), 1);
	CU_ASSERT_EQUAL(count_lines("Loaded tm_", NULL), 0);
	for (size_t i = 0; i < NBAD_MODULES; i++)
		CU_ASSERT_EQUAL(not_loaded_lines(bad_modules[i]), 1);
}

static void test_load_unload_load(void)
{
	px_err err = {""};
	char path[PATH_MAX];
	void *pin;
	int *loads, *unloads;
	char *out = NULL;

	CU_ASSERT_FATAL(loader_ready);

	/* tm_base counts its load() and unload() calls in exported ints. A
	 * handle of our own keeps it mapped, so the counters outlive the unload. */
	CU_ASSERT_EQUAL_FATAL(px_loader_load("tm_base", &err), 0);
	module_path(path, sizeof(path), "tm_base");
	pin = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pin);
	loads = dlsym(pin, "tm_base_loads");
	unloads = dlsym(pin, "tm_base_unloads");
	CU_ASSERT_PTR_NOT_NULL(loads);
	CU_ASSERT_PTR_NOT_NULL(unloads);
	if (!loads || !unloads) {
		dlclose(pin);
		return;
	}
	CU_ASSERT_EQUAL(*loads, 1);
	CU_ASSERT_EQUAL(*unloads, 0);
	CU_ASSERT_EQUAL(px_loader_unload("tm_base", false, &err), 0);
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_base"));
	CU_ASSERT_EQUAL(run("tm base ping", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_EQUAL(*loads, 1);
	CU_ASSERT_EQUAL(*unloads, 1);
	CU_ASSERT_EQUAL(px_loader_load("tm_base", &err), 0);
	CU_ASSERT_EQUAL(*loads, 2);
	CU_ASSERT_EQUAL(*unloads, 1);
	dlclose(pin);
	CU_ASSERT(is_mapped("tm_base"));
	CU_ASSERT_EQUAL(run("tm base ping", &out), PX_CLI_SUCCESS);
	CU_ASSERT_STRING_EQUAL(out, "tm_base pong\n");
	free(out);

	/* tm_dependent, on top of it; the use count follows. */
	for (int round = 0; round < 2; round++) {
		CU_ASSERT_EQUAL(px_loader_load("tm_dependent", &err), 0);
		CU_ASSERT_EQUAL(use_count_of("tm_base"), 1);
		CU_ASSERT_EQUAL(px_loader_unload("tm_dependent", false, &err), 0);
		CU_ASSERT_EQUAL(use_count_of("tm_base"), 0);
	}
	CU_ASSERT_EQUAL(px_loader_load("tm_dependent", &err), 0);
	CU_ASSERT(px_loader_is_loaded("tm_dependent"));

	/* tm_cli, whose commands come and go with it. */
	for (int round = 0; round < 2; round++) {
		CU_ASSERT_EQUAL(px_loader_load("tm_cli", &err), 0);
		CU_ASSERT_EQUAL(run("tm cli hello", NULL), PX_CLI_SUCCESS);
		CU_ASSERT(is_mapped("tm_cli"));
		CU_ASSERT_EQUAL(px_loader_unload("tm_cli", false, &err), 0);
		CU_ASSERT_EQUAL(run("tm cli hello", NULL), PX_CLI_NOCOMMAND);
		/* Unloaded means unmapped. */
		CU_ASSERT_FALSE(is_mapped("tm_cli"));
	}
	CU_ASSERT_EQUAL(px_loader_load("tm_cli", &err), 0);

	/* res_db: its data lives in the store, not in the module. */
	CU_ASSERT_EQUAL_FATAL(px_loader_load("res_db", &err), 0);
	CU_ASSERT_EQUAL(run("database put plexus test value1", NULL), PX_CLI_SUCCESS);
	CU_ASSERT_EQUAL(px_loader_unload("res_db", false, &err), 0);
	CU_ASSERT_FALSE(px_loader_is_loaded("res_db"));
	CU_ASSERT_EQUAL(run("database get plexus test", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_EQUAL_FATAL(px_loader_load("res_db", &err), 0);
	CU_ASSERT_EQUAL(run("database get plexus test", &out), PX_CLI_SUCCESS);
	CU_ASSERT_STRING_EQUAL(out, "Value: value1\n");
	free(out);
	CU_ASSERT_EQUAL(run("database del plexus test", NULL), PX_CLI_SUCCESS);

	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 4);
	CU_ASSERT_EQUAL(count_problems("tm_", NULL), 0);
	CU_ASSERT_EQUAL(count_problems("res_db", NULL), 0);
}

static void test_unload_releases_commands(void)
{
	px_err err = {""};
	char *out = NULL;

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_EQUAL_FATAL(px_loader_load("tm_cli", &err), 0);
	CU_ASSERT_EQUAL(run("tm cli hello", &out), PX_CLI_SUCCESS);
	CU_ASSERT_STRING_EQUAL(out, "hello from tm_cli\n");
	free(out);
	/* tm_cli's unload() leaves its three commands registered on purpose. */
	CU_ASSERT_EQUAL(px_loader_unload("tm_cli", false, &err), 0);
	CU_ASSERT_EQUAL(run("tm cli hello", &out), PX_CLI_NOCOMMAND);
	ASSERT_CONTAINS(out, "No such command");
	free(out);
	CU_ASSERT_EQUAL(run("tm cli flood", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_EQUAL(run("tm cli color red", NULL), PX_CLI_NOCOMMAND);
	out = px_cli_complete(NULL, "tm ");
	CU_ASSERT_STRING_EQUAL(out, "");
	free(out);
	/* Its commands can be registered again: nothing of them was left behind. */
	CU_ASSERT_EQUAL(px_loader_load("tm_cli", &err), 0);
	CU_ASSERT_EQUAL(run("tm cli hello", NULL), PX_CLI_SUCCESS);
}

static void test_load_unload_reload_errors(void)
{
	px_err err = {""};

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_EQUAL_FATAL(px_loader_load("tm_base", &err), 0);
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_loader_load("tm_base", &err), -1);
	ASSERT_CONTAINS(err.msg, "already loaded");
	CU_ASSERT_EQUAL(px_loader_load("tm_base.so", &err), -1);
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 1);
	CU_ASSERT(px_loader_is_loaded("tm_base"));

	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_loader_unload("tm_cli", false, &err), -1);
	ASSERT_CONTAINS(err.msg, "not loaded");
	CU_ASSERT_EQUAL(px_loader_unload("tm_cli", true, &err), -1);
	CU_ASSERT_EQUAL(px_loader_unload("tm_nonexistent", false, &err), -1);

	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_loader_reload("tm_base", &err), -1);
	ASSERT_CONTAINS(err.msg, "does not support reloading");
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_loader_reload("tm_cli", &err), -1);
	ASSERT_CONTAINS(err.msg, "not loaded");
	/* Reloading everything skips modules without reload. */
	px_loader_reload_all();
	CU_ASSERT(px_loader_is_loaded("tm_base"));
	CU_ASSERT_EQUAL(count_problems("tm_base", NULL), 0);

	/* A failed unload or reload changed nothing. */
	CU_ASSERT_EQUAL(run("tm base ping", NULL), PX_CLI_SUCCESS);
}

static void test_shutdown(void)
{
	px_err err = {""};

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = no\n"
				  "load = tm_cli\n"
				  "load = tm_dependent\n"
				  "load = tm_base\n",
				  &err),
			0);
	CU_ASSERT_EQUAL_FATAL(px_loader_list(NULL, 0), 3);
	clear_lines();
	px_loader_shutdown();
	loader_ready = false;
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 0);
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_base"));
	/* Reverse load order; the module in use is unloaded after its user. */
	CU_ASSERT(line_index("Unloaded tm_dependent") >= 0);
	CU_ASSERT(line_index("Unloaded tm_dependent") < line_index("Unloaded tm_base"));
	CU_ASSERT(line_index("Unloaded tm_cli") >= 0);
	CU_ASSERT_EQUAL(count_problems("tm_", NULL), 0);
	CU_ASSERT_EQUAL(run("tm cli hello", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_EQUAL(run("tm base ping", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_FALSE(is_mapped("tm_base"));
	CU_ASSERT_FALSE(is_mapped("tm_cli"));
	/* A second shutdown is harmless. */
	px_loader_shutdown();

	/* And the loader starts again from scratch. */
	CU_ASSERT_EQUAL_FATAL(px_loader_init(moddir, &err), 0);
	loader_ready = true;
	CU_ASSERT_STRING_EQUAL(px_loader_dir(), moddir);
	CU_ASSERT_EQUAL(px_loader_load("tm_base", &err), 0);
	CU_ASSERT_EQUAL(px_loader_load("tm_dependent", &err), 0);
	CU_ASSERT_EQUAL(use_count_of("tm_base"), 1);
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 2);
	CU_ASSERT_EQUAL(run("tm base ping", NULL), PX_CLI_SUCCESS);
}

static void test_available(void)
{
	char **names = px_loader_available();
	size_t n = 0, expected = NTEST_MODULES + 1 + have_tm_reload;

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_PTR_NOT_NULL_FATAL(names);
	while (names[n])
		n++;
	/* Everything in the directory, without ".so", sorted. */
	CU_ASSERT_EQUAL(n, expected);
	for (size_t i = 0; i < NTEST_MODULES; i++) {
		size_t k = 0;
		while (k < n && strcmp(names[k], test_modules[i]))
			k++;
		CU_ASSERT(k < n);
	}
	CU_ASSERT(n > 0 && !strcmp(names[0], "res_db"));
	for (size_t i = 1; i < n; i++)
		CU_ASSERT(strcmp(names[i - 1], names[i]) < 0);
	px_config_list_free(names);
}

static void test_reload_and_refused_unload(void)
{
	px_err err = {""};
	char path[PATH_MAX];
	void *pin;
	int *calls, *fail, *refuse;

	CU_ASSERT_FATAL(loader_ready);
	if (!have_tm_reload) {
		CU_FAIL("tests/modules/tm_reload.so is not built (add it to TEST_MODULES)");
		return;
	}
	CU_ASSERT_EQUAL_FATAL(px_loader_load("tm_reload", &err), 0);
	/* Our own handle, to reach its ints (and keep it mapped while we do). */
	module_path(path, sizeof(path), "tm_reload");
	pin = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pin);
	calls = dlsym(pin, "tm_reload_calls");
	fail = dlsym(pin, "tm_reload_fail");
	refuse = dlsym(pin, "tm_reload_refuse_unload");
	if (!calls || !fail || !refuse) {
		CU_FAIL("tm_reload lacks its exported ints");
		dlclose(pin);
		return;
	}
	*calls = *fail = *refuse = 0;

	CU_ASSERT_EQUAL(px_loader_reload("tm_reload", &err), 0);
	CU_ASSERT_EQUAL(*calls, 1);
	*fail = 1;
	CU_ASSERT_EQUAL(px_loader_reload("tm_reload.so", &err), -1);
	ASSERT_CONTAINS(err.msg, "tm_reload");
	ASSERT_CONTAINS(err.msg, "reload failed");
	CU_ASSERT_EQUAL(*calls, 2);
	CU_ASSERT(px_loader_is_loaded("tm_reload"));

	/* Reloading everything calls it too, and a failure is one warning. */
	clear_lines();
	px_loader_reload_all();
	CU_ASSERT_EQUAL(*calls, 3);
	CU_ASSERT_EQUAL(count_problems("tm_reload", "reload failed", NULL), 1);
	*fail = 0;
	clear_lines();
	px_loader_reload_all();
	CU_ASSERT_EQUAL(*calls, 4);
	CU_ASSERT_EQUAL(count_problems("tm_reload", NULL), 0);

	/* An unload() that refuses keeps the module, unless forced. */
	*refuse = 1;
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_loader_unload("tm_reload", false, &err), -1);
	ASSERT_CONTAINS(err.msg, "refused");
	CU_ASSERT(px_loader_is_loaded("tm_reload"));
	CU_ASSERT_EQUAL(px_loader_reload("tm_reload", &err), 0);
	CU_ASSERT_EQUAL(px_loader_unload("tm_reload", true, &err), 0);
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_reload"));
	CU_ASSERT_EQUAL(count_problems("tm_reload", "refused", NULL), 1);
	CU_ASSERT_EQUAL(px_loader_reload("tm_reload", &err), -1);
	ASSERT_CONTAINS(err.msg, "not loaded");

	/* Shutdown unloads it even while it refuses. */
	CU_ASSERT_EQUAL(px_loader_load("tm_reload", &err), 0);
	CU_ASSERT_EQUAL(*refuse, 1);
	px_loader_shutdown();
	loader_ready = false;
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 0);
	dlclose(pin);
	CU_ASSERT_FALSE(is_mapped("tm_reload"));
	CU_ASSERT_EQUAL_FATAL(px_loader_init(moddir, &err), 0);
	loader_ready = true;
}

/* Kept last: a forced unload leaves the dependent module loaded. */
static void test_forced_unload(void)
{
	px_err err = {""};

	CU_ASSERT_FATAL(loader_ready);
	CU_ASSERT_EQUAL(load_conf("[modules]\n"
				  "autoload = no\n"
				  "load = tm_dependent\n"
				  "load = tm_base\n",
				  &err),
			0);
	CU_ASSERT_EQUAL_FATAL(use_count_of("tm_base"), 1);
	CU_ASSERT_EQUAL(px_loader_unload("tm_base", false, &err), -1);
	ASSERT_CONTAINS(err.msg, "in use");
	CU_ASSERT_EQUAL(px_loader_unload("tm_base", true, &err), 0);
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_base"));
	CU_ASSERT_EQUAL(run("tm base ping", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_EQUAL(count_problems("tm_base", "force", NULL), 1);
	/* Its user stays; unloading it afterwards must not touch the module
	 * that is gone (AddressSanitizer reports it if it does). */
	CU_ASSERT(px_loader_is_loaded("tm_dependent"));
	CU_ASSERT_EQUAL(px_loader_unload("tm_dependent", false, &err), 0);
	CU_ASSERT_EQUAL(px_loader_list(NULL, 0), 0);
	/* And the module can come back. */
	CU_ASSERT_EQUAL(px_loader_load("tm_base", &err), 0);
	CU_ASSERT_EQUAL(use_count_of("tm_base"), 0);
}

int main(void)
{
	CU_pSuite suite;
	unsigned int failures;

	px_log_init();
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite_with_setup_and_teardown("loader", suite_init, suite_cleanup,
						     test_setup, test_teardown);
	if (!suite ||
	    !CU_add_test(suite, "dependency order and use count", test_dependency_order) ||
	    !CU_add_test(suite, "missing requirement", test_missing_requirement) ||
	    !CU_add_test(suite, "dependency cycle", test_dependency_cycle) ||
	    !CU_add_test(suite, "bad modules are skipped", test_bad_modules_are_skipped) ||
	    !CU_add_test(suite, "single load errors", test_single_load_errors) ||
	    !CU_add_test(suite, "require", test_require) ||
	    !CU_add_test(suite, "noload", test_noload) ||
	    !CU_add_test(suite, "autoload", test_autoload) ||
	    !CU_add_test(suite, "load unload load", test_load_unload_load) ||
	    !CU_add_test(suite, "unload releases commands", test_unload_releases_commands) ||
	    !CU_add_test(suite, "load/unload/reload errors", test_load_unload_reload_errors) ||
	    !CU_add_test(suite, "shutdown and init again", test_shutdown) ||
	    !CU_add_test(suite, "available modules", test_available) ||
	    !CU_add_test(suite, "reload and refused unload", test_reload_and_refused_unload) ||
	    !CU_add_test(suite, "forced unload of a module in use", test_forced_unload)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	px_log_shutdown();
	return failures != 0;
}
