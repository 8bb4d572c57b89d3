/*
 * Unit tests of the configuration reader (core/config.c): sections, keys,
 * arrows, comments and escapes; templates, multi-parent inheritance and its
 * override order, "(+)" appends and duplicate sections; #include relative to
 * the including file, glob patterns, #tryinclude, cycles and depth; the exact
 * "file:line: message" of every malformed input; the typed getters and the
 * plain-string parsers, good values and bad; px_config_apply with defaults,
 * overrides and errors; in-memory text, CRLF, huge lines and refcounting.
 * Files under tests/data/config are found through PX_TEST_SRCDIR; the tests
 * that need files of their own write them in a temporary directory that the
 * suite removes at the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <plexus/config.h>

#ifndef PX_TEST_SRCDIR
#error "PX_TEST_SRCDIR must name the tests/ directory"
#endif

#define DATA_DIR PX_TEST_SRCDIR "/data/config"

static char tmpdir[] = "/tmp/plexus-test-config-XXXXXX";

static px_config *typed_cfg;
static const px_config_section *typed;
static int load_typed(void);

static int suite_init(void)
{
	return mkdtemp(tmpdir) && load_typed() == 0 ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	return remove(path);
}

static int suite_cleanup(void)
{
	px_config_unref(typed_cfg);
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------- helpers */

static void tmp_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tmpdir, name);
}

/* Write len bytes (NUL bytes allowed) to name in the temporary directory. */
static void write_tmp(const char *name, const char *content, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	tmp_path(path, sizeof(path), name);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(content, 1, len, f), len);
	CU_ASSERT_EQUAL(fclose(f), 0);
}

static void write_tmp_text(const char *name, const char *content)
{
	write_tmp(name, content, strlen(content));
}

static void mkdir_tmp(const char *name)
{
	char path[PATH_MAX];

	tmp_path(path, sizeof(path), name);
	CU_ASSERT_EQUAL_FATAL(mkdir(path, 0700), 0);
}

/* Compare a message exactly, and show both when they differ. */
static void check_message(const char *actual, const char *expected)
{
	CU_ASSERT_STRING_EQUAL(actual, expected);
	if (strcmp(actual, expected) != 0)
		fprintf(stderr, "\n    expected: %s\n    actual:   %s\n", expected, actual);
}

static px_config *load_path(const char *path)
{
	px_err err = {""};
	px_config *cfg = NULL;

	CU_ASSERT_EQUAL(px_config_load(path, &cfg, &err), 0);
	if (!cfg)
		fprintf(stderr, "\n    loading %s: %s\n", path, err.msg);
	return cfg;
}

static px_config *load_data(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", DATA_DIR, name);
	return load_path(path);
}

static px_config *load_text(const char *name, const char *text)
{
	px_err err = {""};
	px_config *cfg = NULL;

	CU_ASSERT_EQUAL(px_config_load_string(name, text, &cfg, &err), 0);
	if (!cfg)
		fprintf(stderr, "\n    loading text %s: %s\n", name, err.msg);
	return cfg;
}

/* Loading path must fail with exactly expected, leaving the result alone. */
static void expect_load_error(const char *path, const char *expected)
{
	px_config *untouched = (px_config *)&untouched;
	px_config *cfg = untouched;
	px_err err = {""};

	CU_ASSERT_EQUAL(px_config_load(path, &cfg, &err), -1);
	CU_ASSERT_PTR_EQUAL(cfg, untouched);
	check_message(err.msg, expected);
}

static void expect_text_error(const char *text, const char *expected)
{
	px_config *untouched = (px_config *)&untouched;
	px_config *cfg = untouched;
	px_err err = {""};

	CU_ASSERT_EQUAL(px_config_load_string("inline.conf", text, &cfg, &err), -1);
	CU_ASSERT_PTR_EQUAL(cfg, untouched);
	check_message(err.msg, expected);
}

static size_t count_vars(const px_config_section *s)
{
	size_t n = 0;

	for (const px_config_var *v = px_config_vars(s); v; v = v->next)
		n++;
	return n;
}

static size_t count_sections(const px_config *cfg)
{
	size_t n = 0;

	for (const px_config_section *s = px_config_sections(cfg); s; s = px_config_section_next(s))
		n++;
	return n;
}

/* The index-th section in file order, templates included. */
static const px_config_section *nth_section(const px_config *cfg, size_t index)
{
	const px_config_section *s = px_config_sections(cfg);

	while (s && index-- > 0)
		s = px_config_section_next(s);
	return s;
}

/* The first variable named name: the start for walking with find_next. */
static const px_config_var *first_var(const px_config_section *s, const char *name)
{
	for (const px_config_var *v = px_config_vars(s); v; v = v->next)
		if (strcasecmp(v->name, name) == 0)
			return v;
	return NULL;
}

static const char *value_of(const px_config_section *s, const char *name)
{
	const px_config_var *v = px_config_var_find(s, name);

	return v ? v->value : NULL;
}

/* ---------------------------------------------------------------- parsing */

static void test_sections_and_keys(void)
{
	px_config *cfg = load_data("basic.conf");
	const px_config_section *general;
	const px_config_section *second;
	const px_config_var *v;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(px_config_path(cfg), DATA_DIR "/basic.conf");
	CU_ASSERT_EQUAL(count_sections(cfg), 2);
	general = px_config_sections(cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(general);
	CU_ASSERT_STRING_EQUAL(px_config_section_name(general), "general");
	CU_ASSERT_STRING_EQUAL(px_config_section_file(general), DATA_DIR "/basic.conf");
	CU_ASSERT_EQUAL(px_config_section_line(general), 3);
	CU_ASSERT_FALSE(px_config_section_is_template(general));
	CU_ASSERT_PTR_EQUAL(px_config_find(cfg, "general"), general);
	CU_ASSERT_PTR_NULL(px_config_find(cfg, "General")); /* section names are case-sensitive */
	CU_ASSERT_PTR_NULL(px_config_find(cfg, "nosuch"));
	CU_ASSERT_EQUAL(count_vars(general), 7);

	v = px_config_vars(general);
	CU_ASSERT_STRING_EQUAL(v->name, "bindport");
	CU_ASSERT_STRING_EQUAL(v->value, "5060");
	CU_ASSERT_STRING_EQUAL(v->file, DATA_DIR "/basic.conf");
	CU_ASSERT_EQUAL(v->line, 4);
	CU_ASSERT_FALSE(v->arrow);
	CU_ASSERT_FALSE(v->inherited);

	v = px_config_var_find(general, "context");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->value, "default");
	CU_ASSERT_EQUAL(v->line, 5);

	v = px_config_var_find(general, "exten");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->value, "100,1,Answer()");
	CU_ASSERT_TRUE(v->arrow);
	CU_ASSERT_EQUAL(v->line, 6);

	v = px_config_var_find(general, "spaced key");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->value, "spaced value");

	CU_ASSERT_STRING_EQUAL(value_of(general, "password"), "abc;def");
	CU_ASSERT_STRING_EQUAL(value_of(general, "empty"), "");
	/* Keys are found case-insensitively but keep their spelling. */
	v = px_config_var_find(general, "MIXED");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->name, "Mixed");
	CU_ASSERT_EQUAL(v->line, 10);
	CU_ASSERT_PTR_NULL(px_config_var_find(general, "name"));

	second = px_config_section_next(general);
	CU_ASSERT_PTR_NOT_NULL_FATAL(second);
	CU_ASSERT_STRING_EQUAL(px_config_section_name(second), "second");
	CU_ASSERT_EQUAL(px_config_section_line(second), 12);
	CU_ASSERT_EQUAL(count_vars(second), 2);
	v = px_config_var_find(second, "name");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->value, "again");
	CU_ASSERT_TRUE(v->arrow);
	CU_ASSERT_EQUAL(v->line, 15);
	CU_ASSERT_PTR_NULL(px_config_section_next(second));
	px_config_unref(cfg);
}

static void test_comments_blanks_and_escapes(void)
{
	px_config *cfg = load_text("text.conf", "  ; leading comment\n"
	                                        "\n"
	                                        "   [ spaced ]   ; comment after a header\n"
	                                        "\tkey\t=\tvalue with  inner  blanks \t \n"
	                                        "semi = a\\;b\\;c;rest is comment\n"
	                                        "back = C:\\path\\to ; only \\; is an escape\n"
	                                        "eq = a=b=c\n"
	                                        "arrow=>x=>y\n"
	                                        "ends = \\;\n");
	const px_config_section *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(px_config_path(cfg), "text.conf");
	s = px_config_find(cfg, "spaced");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(px_config_section_line(s), 3);
	CU_ASSERT_STRING_EQUAL(px_config_section_file(s), "text.conf");
	CU_ASSERT_STRING_EQUAL(value_of(s, "key"), "value with  inner  blanks");
	CU_ASSERT_STRING_EQUAL(value_of(s, "semi"), "a;b;c");
	CU_ASSERT_STRING_EQUAL(value_of(s, "back"), "C:\\path\\to");
	CU_ASSERT_STRING_EQUAL(value_of(s, "eq"), "a=b=c");
	CU_ASSERT_STRING_EQUAL(value_of(s, "arrow"), "x=>y");
	CU_ASSERT_TRUE(px_config_var_find(s, "arrow")->arrow);
	CU_ASSERT_STRING_EQUAL(value_of(s, "ends"), ";");
	CU_ASSERT_EQUAL(px_config_var_find(s, "ends")->line, 9);
	px_config_unref(cfg);
}

static void test_crlf_and_bom(void)
{
	static const char text[] =
	        "\xEF\xBB\xBF[a]\r\nkey = value\r\n\r\nk2 => v2 ; c\r\nlast = end";
	char path[PATH_MAX];
	px_config *cfg;

	write_tmp("crlf.conf", text, sizeof(text) - 1);
	tmp_path(path, sizeof(path), "crlf.conf");
	cfg = load_path(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(px_config_find(cfg, "a"));
	CU_ASSERT_STRING_EQUAL(value_of(px_config_find(cfg, "a"), "key"), "value");
	CU_ASSERT_STRING_EQUAL(value_of(px_config_find(cfg, "a"), "k2"), "v2");
	CU_ASSERT_TRUE(px_config_var_find(px_config_find(cfg, "a"), "k2")->arrow);
	CU_ASSERT_EQUAL(px_config_var_find(px_config_find(cfg, "a"), "k2")->line, 4);
	/* The last line has no newline at all. */
	CU_ASSERT_STRING_EQUAL(value_of(px_config_find(cfg, "a"), "last"), "end");
	CU_ASSERT_EQUAL(px_config_var_find(px_config_find(cfg, "a"), "last")->line, 5);
	px_config_unref(cfg);

	cfg = load_text("crlf.conf", text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(value_of(px_config_find(cfg, "a"), "key"), "value");
	px_config_unref(cfg);
}

static void test_templates_and_inheritance(void)
{
	px_config *cfg = load_data("templates.conf");
	const px_config_section *phone;
	const px_config_section *child;
	const px_config_section *derived;
	const px_config_section *base;
	const char *const *parents;
	const px_config_var *v;
	size_t n = 99;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	/* base, secure, plain, phone, derived, child; "[base](+)" adds none. */
	CU_ASSERT_EQUAL(count_sections(cfg), 6);

	phone = px_config_find(cfg, "phone");
	CU_ASSERT_PTR_NOT_NULL_FATAL(phone);
	parents = px_config_section_parents(phone, &n);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(parents[0], "base");
	CU_ASSERT_STRING_EQUAL(parents[1], "secure");

	/* Inherited first in parent order, each keeping its place, then own. */
	CU_ASSERT_EQUAL_FATAL(count_vars(phone), 6);
	v = px_config_vars(phone);
	CU_ASSERT_STRING_EQUAL(v->name, "codec");
	CU_ASSERT_STRING_EQUAL(v->value, "ulaw");
	CU_ASSERT_TRUE(v->inherited);
	CU_ASSERT_EQUAL(v->line, 2);
	CU_ASSERT_STRING_EQUAL(v->file, DATA_DIR "/templates.conf");
	v = v->next;
	CU_ASSERT_STRING_EQUAL(v->name, "nat");
	CU_ASSERT_STRING_EQUAL(v->value, "no");
	CU_ASSERT_TRUE(v->inherited);
	v = v->next;
	CU_ASSERT_STRING_EQUAL(v->name, "encryption");
	CU_ASSERT_TRUE(v->inherited);
	CU_ASSERT_EQUAL(v->line, 6);
	v = v->next;
	CU_ASSERT_STRING_EQUAL(v->value, "force");
	CU_ASSERT_EQUAL(v->line, 7);
	v = v->next;
	CU_ASSERT_STRING_EQUAL(v->name, "host");
	CU_ASSERT_STRING_EQUAL(v->value, "dynamic");
	CU_ASSERT_FALSE(v->inherited);
	CU_ASSERT_EQUAL(v->line, 13);
	v = v->next;
	CU_ASSERT_STRING_EQUAL(v->value, "alaw");
	CU_ASSERT_FALSE(v->inherited);
	CU_ASSERT_PTR_NULL(v->next);

	/* Own values override inherited ones; later parents override earlier. */
	v = px_config_var_find(phone, "codec");
	CU_ASSERT_STRING_EQUAL(v->value, "alaw");
	CU_ASSERT_FALSE(v->inherited);
	v = px_config_var_find(phone, "nat");
	CU_ASSERT_STRING_EQUAL(v->value, "force");
	CU_ASSERT_TRUE(v->inherited);
	v = px_config_var_find_next(first_var(phone, "nat"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->value, "force");
	CU_ASSERT_PTR_NULL(px_config_var_find_next(v));
	/* base was appended to after phone copied it. */
	CU_ASSERT_PTR_NULL(px_config_var_find(phone, "late"));

	/* A template that inherits, and a non-template parent. */
	CU_ASSERT_PTR_NULL(px_config_find(cfg, "derived"));
	derived = nth_section(cfg, 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(derived);
	CU_ASSERT_STRING_EQUAL(px_config_section_name(derived), "derived");
	CU_ASSERT_TRUE(px_config_section_is_template(derived));
	parents = px_config_section_parents(derived, &n);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(parents[0], "base");
	CU_ASSERT_EQUAL(count_vars(derived), 3);

	child = px_config_find(cfg, "child");
	CU_ASSERT_PTR_NOT_NULL_FATAL(child);
	parents = px_config_section_parents(child, &n);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(parents[1], "plain");
	CU_ASSERT_EQUAL(count_vars(child), 5);
	CU_ASSERT_STRING_EQUAL(value_of(child, "codec"), "ulaw");
	CU_ASSERT_STRING_EQUAL(value_of(child, "extra"), "1");
	CU_ASSERT_TRUE(px_config_var_find(child, "extra")->inherited);
	CU_ASSERT_EQUAL(px_config_var_find(child, "extra")->line, 17);
	CU_ASSERT_STRING_EQUAL(value_of(child, "host"), "child.example");
	v = first_var(child, "host");
	CU_ASSERT_STRING_EQUAL(v->value, "plain.example");
	CU_ASSERT_TRUE(v->inherited);
	CU_ASSERT_EQUAL(v->line, 10);

	/* The append landed in the template itself. */
	base = px_config_sections(cfg);
	CU_ASSERT_STRING_EQUAL(px_config_section_name(base), "base");
	CU_ASSERT_TRUE(px_config_section_is_template(base));
	CU_ASSERT_EQUAL(count_vars(base), 3);
	CU_ASSERT_STRING_EQUAL(value_of(base, "late"), "1");
	CU_ASSERT_EQUAL(px_config_var_find(base, "late")->line, 23);
	parents = px_config_section_parents(base, &n);
	CU_ASSERT_EQUAL(n, 0);
	px_config_unref(cfg);
}

/* "(name)" means the template when a plain section has the same name, even
 * a later one; among templates the latest wins. */
static void test_parent_prefers_template(void)
{
	px_config *cfg = load_text("parents.conf", "[x](!)\n"
	                                           "a = old template\n"
	                                           "[x](!)\n"
	                                           "a = template\n"
	                                           "[x]\n"
	                                           "a = plain\n"
	                                           "[y](x)\n"
	                                           "[p]\n"
	                                           "a = only plain\n"
	                                           "[q](p)\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(value_of(px_config_find(cfg, "y"), "a"), "template");
	CU_ASSERT_EQUAL(count_vars(px_config_find(cfg, "y")), 1);
	CU_ASSERT_STRING_EQUAL(value_of(px_config_find(cfg, "q"), "a"), "only plain");
	CU_ASSERT_STRING_EQUAL(value_of(px_config_find(cfg, "x"), "a"), "plain");
	px_config_unref(cfg);
}

static void test_templates_excluded_by_find(void)
{
	px_config *cfg = load_data("templates.conf");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_PTR_NULL(px_config_find(cfg, "base"));
	CU_ASSERT_PTR_NULL(px_config_find(cfg, "secure"));
	CU_ASSERT_PTR_NOT_NULL(px_config_find(cfg, "plain"));
	CU_ASSERT_FALSE(px_config_section_is_template(px_config_find(cfg, "plain")));
	CU_ASSERT_TRUE(px_config_section_is_template(px_config_sections(cfg)));
	px_config_unref(cfg);
}

static void test_duplicate_sections(void)
{
	px_config *cfg = load_data("dups.conf");
	const px_config_section *first;
	const px_config_section *last;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(count_sections(cfg), 3);
	first = px_config_find(cfg, "dup");
	CU_ASSERT_PTR_NOT_NULL_FATAL(first);
	CU_ASSERT_EQUAL(px_config_section_line(first), 3);
	CU_ASSERT_STRING_EQUAL(value_of(first, "a"), "first");
	CU_ASSERT_PTR_NULL(px_config_var_find(first, "b"));
	/* "(+)" continues the latest section of that name. */
	last = px_config_section_next(first);
	CU_ASSERT_PTR_NOT_NULL_FATAL(last);
	CU_ASSERT_EQUAL(px_config_section_line(last), 5);
	CU_ASSERT_STRING_EQUAL(value_of(last, "a"), "second");
	CU_ASSERT_STRING_EQUAL(value_of(last, "b"), "appended");
	CU_ASSERT_EQUAL(px_config_var_find(last, "b")->line, 8);
	px_config_unref(cfg);
}

static void test_append_and_repeated_keys(void)
{
	px_config *cfg = load_data("repeat.conf");
	const px_config_section *codecs;
	const px_config_var *v;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(count_sections(cfg), 2);
	codecs = px_config_find(cfg, "codecs");
	CU_ASSERT_PTR_NOT_NULL_FATAL(codecs);
	CU_ASSERT_EQUAL(count_vars(codecs), 5);
	CU_ASSERT_PTR_NULL(px_config_var_find(codecs, "x"));

	v = px_config_var_find(codecs, "Allow");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->value, "opus");
	CU_ASSERT_EQUAL(v->line, 11);
	CU_ASSERT_PTR_NULL(px_config_var_find_next(v));

	v = first_var(codecs, "allow");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->value, "ulaw");
	v = px_config_var_find_next(v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->name, "ALLOW");
	CU_ASSERT_STRING_EQUAL(v->value, "alaw");
	v = px_config_var_find_next(v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->value, "g722");
	v = px_config_var_find_next(v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->value, "opus");
	CU_ASSERT_PTR_NULL(px_config_var_find_next(v));
	CU_ASSERT_PTR_NULL(px_config_var_find_next(px_config_var_find(codecs, "disallow")));
	CU_ASSERT_PTR_NULL(px_config_var_find_next(NULL));
	px_config_unref(cfg);
}

/* ---------------------------------------------------------------- includes */

static void test_include_relative(void)
{
	px_config *cfg = load_data("include_main.conf");
	const px_config_section *main_section;
	const px_config_section *from_child;
	const px_config_var *v;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(count_sections(cfg), 3);
	main_section = px_config_find(cfg, "main");
	CU_ASSERT_PTR_NOT_NULL_FATAL(main_section);
	CU_ASSERT_EQUAL(count_vars(main_section), 3);
	v = px_config_var_find(main_section, "before");
	CU_ASSERT_STRING_EQUAL(v->file, DATA_DIR "/include_main.conf");
	CU_ASSERT_EQUAL(v->line, 3);
	/* The included file continues the section that was open. */
	v = px_config_var_find(main_section, "child");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->file, DATA_DIR "/sub/child.conf");
	CU_ASSERT_EQUAL(v->line, 1);
	/* grandchild.conf is next to child.conf, which includes it. */
	v = px_config_var_find(main_section, "grandchild");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->file, DATA_DIR "/sub/grandchild.conf");
	CU_ASSERT_EQUAL(v->line, 2);

	/* A section opened in the included file stays open after it. */
	from_child = px_config_find(cfg, "from_child");
	CU_ASSERT_PTR_NOT_NULL_FATAL(from_child);
	CU_ASSERT_STRING_EQUAL(px_config_section_file(from_child), DATA_DIR "/sub/child.conf");
	CU_ASSERT_EQUAL(px_config_section_line(from_child), 3);
	v = px_config_var_find(from_child, "after");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->file, DATA_DIR "/include_main.conf");
	CU_ASSERT_EQUAL(v->line, 5);
	px_config_unref(cfg);
}

static void test_include_glob(void)
{
	px_config *cfg = load_data("include_main.conf");
	const px_config_section *glob_section;
	const px_config_var *v;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	glob_section = px_config_find(cfg, "glob");
	CU_ASSERT_PTR_NOT_NULL_FATAL(glob_section);
	CU_ASSERT_STRING_EQUAL(px_config_section_file(glob_section),
	                       DATA_DIR "/glob.d/10-first.conf");
	/* Sorted by name whatever the directory order; *.txt not matched. */
	CU_ASSERT_EQUAL(count_vars(glob_section), 3);
	v = first_var(glob_section, "order");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->value, "10");
	CU_ASSERT_EQUAL(v->line, 2);
	v = px_config_var_find_next(v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->value, "20");
	CU_ASSERT_STRING_EQUAL(v->file, DATA_DIR "/glob.d/20-second.conf");
	CU_ASSERT_EQUAL(v->line, 1);
	v = px_config_var_find_next(v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(v->value, "30");
	CU_ASSERT_PTR_NULL(px_config_var_find_next(v));
	px_config_unref(cfg);
}

static void test_include_glob_skips_directories(void)
{
	char path[PATH_MAX];
	char expected[PATH_MAX + PX_ERR_MAX];
	px_config *cfg;

	mkdir_tmp("gd");
	mkdir_tmp("gd/inc.d");
	mkdir_tmp("gd/inc.d/dir.conf");
	write_tmp_text("gd/inc.d/a.conf", "a = 1\n");
	write_tmp_text("gd/main.conf", "[m]\n#include inc.d/*.conf\n");
	write_tmp_text("gd/literal.conf", "[m]\n#include inc.d/dir.conf\n");

	tmp_path(path, sizeof(path), "gd/main.conf");
	cfg = load_path(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(count_vars(px_config_find(cfg, "m")), 1);
	px_config_unref(cfg);

	tmp_path(path, sizeof(path), "gd/literal.conf");
	snprintf(expected, sizeof(expected),
	         "%s/gd/literal.conf:2: cannot open '%s/gd/inc.d/dir.conf': Is a directory", tmpdir,
	         tmpdir);
	expect_load_error(path, expected);
}

/* Only the pattern written in the directive is a pattern, not the directory
 * of the including file. */
static void test_include_glob_in_bracketed_directory(void)
{
	char path[PATH_MAX];
	char expected[PATH_MAX];
	px_config *cfg;

	mkdir_tmp("br[1]");
	mkdir_tmp("br1");
	write_tmp_text("br[1]/main.conf", "[m]\n#include *.inc\n");
	write_tmp_text("br[1]/x.inc", "x = 1\n");
	write_tmp_text("br1/x.inc", "x = wrong directory\n");
	tmp_path(path, sizeof(path), "br[1]/main.conf");
	cfg = load_path(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(value_of(px_config_find(cfg, "m"), "x"), "1");
	tmp_path(expected, sizeof(expected), "br[1]/x.inc");
	CU_ASSERT_STRING_EQUAL(px_config_var_find(px_config_find(cfg, "m"), "x")->file, expected);
	px_config_unref(cfg);
}

static void test_tryinclude(void)
{
	char text[PATH_MAX + 64];
	char path[PATH_MAX];
	px_config *cfg;

	write_tmp_text("present.conf", "here = yes\n");
	write_tmp_text("absolute.conf", "absolute = yes\n");
	/* An absolute name ignores the directory of the including file. */
	snprintf(text, sizeof(text),
	         "[t]\n#tryinclude absent.conf\n#tryinclude present.conf\n#include "
	         "%s/absolute.conf\n",
	         tmpdir);
	write_tmp_text("try.conf", text);
	tmp_path(path, sizeof(path), "try.conf");
	cfg = load_path(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(value_of(px_config_find(cfg, "t"), "here"), "yes");
	CU_ASSERT_STRING_EQUAL(value_of(px_config_find(cfg, "t"), "absolute"), "yes");
	px_config_unref(cfg);
}

static void test_include_depth(void)
{
	char name[32];
	char text[64];
	char path[PATH_MAX];
	char expected[PATH_MAX + PX_ERR_MAX];
	px_config *cfg;

	mkdir_tmp("deep");
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "deep/f%02d.conf", i);
		snprintf(text, sizeof(text), "#include f%02d.conf\n", i + 1);
		write_tmp_text(name, text);
	}
	write_tmp_text("deep/f40.conf", "[end]\nreached = yes\n");

	/* f09 .. f40: 32 files, the most that may be nested. */
	tmp_path(path, sizeof(path), "deep/f09.conf");
	cfg = load_path(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(value_of(px_config_find(cfg, "end"), "reached"), "yes");
	px_config_unref(cfg);

	tmp_path(path, sizeof(path), "deep/f08.conf");
	snprintf(expected, sizeof(expected),
	         "%s/deep/f39.conf:1: includes nested deeper than 32 levels", tmpdir);
	expect_load_error(path, expected);
}

static void test_include_from_string_uses_cwd(void)
{
	int saved_cwd = open(".", O_RDONLY | O_DIRECTORY);
	char dir[PATH_MAX];
	px_config *cfg = NULL;

	CU_ASSERT_FATAL(saved_cwd >= 0);
	mkdir_tmp("cwd");
	write_tmp_text("cwd/part.conf", "from_part = 1\n");
	tmp_path(dir, sizeof(dir), "cwd");
	CU_ASSERT_FATAL(chdir(dir) == 0);
	/* The name has a directory, but text in memory has no place to be
	 * relative to: the current directory it is. */
	cfg = load_text("elsewhere/gen.conf", "[g]\n#include part.conf\n");
	CU_ASSERT(fchdir(saved_cwd) == 0);
	close(saved_cwd);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(px_config_var_find(px_config_find(cfg, "g"), "from_part")->file,
	                       "part.conf");
	CU_ASSERT_STRING_EQUAL(px_config_section_file(px_config_find(cfg, "g")),
	                       "elsewhere/gen.conf");
	px_config_unref(cfg);
}

/* ---------------------------------------------------------------- errors */

static void test_syntax_errors(void)
{
	static const struct {
		const char *file;
		const char *message;
	} cases[] = {
	        {"bad_outside.conf", ":2: value outside of any section"},
	        {"bad_line.conf", ":3: expected 'key = value', got 'this is not valid'"},
	        {"bad_section.conf", ":3: unterminated section header"},
	        {"bad_section_options.conf", ":1: unterminated section header"},
	        {"bad_empty_name.conf", ":2: empty section name"},
	        {"bad_template.conf", ":2: unknown template 'nosuch'"},
	        {"bad_append.conf", ":2: no section 'b' to append to"},
	        {"bad_directive.conf", ":2: unknown directive '#exec'"},
	        {"bad_include_no_name.conf", ":1: #include needs a file name"},
	        {"bad_trailing.conf", ":1: unexpected 'junk' after section header"},
	        {"bad_empty_key.conf", ":2: expected 'key = value', got '= value'"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[PATH_MAX];
		char expected[PATH_MAX + PX_ERR_MAX];

		snprintf(path, sizeof(path), "%s/%s", DATA_DIR, cases[i].file);
		snprintf(expected, sizeof(expected), "%s%s", path, cases[i].message);
		expect_load_error(path, expected);
	}
}

static void test_syntax_errors_in_text(void)
{
	expect_text_error("[a](+,!)\n",
	                  "inline.conf:1: '+' cannot be combined with other section options");
	expect_text_error("[a]\n[a](+,a)\n",
	                  "inline.conf:2: '+' cannot be combined with other section options");
	expect_text_error("[a]()\n", "inline.conf:1: empty name in section options");
	expect_text_error("[t](!)\n[a](t,,t)\n", "inline.conf:2: empty name in section options");
	expect_text_error("[a](!) x\n", "inline.conf:1: unexpected 'x' after section header");
	expect_text_error("[a]\n#include \"x.conf\n",
	                  "inline.conf:2: #include: missing closing \"");
	expect_text_error("[a]\n#include <x.conf\n", "inline.conf:2: #include: missing closing >");
	expect_text_error("[a]\n#include \"x.conf\" y\n",
	                  "inline.conf:2: #include: unexpected 'y' after the file name");
	expect_text_error("[a]\n#include \"\"\n", "inline.conf:2: #include needs a file name");
	expect_text_error("[a]\n#\n", "inline.conf:2: unknown directive '#'");
	expect_text_error("[a]\n#includes x\n", "inline.conf:2: unknown directive '#includes'");
	expect_text_error("\n\nk => v\n", "inline.conf:3: value outside of any section");
	expect_text_error("[a]\njust words\n",
	                  "inline.conf:2: expected 'key = value', got 'just words'");
	/* The template must come first; the section itself does not count. */
	expect_text_error("[a](b)\n[b](!)\n", "inline.conf:1: unknown template 'b'");
	expect_text_error("[a](a)\n", "inline.conf:1: unknown template 'a'");
	expect_text_error("[a]\r\n\r\nbad\r\n", "inline.conf:3: expected 'key = value', got 'bad'");
}

static void test_include_errors(void)
{
	expect_load_error(DATA_DIR "/bad_include_missing.conf",
	                  DATA_DIR "/bad_include_missing.conf:2: cannot open '" DATA_DIR
	                           "/nosuch.conf': No such file or directory");
	/* An error inside an included file names that file. */
	expect_load_error(DATA_DIR "/bad_nested.conf", DATA_DIR
	                  "/sub/bad_child.conf:2: expected 'key = value', got 'broken line'");
	expect_load_error(DATA_DIR "/cycle_a.conf", DATA_DIR
	                  "/cycle_b.conf:2: include cycle: " DATA_DIR "/cycle_a.conf -> " DATA_DIR
	                  "/cycle_b.conf -> " DATA_DIR "/cycle_a.conf");
	expect_load_error(DATA_DIR "/self_include.conf",
	                  DATA_DIR "/self_include.conf:1: include cycle: " DATA_DIR
	                           "/self_include.conf -> " DATA_DIR "/self_include.conf");
}

static void test_cycle_through_other_spelling(void)
{
	char path[PATH_MAX];
	char expected[PATH_MAX + PX_ERR_MAX];

	/* "./loop.conf" names the same file as "loop.conf": realpath sees it. */
	mkdir_tmp("loop");
	write_tmp_text("loop/loop.conf", "[l]\n#include ./loop.conf\n");
	tmp_path(path, sizeof(path), "loop/loop.conf");
	snprintf(expected, sizeof(expected),
	         "%s/loop/loop.conf:2: include cycle: %s/loop/loop.conf -> %s/loop/./loop.conf",
	         tmpdir, tmpdir, tmpdir);
	expect_load_error(path, expected);
}

static void test_missing_main_file(void)
{
	char path[PATH_MAX];
	char expected[PATH_MAX + PX_ERR_MAX];

	tmp_path(path, sizeof(path), "missing.conf");
	snprintf(expected, sizeof(expected), "cannot open '%s': No such file or directory", path);
	expect_load_error(path, expected);
}

static void test_nul_byte(void)
{
	static const char text[] = "[a]\nk = v\0x\n";
	char path[PATH_MAX];
	char expected[PATH_MAX + PX_ERR_MAX];

	write_tmp("nul.conf", text, sizeof(text) - 1);
	tmp_path(path, sizeof(path), "nul.conf");
	snprintf(expected, sizeof(expected), "%s:2: line contains a NUL byte", path);
	expect_load_error(path, expected);
}

static void test_huge_line(void)
{
	const size_t size = 1 << 20;
	char *text = malloc(size + 64);
	char expected[PATH_MAX + PX_ERR_MAX];
	char path[PATH_MAX];
	px_config *cfg;
	const char *value;

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	strcpy(text, "[big]\nkey = ");
	memset(text + strlen(text), 'x', size);
	strcpy(text + strlen("[big]\nkey = ") + size, "y\nafter = 1\n");

	cfg = load_text("big.conf", text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	value = value_of(px_config_find(cfg, "big"), "key");
	CU_ASSERT_PTR_NOT_NULL_FATAL(value);
	CU_ASSERT_EQUAL(strlen(value), size + 1);
	CU_ASSERT_EQUAL(value[size], 'y');
	CU_ASSERT_EQUAL(px_config_var_find(px_config_find(cfg, "big"), "after")->line, 3);
	px_config_unref(cfg);

	write_tmp_text("big.conf", text);
	tmp_path(path, sizeof(path), "big.conf");
	cfg = load_path(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	value = value_of(px_config_find(cfg, "big"), "key");
	CU_ASSERT_PTR_NOT_NULL_FATAL(value);
	CU_ASSERT_EQUAL(strlen(value), size + 1);
	px_config_unref(cfg);

	/* A huge bad line gives a short message, quoting its start. */
	memset(text, 'z', size);
	strcpy(text + size, "\n");
	memcpy(text, "[s]\n", 4);
	snprintf(expected, sizeof(expected),
	         "inline.conf:2: expected 'key = value', got '%.80s...'", text + 4);
	expect_text_error(text, expected);
	free(text);
}

static void test_load_string_and_refcount(void)
{
	px_config *cfg = load_text(NULL, "[only]\nk = v\n");
	const px_config_section *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(px_config_path(cfg), "<string>");
	CU_ASSERT_STRING_EQUAL(px_config_var_find(px_config_find(cfg, "only"), "k")->file,
	                       "<string>");
	s = px_config_find(cfg, "only");
	CU_ASSERT_PTR_EQUAL(px_config_ref(cfg), cfg);
	px_config_unref(cfg);
	/* Still alive: the second reference holds it (ASan/valgrind watch). */
	CU_ASSERT_STRING_EQUAL(value_of(s, "k"), "v");
	px_config_unref(cfg);
	px_config_unref(NULL);
	CU_ASSERT_PTR_NULL(px_config_ref(NULL));

	cfg = load_text("empty.conf", "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_PTR_NULL(px_config_sections(cfg));
	px_config_unref(cfg);
}

/* ---------------------------------------------------------------- typed getters */

/* Line numbers matter: the messages below name them. */
static const char typed_text[] = "[t]\n"                               /* 1 */
                                 "b_yes = Yes\n"                       /* 2 */
                                 "b_off = OFF\n"                       /* 3 */
                                 "b_one = 1\n"                         /* 4 */
                                 "b_bad = maybe\n"                     /* 5 */
                                 "i_dec = 5060\n"                      /* 6 */
                                 "i_hex = 0x1F\n"                      /* 7 */
                                 "i_neg = -12\n"                       /* 8 */
                                 "i_big = 70000\n"                     /* 9 */
                                 "i_junk = 12abc\n"                    /* 10 */
                                 "i_empty =\n"                         /* 11 */
                                 "i_octal = 010\n"                     /* 12 */
                                 "i_overflow = 99999999999999999999\n" /* 13 */
                                 "d_bare = 30\n"                       /* 14 */
                                 "d_ms = 250ms\n"                      /* 15 */
                                 "d_m = 5m\n"                          /* 16 */
                                 "d_h = 2h\n"                          /* 17 */
                                 "d_d = 1d\n"                          /* 18 */
                                 "d_space = 10 S\n"                    /* 19 */
                                 "d_bad = 5 parsecs\n"                 /* 20 */
                                 "d_neg = -5s\n"                       /* 21 */
                                 "d_long = 3h\n"                       /* 22 */
                                 "d_overflow = 999999999999999999d\n"  /* 23 */
                                 "e_ok = TCP\n"                        /* 24 */
                                 "e_bad = sctp\n"                      /* 25 */
                                 "a_v4 = 192.0.2.1\n"                  /* 26 */
                                 "a_v4port = 192.0.2.1:5061\n"         /* 27 */
                                 "a_v6port = [2001:db8::1]:5062\n"     /* 28 */
                                 "a_v6 = 2001:db8::2\n"                /* 29 */
                                 "a_host = localhost:5063\n"           /* 30 */
                                 "a_badport = 192.0.2.1:70000\n"       /* 31 */
                                 "a_zeroport = 192.0.2.1:0\n"          /* 32 */
                                 "a_textport = 192.0.2.1:sip\n"        /* 33 */
                                 "a_noport = 192.0.2.1:\n"             /* 34 */
                                 "a_unclosed = [::1\n"                 /* 35 */
                                 "a_junk = [::1]x\n"                   /* 36 */
                                 "a_v4inbrackets = [192.0.2.1]:5060\n" /* 37 */
                                 "a_nohost = :5060\n"                  /* 38 */
                                 "a_badv6 = 1:2:3:zz\n"                /* 39 */
                                 "l_ok = a, b ,c\n"                    /* 40 */
                                 "l_one = single\n"                    /* 41 */
                                 "l_empty =\n"                         /* 42 */
                                 "l_hole = a,,b\n"                     /* 43 */
                                 "l_trailing = a,\n"                   /* 44 */
                                 "a_default = [::1]\n";                /* 45 */

static const px_config_var *typed_var(const char *name)
{
	const px_config_var *v = px_config_var_find(typed, name);

	CU_ASSERT_PTR_NOT_NULL(v);
	return v;
}

static int load_typed(void)
{
	px_err err;

	if (px_config_load_string("typed.conf", typed_text, &typed_cfg, &err) < 0)
		return -1;
	typed = px_config_find(typed_cfg, "t");
	return typed ? 0 : -1;
}

static void test_var_bool(void)
{
	px_err err = {""};
	bool b = false;

	CU_ASSERT_EQUAL(px_config_var_bool(typed_var("b_yes"), &b, &err), 0);
	CU_ASSERT_TRUE(b);
	CU_ASSERT_EQUAL(px_config_var_bool(typed_var("b_off"), &b, &err), 0);
	CU_ASSERT_FALSE(b);
	CU_ASSERT_EQUAL(px_config_var_bool(typed_var("b_one"), &b, &err), 0);
	CU_ASSERT_TRUE(b);
	CU_ASSERT_EQUAL(px_config_var_bool(typed_var("b_bad"), &b, &err), -1);
	CU_ASSERT_TRUE(b); /* untouched */
	check_message(
	        err.msg,
	        "typed.conf:5: b_bad: 'maybe' is not a boolean (yes/no, true/false, on/off, 1/0)");
	CU_ASSERT_EQUAL(px_config_var_bool(NULL, &b, &err), -1);
}

static void test_var_int(void)
{
	px_err err = {""};
	long long n = 0;

	CU_ASSERT_EQUAL(px_config_var_int(typed_var("i_dec"), 1, 65535, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 5060);
	CU_ASSERT_EQUAL(px_config_var_int(typed_var("i_hex"), 0, 100, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 31);
	CU_ASSERT_EQUAL(px_config_var_int(typed_var("i_neg"), -100, 100, &n, &err), 0);
	CU_ASSERT_EQUAL(n, -12);
	CU_ASSERT_EQUAL(px_config_var_int(typed_var("i_octal"), 0, 100, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 10); /* decimal, not octal */

	n = 42;
	CU_ASSERT_EQUAL(px_config_var_int(typed_var("i_big"), 1, 65535, &n, &err), -1);
	check_message(err.msg, "typed.conf:9: i_big: '70000' is out of range 1..65535");
	CU_ASSERT_EQUAL(n, 42);
	CU_ASSERT_EQUAL(px_config_var_int(typed_var("i_neg"), 0, 100, &n, &err), -1);
	check_message(err.msg, "typed.conf:8: i_neg: '-12' is out of range 0..100");
	CU_ASSERT_EQUAL(px_config_var_int(typed_var("i_junk"), 0, 100, &n, &err), -1);
	check_message(err.msg, "typed.conf:10: i_junk: '12abc' is not an integer");
	CU_ASSERT_EQUAL(px_config_var_int(typed_var("i_empty"), 0, 100, &n, &err), -1);
	check_message(err.msg, "typed.conf:11: i_empty: '' is not an integer");
	CU_ASSERT_EQUAL(px_config_var_int(typed_var("i_overflow"), LLONG_MIN, LLONG_MAX, &n, &err),
	                -1);
	check_message(err.msg, "typed.conf:13: i_overflow: '99999999999999999999' is out of range "
	                       "-9223372036854775808..9223372036854775807");
	CU_ASSERT_EQUAL(n, 42);
}

static void test_var_duration(void)
{
	px_err err = {""};
	int64_t ms = 0;

	CU_ASSERT_EQUAL(px_config_var_duration(typed_var("d_bare"), 0, INT64_MAX, &ms, &err), 0);
	CU_ASSERT_EQUAL(ms, 30000);
	CU_ASSERT_EQUAL(px_config_var_duration(typed_var("d_ms"), 0, INT64_MAX, &ms, &err), 0);
	CU_ASSERT_EQUAL(ms, 250);
	CU_ASSERT_EQUAL(px_config_var_duration(typed_var("d_m"), 0, INT64_MAX, &ms, &err), 0);
	CU_ASSERT_EQUAL(ms, 300000);
	CU_ASSERT_EQUAL(px_config_var_duration(typed_var("d_h"), 0, INT64_MAX, &ms, &err), 0);
	CU_ASSERT_EQUAL(ms, 7200000);
	CU_ASSERT_EQUAL(px_config_var_duration(typed_var("d_d"), 0, INT64_MAX, &ms, &err), 0);
	CU_ASSERT_EQUAL(ms, 86400000);
	CU_ASSERT_EQUAL(px_config_var_duration(typed_var("d_space"), 0, INT64_MAX, &ms, &err), 0);
	CU_ASSERT_EQUAL(ms, 10000);

	ms = 7;
	CU_ASSERT_EQUAL(px_config_var_duration(typed_var("d_long"), 1000, 3600000, &ms, &err), -1);
	check_message(err.msg, "typed.conf:22: d_long: '3h' is out of range 1s..1h");
	CU_ASSERT_EQUAL(px_config_var_duration(typed_var("d_ms"), 1000, 90000, &ms, &err), -1);
	check_message(err.msg, "typed.conf:15: d_ms: '250ms' is out of range 1s..90s");
	CU_ASSERT_EQUAL(px_config_var_duration(typed_var("d_bare"), 0, 1500, &ms, &err), -1);
	check_message(err.msg, "typed.conf:14: d_bare: '30' is out of range 0..1500ms");
	CU_ASSERT_EQUAL(px_config_var_duration(typed_var("d_bad"), 0, INT64_MAX, &ms, &err), -1);
	check_message(err.msg, "typed.conf:20: d_bad: '5 parsecs' is not a duration "
	                       "(like 30, 250ms, 30s, 5m, 2h, 1d)");
	CU_ASSERT_EQUAL(px_config_var_duration(typed_var("d_neg"), 0, INT64_MAX, &ms, &err), -1);
	check_message(err.msg, "typed.conf:21: d_neg: '-5s' is not a duration "
	                       "(like 30, 250ms, 30s, 5m, 2h, 1d)");
	CU_ASSERT_EQUAL(px_config_var_duration(typed_var("d_overflow"), 0, 86400000, &ms, &err),
	                -1);
	check_message(err.msg,
	              "typed.conf:23: d_overflow: '999999999999999999d' is out of range 0..1d");
	CU_ASSERT_EQUAL(ms, 7);
}

static void test_var_enum(void)
{
	static const char *const transports[] = {"udp", "tcp", "tls", NULL};
	px_err err = {""};
	int index = -1;

	CU_ASSERT_EQUAL(px_config_var_enum(typed_var("e_ok"), transports, &index, &err), 0);
	CU_ASSERT_EQUAL(index, 1);
	CU_ASSERT_EQUAL(px_config_var_enum(typed_var("e_bad"), transports, &index, &err), -1);
	check_message(err.msg, "typed.conf:25: e_bad: 'sctp' is not one of: udp, tcp, tls");
	CU_ASSERT_EQUAL(index, 1);
}

static void expect_inet(const struct sockaddr_storage *ss, const char *addr, uint16_t port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	struct in_addr want;

	CU_ASSERT_EQUAL_FATAL(ss->ss_family, AF_INET);
	CU_ASSERT_EQUAL(inet_pton(AF_INET, addr, &want), 1);
	CU_ASSERT_EQUAL(sin->sin_addr.s_addr, want.s_addr);
	CU_ASSERT_EQUAL(ntohs(sin->sin_port), port);
}

static void expect_inet6(const struct sockaddr_storage *ss, const char *addr, uint16_t port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	struct in6_addr want;

	CU_ASSERT_EQUAL_FATAL(ss->ss_family, AF_INET6);
	CU_ASSERT_EQUAL(inet_pton(AF_INET6, addr, &want), 1);
	CU_ASSERT_EQUAL(memcmp(&sin6->sin6_addr, &want, sizeof(want)), 0);
	CU_ASSERT_EQUAL(ntohs(sin6->sin6_port), port);
}

static void test_var_addr(void)
{
	struct sockaddr_storage ss;
	px_err err = {""};

	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_v4"), 5060, &ss, &err), 0);
	expect_inet(&ss, "192.0.2.1", 5060);
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_v4port"), 5060, &ss, &err), 0);
	expect_inet(&ss, "192.0.2.1", 5061);
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_v6port"), 5060, &ss, &err), 0);
	expect_inet6(&ss, "2001:db8::1", 5062);
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_v6"), 5060, &ss, &err), 0);
	expect_inet6(&ss, "2001:db8::2", 5060);
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_default"), 0, &ss, &err), 0);
	expect_inet6(&ss, "::1", 0);
	/* localhost may come back as either family, but it is a loopback. */
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_host"), 5060, &ss, &err), 0);
	if (ss.ss_family == AF_INET)
		expect_inet(&ss, "127.0.0.1", 5063);
	else
		expect_inet6(&ss, "::1", 5063);

	memset(&ss, 0xAB, sizeof(ss));
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_badport"), 5060, &ss, &err), -1);
	check_message(err.msg, "typed.conf:31: a_badport: port '70000' is out of range 1..65535");
	CU_ASSERT_EQUAL(ss.ss_family, (sa_family_t)0xABAB); /* untouched */
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_zeroport"), 5060, &ss, &err), -1);
	check_message(err.msg, "typed.conf:32: a_zeroport: port '0' is out of range 1..65535");
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_textport"), 5060, &ss, &err), -1);
	check_message(err.msg, "typed.conf:33: a_textport: port 'sip' is not a number");
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_noport"), 5060, &ss, &err), -1);
	check_message(err.msg, "typed.conf:34: a_noport: missing port after ':'");
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_unclosed"), 5060, &ss, &err), -1);
	check_message(err.msg, "typed.conf:35: a_unclosed: '[::1' lacks the closing ']'");
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_junk"), 5060, &ss, &err), -1);
	check_message(err.msg, "typed.conf:36: a_junk: unexpected 'x' after ']'");
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_v4inbrackets"), 5060, &ss, &err), -1);
	check_message(err.msg, "typed.conf:37: a_v4inbrackets: '192.0.2.1' is not an IPv6 address");
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_nohost"), 5060, &ss, &err), -1);
	check_message(err.msg, "typed.conf:38: a_nohost: ':5060' has no host");
	CU_ASSERT_EQUAL(px_config_var_addr(typed_var("a_badv6"), 5060, &ss, &err), -1);
	check_message(err.msg, "typed.conf:39: a_badv6: '1:2:3:zz' is not an IPv6 address");
	CU_ASSERT_EQUAL(ss.ss_family, (sa_family_t)0xABAB);
}

static void test_var_list(void)
{
	char **list = NULL;
	char **kept;
	px_err err = {""};

	CU_ASSERT_EQUAL_FATAL(px_config_var_list(typed_var("l_ok"), &list, &err), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(list);
	CU_ASSERT_STRING_EQUAL(list[0], "a");
	CU_ASSERT_STRING_EQUAL(list[1], "b");
	CU_ASSERT_STRING_EQUAL(list[2], "c");
	CU_ASSERT_PTR_NULL(list[3]);
	px_config_list_free(list);

	CU_ASSERT_EQUAL_FATAL(px_config_var_list(typed_var("l_one"), &list, &err), 0);
	CU_ASSERT_STRING_EQUAL(list[0], "single");
	CU_ASSERT_PTR_NULL(list[1]);
	px_config_list_free(list);

	/* An empty value is the empty list. */
	CU_ASSERT_EQUAL_FATAL(px_config_var_list(typed_var("l_empty"), &list, &err), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(list);
	CU_ASSERT_PTR_NULL(list[0]);
	kept = list;

	CU_ASSERT_EQUAL(px_config_var_list(typed_var("l_hole"), &list, &err), -1);
	check_message(err.msg, "typed.conf:43: l_hole: 'a,,b' has an empty item");
	CU_ASSERT_EQUAL(px_config_var_list(typed_var("l_trailing"), &list, &err), -1);
	check_message(err.msg, "typed.conf:44: l_trailing: 'a,' has an empty item");
	CU_ASSERT_PTR_EQUAL(list, kept);
	px_config_list_free(list);
	px_config_list_free(NULL);
}

static void test_plain_parsers(void)
{
	static const char *const truths[] = {"yes", "YES", "true", "True", "on", "On", "1"};
	static const char *const lies[] = {"no", "No", "false", "FALSE", "off", "oFF", "0"};
	bool b;
	int64_t ms;

	for (size_t i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
		b = false;
		CU_ASSERT_EQUAL(px_parse_bool(truths[i], &b), 0);
		CU_ASSERT_TRUE(b);
		b = true;
		CU_ASSERT_EQUAL(px_parse_bool(lies[i], &b), 0);
		CU_ASSERT_FALSE(b);
	}
	b = true;
	CU_ASSERT_EQUAL(px_parse_bool("", &b), -1);
	CU_ASSERT_EQUAL(px_parse_bool("yess", &b), -1);
	CU_ASSERT_EQUAL(px_parse_bool("2", &b), -1);
	CU_ASSERT_EQUAL(px_parse_bool(NULL, &b), -1);
	CU_ASSERT_TRUE(b);

	CU_ASSERT_EQUAL(px_parse_duration_ms("30", &ms), 0);
	CU_ASSERT_EQUAL(ms, 30000);
	CU_ASSERT_EQUAL(px_parse_duration_ms("0", &ms), 0);
	CU_ASSERT_EQUAL(ms, 0);
	CU_ASSERT_EQUAL(px_parse_duration_ms("1500ms", &ms), 0);
	CU_ASSERT_EQUAL(ms, 1500);
	CU_ASSERT_EQUAL(px_parse_duration_ms("45s", &ms), 0);
	CU_ASSERT_EQUAL(ms, 45000);
	CU_ASSERT_EQUAL(px_parse_duration_ms("3M", &ms), 0);
	CU_ASSERT_EQUAL(ms, 180000);
	CU_ASSERT_EQUAL(px_parse_duration_ms("2h", &ms), 0);
	CU_ASSERT_EQUAL(ms, 7200000);
	CU_ASSERT_EQUAL(px_parse_duration_ms("7d", &ms), 0);
	CU_ASSERT_EQUAL(ms, 604800000);
	ms = 99;
	CU_ASSERT_EQUAL(px_parse_duration_ms("", &ms), -1);
	CU_ASSERT_EQUAL(px_parse_duration_ms("s", &ms), -1);
	CU_ASSERT_EQUAL(px_parse_duration_ms("5x", &ms), -1);
	CU_ASSERT_EQUAL(px_parse_duration_ms("5sec", &ms), -1);
	CU_ASSERT_EQUAL(px_parse_duration_ms("1.5s", &ms), -1);
	CU_ASSERT_EQUAL(px_parse_duration_ms(" 5s", &ms), -1);
	CU_ASSERT_EQUAL(px_parse_duration_ms("-5s", &ms), -1);
	CU_ASSERT_EQUAL(px_parse_duration_ms("9223372036854775807d", &ms), -1);
	CU_ASSERT_EQUAL(px_parse_duration_ms("99999999999999999999999", &ms), -1);
	CU_ASSERT_EQUAL(px_parse_duration_ms(NULL, &ms), -1);
	CU_ASSERT_EQUAL(ms, 99);
	/* The largest value that fits. */
	CU_ASSERT_EQUAL(px_parse_duration_ms("9223372036854775807ms", &ms), 0);
	CU_ASSERT_EQUAL(ms, INT64_MAX);
}

/* ---------------------------------------------------------------- option tables */

struct settings {
	char *name;
	bool enabled;
	long long port;
	int64_t timeout;
	int transport;
	struct sockaddr_storage bind;
	char **codecs;
	char *nodefault;
};

static const char *const transport_names[] = {"udp", "tcp", "tls", NULL};

#define OPTION(key, kind, default_text, low, high, field)                                          \
	{                                                                                          \
		.name = key, .type = kind, .def = default_text, .min = low, .max = high,           \
		.choices = kind == PX_CFG_ENUM ? transport_names : NULL,                           \
		.offset = offsetof(struct settings, field), .help = "test option " key,            \
	}

static const struct px_config_option settings_options[] = {
        OPTION("name", PX_CFG_STRING, "plexus", 0, 0, name),
        OPTION("enabled", PX_CFG_BOOL, "yes", 0, 0, enabled),
        OPTION("port", PX_CFG_INT, "5060", 1, 65535, port),
        OPTION("timeout", PX_CFG_DURATION, "30s", 1000, 3600000, timeout),
        OPTION("transport", PX_CFG_ENUM, "udp", 0, 0, transport),
        OPTION("bind", PX_CFG_ADDR, "192.0.2.7", 0, 5060, bind),
        OPTION("codecs", PX_CFG_LIST, "ulaw, alaw", 0, 0, codecs),
        OPTION("nodefault", PX_CFG_STRING, NULL, 0, 0, nodefault),
};

#define NOPTIONS (sizeof(settings_options) / sizeof(settings_options[0]))

/* Apply the section (NULL: defaults only) to st, which must succeed. */
static int apply_ok(const px_config_section *s, struct settings *st)
{
	px_err err = {""};
	int rc = px_config_apply(s, settings_options, NOPTIONS, st, &err);

	CU_ASSERT_EQUAL(rc, 0);
	if (rc != 0)
		fprintf(stderr, "\n    apply: %s\n", err.msg);
	return rc;
}

/* A struct as the stack would give it: garbage that apply must not free. */
static void scramble(struct settings *st)
{
	memset(st, 0x5A, sizeof(*st));
}

static void test_apply_defaults(void)
{
	struct settings st;

	scramble(&st);
	if (apply_ok(NULL, &st) != 0)
		return;
	CU_ASSERT_STRING_EQUAL(st.name, "plexus");
	CU_ASSERT_TRUE(st.enabled);
	CU_ASSERT_EQUAL(st.port, 5060);
	CU_ASSERT_EQUAL(st.timeout, 30000);
	CU_ASSERT_EQUAL(st.transport, 0);
	expect_inet(&st.bind, "192.0.2.7", 5060);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st.codecs);
	CU_ASSERT_STRING_EQUAL(st.codecs[0], "ulaw");
	CU_ASSERT_STRING_EQUAL(st.codecs[1], "alaw");
	CU_ASSERT_PTR_NULL(st.codecs[2]);
	CU_ASSERT_PTR_NULL(st.nodefault);
	px_config_options_free(settings_options, NOPTIONS, &st);
	CU_ASSERT_PTR_NULL(st.name);
	CU_ASSERT_PTR_NULL(st.codecs);
	px_config_options_free(settings_options, NOPTIONS, &st); /* twice is harmless */
}

static void test_apply_overrides(void)
{
	px_config *cfg = load_text("apply.conf", "[tpl](!)\n"
	                                         "port = 5070\n"
	                                         "name = from-template\n"
	                                         "[phone](tpl)\n"
	                                         "name = first\n"
	                                         "NAME = second\n"
	                                         "enabled = off\n"
	                                         "timeout = 5s\n"
	                                         "timeout = 2m\n"
	                                         "transport = TLS\n"
	                                         "bind = 127.0.0.1:5080\n"
	                                         "codecs = g722\n"
	                                         "codecs = opus, speex\n"
	                                         "nodefault = set\n");
	struct settings st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	scramble(&st);
	if (apply_ok(px_config_find(cfg, "phone"), &st) != 0) {
		px_config_unref(cfg);
		return;
	}
	CU_ASSERT_STRING_EQUAL(st.name, "second");
	CU_ASSERT_FALSE(st.enabled);
	CU_ASSERT_EQUAL(st.port, 5070); /* inherited */
	CU_ASSERT_EQUAL(st.timeout, 120000);
	CU_ASSERT_EQUAL(st.transport, 2);
	expect_inet(&st.bind, "127.0.0.1", 5080);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st.codecs);
	CU_ASSERT_STRING_EQUAL(st.codecs[0], "opus");
	CU_ASSERT_STRING_EQUAL(st.codecs[1], "speex");
	CU_ASSERT_PTR_NULL(st.codecs[2]);
	CU_ASSERT_STRING_EQUAL(st.nodefault, "set");
	px_config_options_free(settings_options, NOPTIONS, &st);
	CU_ASSERT_PTR_NULL(st.nodefault);

	/* The address default port applies to an address without one. */
	px_config_unref(cfg);
	cfg = load_text("apply.conf", "[s]\nbind = 127.0.0.2\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	if (apply_ok(px_config_find(cfg, "s"), &st) == 0) {
		expect_inet(&st.bind, "127.0.0.2", 5060);
		px_config_options_free(settings_options, NOPTIONS, &st);
	}
	px_config_unref(cfg);
}

static void expect_apply_error(const char *text, const char *section, const char *expected)
{
	px_config *cfg = load_text("apply.conf", text);
	struct settings st;
	px_err err = {""};

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	scramble(&st);
	CU_ASSERT_EQUAL(px_config_apply(px_config_find(cfg, section), settings_options, NOPTIONS,
	                                &st, &err),
	                -1);
	check_message(err.msg, expected);
	/* Nothing is left allocated, and freeing again is safe. */
	CU_ASSERT_PTR_NULL(st.name);
	CU_ASSERT_PTR_NULL(st.codecs);
	px_config_options_free(settings_options, NOPTIONS, &st);
	px_config_unref(cfg);
}

static void test_apply_errors(void)
{
	expect_apply_error("[x]\nname = n\nport = 1\nfoo = bar\n", "x",
	                   "apply.conf:4: unknown option 'foo' in [x]");
	expect_apply_error("[x]\ncodecs = a\nport = 70000\n", "x",
	                   "apply.conf:3: port: '70000' is out of range 1..65535");
	expect_apply_error("[x]\nenabled = perhaps\n", "x",
	                   "apply.conf:2: enabled: 'perhaps' is not a boolean (yes/no, true/false, "
	                   "on/off, 1/0)");
	expect_apply_error("[x]\ntransport = sctp\n", "x",
	                   "apply.conf:2: transport: 'sctp' is not one of: udp, tcp, tls");
	expect_apply_error("[x]\ntimeout = 2h\n", "x",
	                   "apply.conf:2: timeout: '2h' is out of range 1s..1h");
	expect_apply_error("[x]\ncodecs = a,,b\n", "x",
	                   "apply.conf:2: codecs: 'a,,b' has an empty item");
	expect_apply_error("[x]\nbind = 1.2.3.4:0\n", "x",
	                   "apply.conf:2: bind: port '0' is out of range 1..65535");
	/* An unknown key from a template is reported where it was written. */
	expect_apply_error("[t](!)\nbogus = 1\n[x](t)\nport = 1\n", "x",
	                   "apply.conf:2: unknown option 'bogus' in [x]");
}

static void test_apply_bad_table(void)
{
	struct px_config_option opts[NOPTIONS];
	struct settings st;
	px_err err = {""};

	memcpy(opts, settings_options, sizeof(opts));
	opts[2].def = "five"; /* port */
	scramble(&st);
	CU_ASSERT_EQUAL(px_config_apply(NULL, opts, NOPTIONS, &st, &err), -1);
	check_message(err.msg, "default of port: 'five' is not an integer");
	CU_ASSERT_PTR_NULL(st.name); /* the default set before it was released */
	px_config_options_free(opts, NOPTIONS, &st);

	memcpy(opts, settings_options, sizeof(opts));
	opts[3].def = "2h"; /* timeout, max 1h */
	CU_ASSERT_EQUAL(px_config_apply(NULL, opts, NOPTIONS, &st, &err), -1);
	check_message(err.msg, "default of timeout: '2h' is out of range 1s..1h");

	memcpy(opts, settings_options, sizeof(opts));
	opts[4].choices = NULL;
	CU_ASSERT_EQUAL(px_config_apply(NULL, opts, NOPTIONS, &st, &err), -1);
	check_message(err.msg, "option transport: no choices given");

	memcpy(opts, settings_options, sizeof(opts));
	opts[5].max = 70000;
	CU_ASSERT_EQUAL(px_config_apply(NULL, opts, NOPTIONS, &st, &err), -1);
	check_message(err.msg, "option bind: default port 70000 is out of range 0..65535");
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc func;
	} tests[] = {
	        {"sections and keys", test_sections_and_keys},
	        {"comments, blanks and escapes", test_comments_blanks_and_escapes},
	        {"CRLF and byte-order mark", test_crlf_and_bom},
	        {"templates and inheritance", test_templates_and_inheritance},
	        {"parent prefers a template", test_parent_prefers_template},
	        {"templates excluded by find", test_templates_excluded_by_find},
	        {"duplicate sections", test_duplicate_sections},
	        {"append and repeated keys", test_append_and_repeated_keys},
	        {"include relative to the including file", test_include_relative},
	        {"include glob", test_include_glob},
	        {"include glob skips directories", test_include_glob_skips_directories},
	        {"include glob in a bracketed directory", test_include_glob_in_bracketed_directory},
	        {"tryinclude", test_tryinclude},
	        {"include depth", test_include_depth},
	        {"include from a string uses the cwd", test_include_from_string_uses_cwd},
	        {"syntax errors", test_syntax_errors},
	        {"syntax errors in text", test_syntax_errors_in_text},
	        {"include errors", test_include_errors},
	        {"cycle through another spelling", test_cycle_through_other_spelling},
	        {"missing main file", test_missing_main_file},
	        {"NUL byte", test_nul_byte},
	        {"huge line", test_huge_line},
	        {"load_string and refcount", test_load_string_and_refcount},
	        {"bool getter", test_var_bool},
	        {"int getter", test_var_int},
	        {"duration getter", test_var_duration},
	        {"enum getter", test_var_enum},
	        {"addr getter", test_var_addr},
	        {"list getter", test_var_list},
	        {"plain parsers", test_plain_parsers},
	        {"apply defaults", test_apply_defaults},
	        {"apply overrides", test_apply_overrides},
	        {"apply errors", test_apply_errors},
	        {"apply bad table", test_apply_bad_table},
	};
	CU_pSuite suite;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("config", suite_init, suite_cleanup);
	if (!suite) {
		CU_cleanup_registry();
		return 1;
	}
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (!CU_add_test(suite, tests[i].name, tests[i].func)) {
			CU_cleanup_registry();
			return 1;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures != 0;
}
