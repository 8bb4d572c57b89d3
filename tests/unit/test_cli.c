/*
 * Unit tests of the console command registry (core/cli.c) and of the core
 * commands (core/core_commands.c), run in-process through
 * px_cli_run_capture: splitting command lines into words, registration and
 * its conflicts, "a|b" alternatives, longest-match dispatch, usage on
 * PX_CLI_SHOWUSAGE, tab completion (command words, alternatives, a
 * command's own completer as in the tm_cli test module, help's completion,
 * sorted and without duplicates), help, and the core commands: version,
 * uptime, settings, module show/load/unload, verbosity, logger levels and
 * core reload with a broken and then a good plexus.conf. The suite sets up
 * the daemon state those commands read (px_daemon_init on a temporary
 * directory with its own plexus.conf) and loads tm_cli through the loader.
 */
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <plexus/cli.h>
#include <plexus/core.h>
#include <plexus/log.h>
#include <plexus/module.h>

#include "config.h"

#include "../../core/cli_internal.h"
#include "../../core/daemon.h"
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

/* Exact string comparison that prints both sides on failure; NULL fails. */
#define ASSERT_TEXT(actual, expected)                                                              \
	do {                                                                                       \
		const char *a_ = (actual), *e_ = (expected);                                       \
		bool same_ = a_ && !strcmp(a_, e_);                                                \
		if (!same_)                                                                        \
			fprintf(stderr, "\n  expected \"%s\", got \"%s\"\n", e_,                   \
				a_ ? a_ : "(null)");                                               \
		CU_ASSERT(same_);                                                                  \
	} while (0)

static char tmpdir[] = "/tmp/plexus-test-cli-XXXXXX";
static char conf_path[PATH_MAX];
static time_t suite_start;

/* ---- a test command table ---- */

/* What the last test handler saw. */
static int last_argc;
static char last_argv[8][64];

static void record(int argc, char **argv)
{
	last_argc = argc;
	for (int i = 0; i < argc && i < 8; i++)
		snprintf(last_argv[i], sizeof(last_argv[i]), "%s", argv[i]);
}

static enum px_cli_status tx_show(px_cli *cli, int argc, char **argv)
{
	record(argc, argv);
	px_cli_printf(cli, "show\n");
	return PX_CLI_SUCCESS;
}

static enum px_cli_status tx_show_all(px_cli *cli, int argc, char **argv)
{
	record(argc, argv);
	px_cli_printf(cli, "show all\n");
	return PX_CLI_SUCCESS;
}

static enum px_cli_status tx_alt(px_cli *cli, int argc, char **argv)
{
	record(argc, argv);
	px_cli_printf(cli, "alt\n");
	return PX_CLI_SUCCESS;
}

static enum px_cli_status tx_usage(px_cli *cli, int argc, char **argv)
{
	record(argc, argv);
	px_cli_printf(cli, "before usage\n");
	return PX_CLI_SHOWUSAGE;
}

static enum px_cli_status tx_fail(px_cli *cli, int argc, char **argv)
{
	record(argc, argv);
	px_cli_printf(cli, "it failed\n");
	return PX_CLI_FAILURE;
}

static void tx_complete(px_cli_completion *c, int argc, char **argv, int pos)
{
	/* Duplicates on purpose: the list must come out without them. */
	px_cli_complete_add(c, "zeta");
	px_cli_complete_add(c, "alpha");
	px_cli_complete_add(c, "zeta");
	px_cli_complete_add(c, "Alpine");
}

static const struct px_cli_command tx_commands[] = {
	{"tx show", "Show things", "Usage: tx show [what]", tx_show, NULL, PX_ROLE_MONITOR},
	{"tx show all", "Show all things", "Usage: tx show all", tx_show_all, tx_complete,
	 PX_ROLE_MONITOR},
	{"tx alt|other", "Either word", "Usage: tx alt|other", tx_alt, NULL, PX_ROLE_ADMIN},
	{"tx usage", "Always wants usage", "Usage: tx usage <something>\n       More text.",
	 tx_usage, NULL, PX_ROLE_ADMIN},
	{"tx fail", "Always fails", "Usage: tx fail", tx_fail, NULL, PX_ROLE_ADMIN},
};
#define NTX (sizeof(tx_commands) / sizeof(tx_commands[0]))

/* ---- helpers ---- */

/* Run a command; returns its status, and its output in *out (to free). */
static enum px_cli_status run(const char *line, char **out)
{
	char *o = NULL;
	enum px_cli_status st = px_cli_run_capture(line, &o);

	CU_ASSERT_PTR_NOT_NULL(o);
	if (out)
		*out = o;
	else
		free(o);
	return st;
}

/* Completion of line, compared with expected ("a\nb"). */
static void check_complete(const char *line, const char *expected)
{
	char *got = px_cli_complete(NULL, line);

	if (!got || strcmp(got, expected))
		fprintf(stderr, "\n  completing \"%s\": expected \"%s\", got \"%s\"\n", line,
			expected, got ? got : "(null)");
	CU_ASSERT_PTR_NOT_NULL(got);
	if (got)
		CU_ASSERT_STRING_EQUAL(got, expected);
	free(got);
}

static size_t count_char(const char *s, char ch)
{
	size_t n = 0;

	for (; s && *s; s++)
		n += *s == ch;
	return n;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* Registering cmds must fail with a message; if it wrongly succeeds, the
 * table is unregistered again so that later tests see the usual commands. */
static void expect_register_fails(const struct px_cli_command *cmds, size_t n, const char *why)
{
	px_err err = {""};
	int rc = px_cli_register(NULL, cmds, n, &err);

	CU_ASSERT_EQUAL(rc, -1);
	if (rc == 0) {
		px_cli_unregister(cmds, n);
		return;
	}
	if (why)
		ASSERT_CONTAINS(err.msg, why);
	else
		CU_ASSERT_NOT_EQUAL(err.msg[0], '\0');
}

/* ---- suite set-up ---- */

static const char good_conf_one[] = "; first plexus.conf of test_cli\n"
				    "[options]\n"
				    "module_dir = /nonexistent/modules-one\n"
				    "state_dir = state\n"
				    "[console]\n"
				    "mode = 0600\n";

static int suite_init(void)
{
	struct px_settings s;
	px_err err = {""};

	suite_start = time(NULL);
	if (!mkdtemp(tmpdir))
		return -1;
	if (snprintf(conf_path, sizeof(conf_path), "%s/plexus.conf", tmpdir) >=
	    (int)sizeof(conf_path))
		return -1;
	if (write_file(conf_path, good_conf_one) != 0)
		return -1;
	px_daemon_init(tmpdir, conf_path);
	if (px_settings_load(conf_path, &s, &err) != 0) {
		fprintf(stderr, "test_cli: %s\n", err.msg);
		return -1;
	}
	px_daemon_set_settings(&s);
	if (px_core_commands_register(&err) != 0 || px_cli_register(NULL, tx_commands, NTX, &err)) {
		fprintf(stderr, "test_cli: %s\n", err.msg);
		return -1;
	}
	if (px_loader_init(PX_TEST_MODULEDIR, &err) != 0 || px_loader_load("tm_cli", &err) != 0) {
		fprintf(stderr, "test_cli: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	return remove(path);
}

static int suite_cleanup(void)
{
	px_loader_shutdown();
	px_cli_unregister(tx_commands, NTX);
	px_core_commands_unregister();
	px_cli_registry_shutdown();
	px_daemon_shutdown();
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- px_cli_split ---- */

static void test_split(void)
{
	char **argv = NULL;
	int argc;

	argc = px_cli_split("  core   show\tversion  ", &argv);
	CU_ASSERT_EQUAL_FATAL(argc, 3);
	CU_ASSERT_STRING_EQUAL(argv[0], "core");
	CU_ASSERT_STRING_EQUAL(argv[1], "show");
	CU_ASSERT_STRING_EQUAL(argv[2], "version");
	CU_ASSERT_PTR_NULL(argv[3]);
	px_cli_free_words(argc, argv);

	/* Double quotes group blanks; the quotes themselves go. */
	argc = px_cli_split("database put fam key \"two words\"", &argv);
	CU_ASSERT_EQUAL_FATAL(argc, 5);
	CU_ASSERT_STRING_EQUAL(argv[4], "two words");
	px_cli_free_words(argc, argv);

	/* Quotes may sit inside a word; "" is an empty word. */
	argc = px_cli_split("a\"b c\"d \"\" e", &argv);
	CU_ASSERT_EQUAL_FATAL(argc, 3);
	CU_ASSERT_STRING_EQUAL(argv[0], "ab cd");
	CU_ASSERT_STRING_EQUAL(argv[1], "");
	CU_ASSERT_STRING_EQUAL(argv[2], "e");
	px_cli_free_words(argc, argv);

	/* Backslash escapes a blank, a quote and itself, inside quotes too. */
	argc = px_cli_split("one\\ word \\\"q\\\" \"in \\\"side\\\\\" x\\", &argv);
	CU_ASSERT_EQUAL_FATAL(argc, 4);
	CU_ASSERT_STRING_EQUAL(argv[0], "one word");
	CU_ASSERT_STRING_EQUAL(argv[1], "\"q\"");
	CU_ASSERT_STRING_EQUAL(argv[2], "in \"side\\");
	/* A trailing backslash has nothing to escape and stays. */
	CU_ASSERT_STRING_EQUAL(argv[3], "x\\");
	px_cli_free_words(argc, argv);

	/* Unterminated quotes. */
	argv = NULL;
	CU_ASSERT_EQUAL(px_cli_split("say \"hello", &argv), -1);
	CU_ASSERT_EQUAL(px_cli_split("\"", &argv), -1);
	CU_ASSERT_EQUAL(px_cli_split("a \"b\" \"c", &argv), -1);
	CU_ASSERT_EQUAL(px_cli_split("escaped \\\"quote\" open", &argv), -1);

	/* Empty and blank lines: no words, and a terminated array. */
	argc = px_cli_split("", &argv);
	CU_ASSERT_EQUAL_FATAL(argc, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(argv);
	CU_ASSERT_PTR_NULL(argv[0]);
	px_cli_free_words(argc, argv);
	argc = px_cli_split(" \t \n ", &argv);
	CU_ASSERT_EQUAL_FATAL(argc, 0);
	CU_ASSERT_PTR_NULL(argv[0]);
	px_cli_free_words(argc, argv);

	/* Many words (the array grows). */
	argc = px_cli_split("a b c d e f g h i j k l m n o p q r s t", &argv);
	CU_ASSERT_EQUAL_FATAL(argc, 20);
	CU_ASSERT_STRING_EQUAL(argv[19], "t");
	CU_ASSERT_PTR_NULL(argv[20]);
	px_cli_free_words(argc, argv);
}

/* ---- registration and dispatch ---- */

static enum px_cli_status other_handler(px_cli *cli, int argc, char **argv)
{
	px_cli_printf(cli, "other handler\n");
	return PX_CLI_SUCCESS;
}

static void test_register_conflicts(void)
{
	static const struct px_cli_command same[] = {
		{"tx show", "Again", "Usage: tx show", other_handler, NULL, PX_ROLE_MONITOR},
	};
	static const struct px_cli_command same_case[] = {
		{"TX  Show", "Again", "Usage: TX Show", other_handler, NULL, PX_ROLE_ADMIN},
	};
	/* The first is new, the second conflicts: neither may stay. */
	static const struct px_cli_command partial[] = {
		{"ty new", "New", "Usage: ty new", other_handler, NULL, PX_ROLE_ADMIN},
		{"tx fail", "Conflicts", "Usage: tx fail", other_handler, NULL, PX_ROLE_ADMIN},
	};
	static const struct px_cli_command incomplete[] = {
		{"ty no handler", "No handler", "Usage: ty no handler", NULL, NULL, PX_ROLE_ADMIN},
		{"ty no summary", NULL, "Usage: ty no summary", other_handler, NULL, PX_ROLE_ADMIN},
		{"ty no usage", "No usage", NULL, other_handler, NULL, PX_ROLE_ADMIN},
		{"", "No words", "Usage:", other_handler, NULL, PX_ROLE_ADMIN},
		{NULL, "No words", "Usage:", other_handler, NULL, PX_ROLE_ADMIN},
		{"ty \"open", "Bad words", "Usage:", other_handler, NULL, PX_ROLE_ADMIN},
	};
	px_err err = {""};
	char *out = NULL;

	CU_ASSERT_EQUAL(px_cli_register(NULL, same, 1, &err), -1);
	ASSERT_CONTAINS(err.msg, "tx show");
	ASSERT_CONTAINS(err.msg, "already registered");
	/* "TX  Show" splits to the same words, in another case and spacing. */
	expect_register_fails(same_case, 1, "already registered");
	/* The table registered first still answers. */
	CU_ASSERT_EQUAL(run("tx show", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "show\n");
	free(out);

	expect_register_fails(partial, 2, "tx fail");
	CU_ASSERT_EQUAL(run("ty new", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_EQUAL(run("tx fail", &out), PX_CLI_FAILURE);
	ASSERT_TEXT(out, "it failed\n");
	free(out);

	for (size_t i = 0; i < sizeof(incomplete) / sizeof(incomplete[0]); i++)
		expect_register_fails(&incomplete[i], 1, NULL);
	CU_ASSERT_EQUAL(run("ty no handler", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_EQUAL(run("ty no summary", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_EQUAL(run("ty no usage", NULL), PX_CLI_NOCOMMAND);

	/* Unregistered, the words are free again. */
	CU_ASSERT_EQUAL(px_cli_register(NULL, partial, 1, &err), 0);
	CU_ASSERT_EQUAL(run("ty new", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "other handler\n");
	free(out);
	px_cli_unregister(partial, 1);
	CU_ASSERT_EQUAL(run("ty new", NULL), PX_CLI_NOCOMMAND);
	/* Unregistering what is not registered is harmless. */
	px_cli_unregister(partial, 2);
	CU_ASSERT_EQUAL(run("tx fail", NULL), PX_CLI_FAILURE);
}

static void test_register_overlapping_alternatives(void)
{
	/* "tx alt" is already taken by "tx alt|other": dispatch of "tx alt"
	 * would otherwise depend on registration order. */
	static const struct px_cli_command overlap[] = {
		{"tx alt", "Overlaps tx alt|other", "Usage: tx alt", other_handler, NULL,
		 PX_ROLE_ADMIN},
	};
	static const struct px_cli_command overlap2[] = {
		{"tx other|third", "Overlaps tx alt|other", "Usage: tx other|third", other_handler,
		 NULL, PX_ROLE_ADMIN},
	};
	px_err err = {""};
	char *out = NULL;
	int rc1, rc2;

	rc1 = px_cli_register(NULL, overlap, 1, &err);
	rc2 = px_cli_register(NULL, overlap2, 1, &err);
	CU_ASSERT_EQUAL(rc1, -1);
	CU_ASSERT_EQUAL(rc2, -1);
	CU_ASSERT_EQUAL(run("tx alt", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "alt\n");
	free(out);
	CU_ASSERT_EQUAL(run("tx other", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "alt\n");
	free(out);
	if (rc1 == 0)
		px_cli_unregister(overlap, 1);
	if (rc2 == 0)
		px_cli_unregister(overlap2, 1);
}

static void test_alternatives(void)
{
	char *out = NULL;

	CU_ASSERT_EQUAL(run("tx alt", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "alt\n");
	free(out);
	/* The handler sees the word as typed. */
	CU_ASSERT_EQUAL(run("tx OTHER arg", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "alt\n");
	free(out);
	CU_ASSERT_EQUAL(last_argc, 3);
	CU_ASSERT_STRING_EQUAL(last_argv[1], "OTHER");
	CU_ASSERT_STRING_EQUAL(last_argv[2], "arg");
	/* Whole words only: no prefix, no concatenation. */
	CU_ASSERT_EQUAL(run("tx al", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_EQUAL(run("tx alt|other", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_EQUAL(run("tx altother", NULL), PX_CLI_NOCOMMAND);
	CU_ASSERT_EQUAL(run("tx", NULL), PX_CLI_NOCOMMAND);
	/* Core: "core set verbose|debug". */
	CU_ASSERT_EQUAL(run("core set debug 0", NULL), PX_CLI_SUCCESS);
	CU_ASSERT_EQUAL(run("core set silly 0", NULL), PX_CLI_NOCOMMAND);
}

static void test_longest_match(void)
{
	char *out = NULL;

	CU_ASSERT_EQUAL(run("tx show all", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "show all\n");
	free(out);
	CU_ASSERT_EQUAL(last_argc, 3);
	CU_ASSERT_EQUAL(run("tx show all extra words", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "show all\n");
	free(out);
	CU_ASSERT_EQUAL(last_argc, 5);
	CU_ASSERT_STRING_EQUAL(last_argv[4], "words");
	/* Words are case-insensitive. */
	CU_ASSERT_EQUAL(run("TX Show ALL", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "show all\n");
	free(out);
	/* Fewer words, or another third word: the shorter command. */
	CU_ASSERT_EQUAL(run("tx show", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "show\n");
	free(out);
	CU_ASSERT_EQUAL(last_argc, 2);
	CU_ASSERT_EQUAL(run("tx show some", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "show\n");
	free(out);
	CU_ASSERT_EQUAL(last_argc, 3);
	CU_ASSERT_STRING_EQUAL(last_argv[2], "some");
	CU_ASSERT_EQUAL(run("tx show al", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "show\n");
	free(out);
	/* A quoted word is one word: "show all" is not "show" "all". */
	CU_ASSERT_EQUAL(run("tx \"show all\"", NULL), PX_CLI_NOCOMMAND);
}

static void test_status_and_usage(void)
{
	char *out = NULL;

	CU_ASSERT_EQUAL(run("tx usage", &out), PX_CLI_SHOWUSAGE);
	/* What the handler printed, then the whole usage. */
	ASSERT_TEXT(out, "before usage\nUsage: tx usage <something>\n       More text.\n");
	free(out);
	CU_ASSERT_EQUAL(run("tx fail", &out), PX_CLI_FAILURE);
	ASSERT_TEXT(out, "it failed\n");
	free(out);
	/* A core command given the wrong arguments. */
	CU_ASSERT_EQUAL(run("core show version please", &out), PX_CLI_SHOWUSAGE);
	ASSERT_CONTAINS(out, "Usage: core show version");
	free(out);
	CU_ASSERT_EQUAL(run("module unload", &out), PX_CLI_SHOWUSAGE);
	ASSERT_CONTAINS(out, "Usage: module unload [-f]");
	free(out);
	/* An unterminated quote is reported, and runs nothing. */
	last_argc = -1;
	CU_ASSERT_EQUAL(run("tx show \"all", &out), PX_CLI_SHOWUSAGE);
	ASSERT_CONTAINS(out, "Unterminated quote");
	free(out);
	CU_ASSERT_EQUAL(last_argc, -1);
	/* An empty line is no command, and no error. */
	CU_ASSERT_EQUAL(run("", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "");
	free(out);
	CU_ASSERT_EQUAL(run("   ", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "");
	free(out);
	CU_ASSERT_EQUAL(run("no such thing", &out), PX_CLI_NOCOMMAND);
	ASSERT_CONTAINS(out, "No such command 'no such thing'");
	ASSERT_CONTAINS(out, "help no");
	free(out);
}

/* ---- completion ---- */

static void test_complete(void)
{
	char *out;

	/* First word. */
	check_complete("", "core\nhelp\nlogger\nmodule\ntm\ntx");
	check_complete("mo", "module");
	check_complete("l", "logger");
	check_complete("zz", "");
	/* A middle word; the four "core show" commands give "show" once. */
	check_complete("core s", "set\nshow\nstop");
	check_complete("CORE SH", "show");
	check_complete("logger s", "set\nshow");
	/* After a trailing blank: every next word, sorted, without duplicates. */
	check_complete("core ", "reload\nset\nshow\nstop");
	check_complete("core show ", "codecs\nsettings\nthreads\ntranslation\nuptime\nversion");
	check_complete("tx ", "alt\nfail\nother\nshow\nusage");
	check_complete("tx  show  ", "all");
	/* Alternatives are offered one by one. */
	check_complete("core stop ", "gracefully\nnow");
	check_complete("core set ", "debug\nverbose");
	check_complete("core set d", "debug");
	check_complete("tx o", "other");
	/* A command's own completer: tm_cli's colours, core's levels. */
	check_complete("tm cli color gr", "green\ngrey");
	check_complete("tm cli color ", "green\ngrey\nred");
	check_complete("tm cli color r", "red");
	check_complete("core set verbose ", "1\n10\n2\n3\n4\n5\noff");
	check_complete("core set debug 1", "1\n10");
	check_complete("logger set level ", "debug\nerror\nnotice\nverbose\nwarning");
	/* A completer's duplicates are dropped, and the prefix filters them. */
	check_complete("tx show all ", "Alpine\nalpha\nzeta");
	check_complete("tx show all al", "Alpine\nalpha");
	/* Nothing beyond a command without a completer. */
	check_complete("core show version ", "");
	check_complete("tm cli hello ", "");
	/* help completes command words as if "help" were not typed. */
	check_complete("help core s", "set\nshow\nstop");
	check_complete("help ", "core\nhelp\nlogger\nmodule\ntm\ntx");
	check_complete("help tm cli ", "color\nflood\nhello");
	check_complete("help core set ", "debug\nverbose");
	/* Modules: loaded ones to unload, available ones to load. */
	check_complete("module unload ", "-f\ntm_cli");
	check_complete("module unload -f tm", "tm_cli");
	check_complete("module reload t", "tm_cli");
	check_complete("module load tm_ba", "tm_bad_abi\ntm_base");
	check_complete("module load tm_cl", "");
	/* An unterminated quote completes nothing. */
	check_complete("core \"s", "");

	/* Every list is sorted and has no duplicate. */
	out = px_cli_complete(NULL, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	for (char *p = out, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
		char *next = nl + 1, *end = strchr(next, '\n');
		size_t len = (size_t)(nl - p);
		size_t nlen = end ? (size_t)(end - next) : strlen(next);
		int c = strncmp(p, next, len < nlen ? len : nlen);
		CU_ASSERT(c < 0 || (c == 0 && len < nlen));
	}
	free(out);
}

/* ---- help ---- */

static void test_help(void)
{
	char *out = NULL;

	CU_ASSERT_EQUAL(run("help", &out), PX_CLI_SUCCESS);
	/* One line per command: its words, then its summary. */
	ASSERT_CONTAINS(out, "core show version");
	ASSERT_CONTAINS(out, "Display version info");
	ASSERT_CONTAINS(out, "module load");
	ASSERT_CONTAINS(out, "tm cli hello");
	ASSERT_CONTAINS(out, "Say hello");
	for (size_t i = 0; i < NTX; i++) {
		char line[256];
		snprintf(line, sizeof(line), "%-36s %s\n", tx_commands[i].words,
			 tx_commands[i].summary);
		ASSERT_CONTAINS(out, line);
	}
	CU_ASSERT(strstr(out, "core reload") < strstr(out, "module load"));
	free(out);

	/* A prefix lists the commands under it, and only those. */
	CU_ASSERT_EQUAL(run("help tx", &out), PX_CLI_SUCCESS);
	CU_ASSERT_EQUAL(count_char(out, '\n'), NTX);
	ASSERT_CONTAINS(out, "Either word");
	free(out);
	CU_ASSERT_EQUAL(run("help core show", &out), PX_CLI_SUCCESS);
	CU_ASSERT_EQUAL(count_char(out, '\n'), 6);
	CU_ASSERT_PTR_NULL(strstr(out, "core set verbose"));
	free(out);

	/* A whole command: its usage. */
	CU_ASSERT_EQUAL(run("help module load", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "Usage: module load <module name>\n"
			 "       Loads the named module from the module directory.\n");
	free(out);
	CU_ASSERT_EQUAL(run("help core set debug", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "Usage: core set verbose|debug <level>|off");
	free(out);
	CU_ASSERT_EQUAL(run("help tx show", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "Usage: tx show [what]\n");
	free(out);
	CU_ASSERT_EQUAL(run("help help", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "Usage: help [topic]");
	free(out);

	CU_ASSERT_EQUAL(run("help nosuch", &out), PX_CLI_FAILURE);
	ASSERT_TEXT(out, "No such command 'nosuch'\n");
	free(out);
	CU_ASSERT_EQUAL(run("help core show nosuch", &out), PX_CLI_FAILURE);
	ASSERT_CONTAINS(out, "No such command 'core show nosuch'");
	free(out);
}

/* ---- core commands ---- */

static void test_core_show_version(void)
{
	char expected[128];
	char *out = NULL;

	CU_ASSERT_STRING_EQUAL(px_version(), PACKAGE_VERSION);
	snprintf(expected, sizeof(expected), "Plexus %s (module ABI %d)\n", PACKAGE_VERSION,
		 PX_MODULE_ABI_VERSION);
	CU_ASSERT_EQUAL(run("core show version", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, expected);
	free(out);
}

static void test_core_show_uptime(void)
{
	long up = -1, rl = -1, limit = (long)(time(NULL) - suite_start) + 1;
	char *out = NULL;

	CU_ASSERT_EQUAL(run("core show uptime seconds", &out), PX_CLI_SUCCESS);
	CU_ASSERT_EQUAL(sscanf(out, "System uptime: %ld\nLast reload: %ld\n", &up, &rl), 2);
	CU_ASSERT_EQUAL(count_char(out, '\n'), 2);
	CU_ASSERT(up >= 0 && up <= limit);
	CU_ASSERT(rl >= 0 && rl <= up);
	free(out);

	CU_ASSERT_EQUAL(run("core show uptime", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "System uptime: ");
	ASSERT_CONTAINS(out, "second");
	ASSERT_CONTAINS(out, "Last reload: ");
	free(out);
	CU_ASSERT_EQUAL(run("core show uptime minutes", NULL), PX_CLI_SHOWUSAGE);
}

static void test_module_commands(void)
{
	char *out = NULL;

	CU_ASSERT_EQUAL(run("module show", &out), PX_CLI_SUCCESS);
	CU_ASSERT(!strncmp(out, "Module ", 7));
	ASSERT_CONTAINS(out, "Description");
	ASSERT_CONTAINS(out, "Use Count");
	ASSERT_CONTAINS(out, "tm_cli");
	ASSERT_CONTAINS(out, "test: leaves commands registered");
	ASSERT_CONTAINS(out, "\n1 modules loaded\n");
	CU_ASSERT_EQUAL(count_char(out, '\n'), 3);
	free(out);

	CU_ASSERT_EQUAL(run("module load tm_base", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "Loaded tm_base\n");
	free(out);
	CU_ASSERT_EQUAL(run("module load tm_base", &out), PX_CLI_FAILURE);
	ASSERT_CONTAINS(out, "already loaded");
	free(out);
	CU_ASSERT_EQUAL(run("module load tm_bad_abi", &out), PX_CLI_FAILURE);
	ASSERT_CONTAINS(out, "Unable to load module tm_bad_abi");
	free(out);
	CU_ASSERT_EQUAL(run("module show", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "\n2 modules loaded\n");
	free(out);
	/* "like" takes a substring, or a glob. */
	CU_ASSERT_EQUAL(run("module show like base", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "tm_base");
	CU_ASSERT_PTR_NULL(strstr(out, "tm_cli"));
	ASSERT_CONTAINS(out, "\n1 modules loaded\n");
	free(out);
	CU_ASSERT_EQUAL(run("module show like tm_*", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "\n2 modules loaded\n");
	free(out);
	CU_ASSERT_EQUAL(run("module show like nothing", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "\n0 modules loaded\n");
	free(out);
	CU_ASSERT_EQUAL(run("module show tm_base", NULL), PX_CLI_SHOWUSAGE);

	CU_ASSERT_EQUAL(run("module reload tm_base", &out), PX_CLI_FAILURE);
	ASSERT_CONTAINS(out, "does not support reloading");
	free(out);
	CU_ASSERT_EQUAL(run("module unload tm_base tm_nothing", &out), PX_CLI_FAILURE);
	ASSERT_CONTAINS(out, "Unloaded tm_base\n");
	ASSERT_CONTAINS(out, "Unable to unload tm_nothing");
	free(out);
	CU_ASSERT_FALSE(px_loader_is_loaded("tm_base"));
	CU_ASSERT_EQUAL(run("module show", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "\n1 modules loaded\n");
	free(out);
}

static void test_core_set_levels(void)
{
	int verbose = px_log_get_verbose(), debug = px_log_get_debug();
	char *out = NULL;

	CU_ASSERT_EQUAL(run("core set verbose 3", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "Verbosity is now 3.\n");
	free(out);
	CU_ASSERT_EQUAL(px_log_get_verbose(), 3);
	CU_ASSERT_EQUAL(px_log_get_debug(), debug);
	CU_ASSERT(atomic_load(&px_log_verbose_max) >= 3);

	CU_ASSERT_EQUAL(run("core set debug 2", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "Core debug is now 2.\n");
	free(out);
	CU_ASSERT_EQUAL(px_log_get_debug(), 2);
	CU_ASSERT_EQUAL(px_log_get_verbose(), 3);

	/* Bad levels change nothing. */
	CU_ASSERT_EQUAL(run("core set verbose lots", NULL), PX_CLI_SHOWUSAGE);
	CU_ASSERT_EQUAL(run("core set verbose 101", NULL), PX_CLI_SHOWUSAGE);
	CU_ASSERT_EQUAL(run("core set verbose -1", NULL), PX_CLI_SHOWUSAGE);
	CU_ASSERT_EQUAL(run("core set verbose 3x", NULL), PX_CLI_SHOWUSAGE);
	CU_ASSERT_EQUAL(run("core set verbose", NULL), PX_CLI_SHOWUSAGE);
	CU_ASSERT_EQUAL(px_log_get_verbose(), 3);

	CU_ASSERT_EQUAL(run("core set debug off", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "Core debug is now OFF.\n");
	free(out);
	CU_ASSERT_EQUAL(px_log_get_debug(), 0);
	CU_ASSERT_EQUAL(run("core set verbose off", NULL), PX_CLI_SUCCESS);
	CU_ASSERT_EQUAL(px_log_get_verbose(), 0);
	CU_ASSERT_EQUAL(atomic_load(&px_log_verbose_max), 0);
	px_log_set_levels(verbose, debug);
}

static void test_logger_commands(void)
{
	char *out = NULL;

	/* Console levels need a console. */
	CU_ASSERT_EQUAL(run("logger set level debug", &out), PX_CLI_FAILURE);
	ASSERT_CONTAINS(out, "console");
	free(out);
	CU_ASSERT_EQUAL(run("logger set level debug on", NULL), PX_CLI_FAILURE);
	CU_ASSERT_EQUAL(run("logger set level chatter", &out), PX_CLI_FAILURE);
	ASSERT_CONTAINS(out, "Unknown log level 'chatter'");
	free(out);
	CU_ASSERT_EQUAL(run("logger set level", NULL), PX_CLI_SHOWUSAGE);
	CU_ASSERT_EQUAL(run("logger set level debug maybe", NULL), PX_CLI_SHOWUSAGE);

	CU_ASSERT_EQUAL(run("logger show", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "Verbosity: ");
	ASSERT_CONTAINS(out, "stderr");
	ASSERT_CONTAINS(out, "consoles");
	free(out);
	CU_ASSERT_EQUAL(run("logger show everything", NULL), PX_CLI_SHOWUSAGE);
	CU_ASSERT_EQUAL(run("logger reopen", NULL), PX_CLI_SUCCESS);
}

static void test_core_show_settings(void)
{
	char line[PATH_MAX + 64];
	char *out = NULL;

	CU_ASSERT_EQUAL(run("core show settings", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "/nonexistent/modules-one");
	/* A relative path is taken relative to plexus.conf. */
	snprintf(line, sizeof(line), "%s/state\n", tmpdir);
	ASSERT_CONTAINS(out, line);
	ASSERT_CONTAINS(out, "0600");
	ASSERT_CONTAINS(out, conf_path);
	ASSERT_CONTAINS(out, PACKAGE_VERSION);
	free(out);
	CU_ASSERT_EQUAL(run("core show settings now", NULL), PX_CLI_SHOWUSAGE);
}

static void test_core_reload(void)
{
	const struct px_settings *s;
	char *out = NULL;
	char where[PATH_MAX + 16];

	s = px_daemon_settings();
	CU_ASSERT_STRING_EQUAL_FATAL(s->module_dir, "/nonexistent/modules-one");

	/* A line that is not "key = value" (line 4). */
	CU_ASSERT_EQUAL_FATAL(write_file(conf_path, "[options]\n"
						    "module_dir = /nonexistent/modules-two\n"
						    "state_dir = /nonexistent/state-two\n"
						    "this is not valid\n"),
			      0);
	CU_ASSERT_EQUAL(run("core reload", &out), PX_CLI_FAILURE);
	snprintf(where, sizeof(where), "%s:4", conf_path);
	ASSERT_CONTAINS(out, where);
	ASSERT_CONTAINS(out, "kept");
	free(out);
	s = px_daemon_settings();
	CU_ASSERT_STRING_EQUAL(s->module_dir, "/nonexistent/modules-one");
	CU_ASSERT_EQUAL(s->socket_mode, 0600);

	/* A value out of range (line 3), and an unknown section (line 5). */
	CU_ASSERT_EQUAL_FATAL(write_file(conf_path, "[options]\n"
						    "module_dir = /nonexistent/modules-two\n"
						    "verbose = 1000\n"),
			      0);
	CU_ASSERT_EQUAL(run("core reload", &out), PX_CLI_FAILURE);
	snprintf(where, sizeof(where), "%s:3", conf_path);
	ASSERT_CONTAINS(out, where);
	free(out);
	CU_ASSERT_EQUAL_FATAL(write_file(conf_path, "[options]\n"
						    "module_dir = /nonexistent/modules-two\n"
						    "[console]\n"
						    "mode = 0640\n"
						    "[extras]\n"),
			      0);
	CU_ASSERT_EQUAL(run("core reload", &out), PX_CLI_FAILURE);
	snprintf(where, sizeof(where), "%s:5", conf_path);
	ASSERT_CONTAINS(out, where);
	free(out);
	s = px_daemon_settings();
	CU_ASSERT_STRING_EQUAL(s->module_dir, "/nonexistent/modules-one");
	CU_ASSERT_EQUAL(s->socket_mode, 0600);
	CU_ASSERT_EQUAL(run("core show settings", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "/nonexistent/modules-one");
	CU_ASSERT_PTR_NULL(strstr(out, "modules-two"));
	free(out);

	/* A good file is taken. */
	CU_ASSERT_EQUAL_FATAL(write_file(conf_path, "[options]\n"
						    "module_dir = /nonexistent/modules-two\n"
						    "[console]\n"
						    "mode = 0640\n"),
			      0);
	CU_ASSERT_EQUAL(run("core reload", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "Reload complete.\n");
	free(out);
	s = px_daemon_settings();
	CU_ASSERT_STRING_EQUAL(s->module_dir, "/nonexistent/modules-two");
	CU_ASSERT_EQUAL(s->socket_mode, 0640);
	CU_ASSERT_EQUAL(run("core show settings", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "/nonexistent/modules-two");
	ASSERT_CONTAINS(out, "0640");
	free(out);
	/* "module reload" without names is "core reload". */
	CU_ASSERT_EQUAL(run("module reload", &out), PX_CLI_SUCCESS);
	ASSERT_TEXT(out, "Reload complete.\n");
	free(out);
	CU_ASSERT_EQUAL(run("core reload now", NULL), PX_CLI_SHOWUSAGE);
}

int main(void)
{
	CU_pSuite suite;
	unsigned int failures;

	px_log_init();
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("cli", suite_init, suite_cleanup);
	if (!suite || !CU_add_test(suite, "split", test_split) ||
	    !CU_add_test(suite, "register conflicts", test_register_conflicts) ||
	    !CU_add_test(suite, "register overlapping alternatives",
			 test_register_overlapping_alternatives) ||
	    !CU_add_test(suite, "alternatives", test_alternatives) ||
	    !CU_add_test(suite, "longest match", test_longest_match) ||
	    !CU_add_test(suite, "status and usage", test_status_and_usage) ||
	    !CU_add_test(suite, "complete", test_complete) ||
	    !CU_add_test(suite, "help", test_help) ||
	    !CU_add_test(suite, "core show version", test_core_show_version) ||
	    !CU_add_test(suite, "core show uptime", test_core_show_uptime) ||
	    !CU_add_test(suite, "module commands", test_module_commands) ||
	    !CU_add_test(suite, "core set verbose|debug", test_core_set_levels) ||
	    !CU_add_test(suite, "logger commands", test_logger_commands) ||
	    !CU_add_test(suite, "core show settings", test_core_show_settings) ||
	    !CU_add_test(suite, "core reload", test_core_reload)) {
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
