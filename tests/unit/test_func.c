/*
 * Unit tests of the dialplan functions and channel variables of the core
 * (core/func.c, core/func_builtin.c, core/globals.c, the variables of
 * core/channel.c): parsing "NAME(args)" and its errors, the built-in
 * functions (CALLERID, LEN, CUT, IF, GLOBAL, ENV) read and written on a real
 * channel, a module's function registered, used and unregistered, the
 * built-in variables, names matched without '_'/'__', inheritance of "_"
 * and "__" variables into channels requested with a requestor (two levels),
 * and "core show functions" / "core show function".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include <plexus/channel.h>
#include <plexus/func.h>

#include "../../core/channel_commands.h"
#include "../../core/cli_internal.h"
#include "../../core/func_internal.h"

/* A technology whose request makes a channel named Test/<dest>. */
static px_channel *tech_request(const char *dest, px_channel *requestor, int *cause);
static int tech_ok(px_channel *ch)
{
	return 0;
}
static int tech_call(px_channel *ch, int timeout_ms)
{
	return 0;
}
static const struct px_channel_tech test_tech = {
	.type = "Test",
	.description = "Channels of the function tests",
	.request = tech_request,
	.call = tech_call,
	.answer = tech_ok,
	.hangup = tech_ok,
};

static px_channel *tech_request(const char *dest, px_channel *requestor, int *cause)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "Test/%s", dest);
	return px_channel_alloc(&test_tech, prefix, NULL, NULL);
}

static px_channel *new_channel(void)
{
	px_channel *ch = px_channel_alloc(&test_tech, "Test/1001", NULL, NULL);

	px_channel_set_caller(ch, "1001", "Alice");
	px_channel_set_dialplan(ch, "default", "1002");
	return ch;
}

static void end_channel(px_channel *ch)
{
	px_channel_hangup(ch, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(ch);
}

/* Read expr on ch; the value, or "ERROR: message". */
static const char *rd(px_channel *ch, const char *expr)
{
	static char buf[512];
	px_err err = {""};

	if (px_func_read(ch, expr, buf, sizeof(buf), &err) < 0)
		snprintf(buf, sizeof(buf), "ERROR: %s", err.msg);
	return buf;
}

static void test_parse(void)
{
	char name[PX_FUNC_NAME_MAX];
	const char *args;
	size_t len;
	px_err err = {""};

	CU_ASSERT_EQUAL(px_func_parse("CALLERID(num)", name, sizeof(name), &args, &len, &err), 0);
	CU_ASSERT_STRING_EQUAL(name, "CALLERID");
	CU_ASSERT_EQUAL(len, 3);
	CU_ASSERT_EQUAL(strncmp(args, "num", len), 0);
	CU_ASSERT_EQUAL(px_func_parse("IF(LEN(x)?a:b)", name, sizeof(name), &args, &len, &err), 0);
	CU_ASSERT_STRING_EQUAL(name, "IF");
	CU_ASSERT_EQUAL(strncmp(args, "LEN(x)?a:b", len), 0);
	CU_ASSERT_EQUAL(len, strlen("LEN(x)?a:b"));
	CU_ASSERT_EQUAL(px_func_parse("LEN()", name, sizeof(name), &args, &len, &err), 0);
	CU_ASSERT_EQUAL(len, 0);

	CU_ASSERT_EQUAL(px_func_parse("LEN(x", name, sizeof(name), &args, &len, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "missing ')'"));
	CU_ASSERT_EQUAL(px_func_parse("(x)", name, sizeof(name), &args, &len, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no function name"));
	CU_ASSERT_EQUAL(px_func_parse("LEN(x)y", name, sizeof(name), &args, &len, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "text after"));
	CU_ASSERT_EQUAL(px_func_parse("A B(x)", name, sizeof(name), &args, &len, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a function name"));
	CU_ASSERT_EQUAL(px_func_parse("PLAIN", name, sizeof(name), &args, &len, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no '('"));
	CU_ASSERT_STRING_EQUAL(rd(NULL, "NOSUCH(x)"), "ERROR: no such function 'NOSUCH'");
}

static void test_builtins(void)
{
	px_channel *ch = new_channel();
	char num[64], name[64];
	px_err err = {""};

	CU_ASSERT_STRING_EQUAL(rd(ch, "CALLERID(num)"), "1001");
	CU_ASSERT_STRING_EQUAL(rd(ch, "callerid(name)"), "Alice");
	CU_ASSERT_STRING_EQUAL(rd(ch, "CALLERID(all)"), "\"Alice\" <1001>");
	CU_ASSERT_STRING_EQUAL(rd(ch, "CALLERID(bogus)"),
			       "ERROR: CALLERID: unknown field 'bogus' (num, name or all)");
	CU_ASSERT_STRING_EQUAL(rd(NULL, "CALLERID(num)"), "ERROR: CALLERID needs a channel");
	CU_ASSERT_EQUAL(px_func_write(ch, "CALLERID(name)", "Bob", &err), 0);
	CU_ASSERT_EQUAL(px_func_write(ch, "CALLERID(num)", "2002", &err), 0);
	px_channel_get_caller(ch, num, sizeof(num), name, sizeof(name));
	CU_ASSERT_STRING_EQUAL(num, "2002");
	CU_ASSERT_STRING_EQUAL(name, "Bob");
	CU_ASSERT_EQUAL(px_func_write(ch, "CALLERID(all)", "\"Carol C\" <3003>", &err), 0);
	CU_ASSERT_STRING_EQUAL(rd(ch, "CALLERID(all)"), "\"Carol C\" <3003>");
	CU_ASSERT_EQUAL(px_func_write(ch, "CALLERID(all)", "4004", &err), 0);
	CU_ASSERT_STRING_EQUAL(rd(ch, "CALLERID(all)"), "4004");

	CU_ASSERT_STRING_EQUAL(rd(ch, "LEN(hello)"), "5");
	CU_ASSERT_STRING_EQUAL(rd(ch, "LEN()"), "0");
	CU_ASSERT_EQUAL(px_func_write(ch, "LEN(x)", "1", &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot be written"));

	px_channel_var_set(ch, "LIST", "a,b,c,d,e");
	CU_ASSERT_STRING_EQUAL(rd(ch, "CUT(LIST,\\,,2)"), "b");
	CU_ASSERT_STRING_EQUAL(rd(ch, "CUT(LIST,\",\",2-3)"), "b,c");
	CU_ASSERT_STRING_EQUAL(rd(ch, "CUT(LIST,\",\",4-)"), "d,e");
	CU_ASSERT_STRING_EQUAL(rd(ch, "CUT(LIST,\",\",-2)"), "a,b");
	CU_ASSERT_STRING_EQUAL(rd(ch, "CUT(LIST,\",\",1&3&5)"), "a,c,e");
	px_channel_var_set(ch, "PHONE", "555-12-34");
	CU_ASSERT_STRING_EQUAL(rd(ch, "CUT(PHONE,,2)"), "12");
	CU_ASSERT_STRING_EQUAL(rd(ch, "CUT(PHONE,-,9)"), "");
	CU_ASSERT_STRING_EQUAL(rd(ch, "CUT(PHONE,-,x)"),
			       "ERROR: CUT: bad range 'PHONE,-,x' (use 2, 2-4, 2-, -3 or 1&3)");
	CU_ASSERT_STRING_EQUAL(rd(ch, "CUT(PHONE)"),
			       "ERROR: CUT: syntax is CUT(varname,char-delim,range-spec)");

	CU_ASSERT_STRING_EQUAL(rd(ch, "IF(1?yes:no)"), "yes");
	CU_ASSERT_STRING_EQUAL(rd(ch, "IF(0?yes:no)"), "no");
	CU_ASSERT_STRING_EQUAL(rd(ch, "IF(?yes:no)"), "no");
	CU_ASSERT_STRING_EQUAL(rd(ch, "IF(abc?yes:no)"), "yes");
	CU_ASSERT_STRING_EQUAL(rd(ch, "IF(0?yes)"), "");
	CU_ASSERT_STRING_EQUAL(rd(ch, "IF(1)"),
			       "ERROR: IF: syntax is IF(<expr>?[<true>][:<false>])");

	CU_ASSERT_STRING_EQUAL(rd(ch, "GLOBAL(G)"), "");
	CU_ASSERT_EQUAL(px_func_write(ch, "GLOBAL(G)", "gv", &err), 0);
	CU_ASSERT_STRING_EQUAL(rd(NULL, "GLOBAL(G)"), "gv");
	CU_ASSERT_STRING_EQUAL(rd(ch, "CUT(G,,1)"), "gv"); /* a global when the channel has none */

	setenv("PX_TEST_ENV", "from env", 1);
	CU_ASSERT_STRING_EQUAL(rd(NULL, "ENV(PX_TEST_ENV)"), "from env");
	CU_ASSERT_STRING_EQUAL(rd(NULL, "ENV(PX_TEST_NOT_SET)"), "");
	CU_ASSERT_EQUAL(px_func_write(NULL, "ENV(PX_TEST_ENV)", "x", &err), -1);
	end_channel(ch);
}

static int ext_read(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	if (!strcmp(args, "fail"))
		return px_err_set(err, "EXT: asked to fail");
	snprintf(buf, size, "ext:%s", args);
	return 0;
}

static const struct px_func ext_func = {
	.name = "EXT", .synopsis = "A test function", .syntax = "EXT(x)", .read = ext_read};

static void test_register(void)
{
	px_err err = {""};
	static const struct px_func bad = {.name = "BAD NAME", .synopsis = "x", .read = ext_read};
	static const struct px_func dup = {.name = "len", .synopsis = "x", .read = ext_read};

	CU_ASSERT_EQUAL(px_func_register(NULL, &ext_func, &err), 0);
	CU_ASSERT_TRUE(px_func_exists("ext"));
	CU_ASSERT_STRING_EQUAL(rd(NULL, "EXT(a,b)"), "ext:a,b");
	CU_ASSERT_STRING_EQUAL(rd(NULL, "EXT(fail)"), "ERROR: EXT: asked to fail");
	CU_ASSERT_EQUAL(px_func_register(NULL, &dup, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "already registered"));
	CU_ASSERT_EQUAL(px_func_register(NULL, &bad, &err), -1);
	px_func_unregister(&ext_func);
	CU_ASSERT_FALSE(px_func_exists("EXT"));
	CU_ASSERT_STRING_EQUAL(rd(NULL, "EXT(a)"), "ERROR: no such function 'EXT'");
}

static void test_builtin_vars(void)
{
	px_channel *ch = new_channel();
	char buf[128];

	CU_ASSERT_EQUAL(px_channel_var_get(ch, "CHANNEL", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, px_channel_name(ch));
	CU_ASSERT_EQUAL(px_channel_var_get(ch, "UNIQUEID", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, px_channel_uniqueid(ch));
	CU_ASSERT_EQUAL(px_channel_var_get(ch, "CONTEXT", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "default");
	CU_ASSERT_EQUAL(px_channel_var_get(ch, "EXTEN", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "1002");
	CU_ASSERT_EQUAL(px_channel_var_get(ch, "HANGUPCAUSE", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "0");
	px_channel_set_hangup_cause(ch, PX_CAUSE_USER_BUSY);
	CU_ASSERT_EQUAL(px_channel_var_get(ch, "HANGUPCAUSE", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "17");
	CU_ASSERT_TRUE(px_channel_var_is_builtin("EXTEN"));
	CU_ASSERT_FALSE(px_channel_var_is_builtin("DIALSTATUS"));

	/* _NAME and __NAME are NAME for reads and writes. */
	px_channel_var_set(ch, "_ONE", "1");
	CU_ASSERT_EQUAL(px_channel_var_get(ch, "ONE", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "1");
	px_channel_var_set(ch, "ONE", "one");
	CU_ASSERT_EQUAL(px_channel_var_get(ch, "__ONE", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "one");
	px_channel_var_set(ch, "__ONE", NULL);
	CU_ASSERT_EQUAL(px_channel_var_get(ch, "ONE", buf, sizeof(buf)), -1);
	end_channel(ch);
}

/* _VAR reaches the dialled channel as VAR (one level); __VAR keeps its
 * prefix and reaches every level; plain variables stay. */
static void test_inheritance(void)
{
	px_channel *a = new_channel(), *b, *c;
	char buf[64];
	int cause = 0;

	px_channel_var_set(a, "_ONCE", "o");
	px_channel_var_set(a, "__ALWAYS", "a");
	px_channel_var_set(a, "LOCAL", "l");
	b = px_channel_request("Test", "1002", a, &cause);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(px_channel_var_get(b, "ONCE", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "o");
	CU_ASSERT_EQUAL(px_channel_var_get(b, "ALWAYS", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "a");
	CU_ASSERT_EQUAL(px_channel_var_get(b, "LOCAL", buf, sizeof(buf)), -1);

	c = px_channel_request("Test", "1003", b, &cause);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(px_channel_var_get(c, "ONCE", buf, sizeof(buf)), -1);
	CU_ASSERT_EQUAL(px_channel_var_get(c, "ALWAYS", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "a");
	/* Without a requestor nothing is inherited. */
	px_channel *d = px_channel_request("Test", "1004", NULL, &cause);
	CU_ASSERT_EQUAL(px_channel_var_get(d, "ALWAYS", buf, sizeof(buf)), -1);
	end_channel(d);
	end_channel(c);
	end_channel(b);
	end_channel(a);
}

static void test_commands(void)
{
	char *out = NULL;

	CU_ASSERT_EQUAL(px_cli_run_capture("core show functions", &out), PX_CLI_SUCCESS);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "CALLERID"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "CUT(varname,char-delim,range-spec)"));
	free(out);
	CU_ASSERT_EQUAL(px_cli_run_capture("core show functions like C", &out), PX_CLI_SUCCESS);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "CUT"));
	CU_ASSERT_PTR_NULL(strstr(out, "LEN("));
	free(out);
	CU_ASSERT_EQUAL(px_cli_run_capture("core show function GLOBAL", &out), PX_CLI_SUCCESS);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "read/write"));
	free(out);
	CU_ASSERT_EQUAL(px_cli_run_capture("core show function NOPE", &out), PX_CLI_FAILURE);
	free(out);
}

static int suite_init(void)
{
	px_err err = {""};

	if (px_channel_tech_register(NULL, &test_tech, &err) < 0 ||
	    px_func_builtin_register(&err) < 0 || px_channel_commands_register(&err) < 0) {
		fprintf(stderr, "suite init: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int suite_cleanup(void)
{
	px_channel_commands_unregister();
	px_func_builtin_unregister();
	px_channel_tech_unregister(&test_tech);
	px_cli_registry_shutdown();
	return 0;
}

int main(void)
{
	CU_pSuite s;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("func", suite_init, suite_cleanup);
	CU_add_test(s, "parsing NAME(args)", test_parse);
	CU_add_test(s, "built-in functions", test_builtins);
	CU_add_test(s, "a registered function", test_register);
	CU_add_test(s, "built-in variables, '_' names", test_builtin_vars);
	CU_add_test(s, "inheritance into dialled channels", test_inheritance);
	CU_add_test(s, "core show functions / function", test_commands);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
