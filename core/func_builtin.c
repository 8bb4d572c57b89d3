/*
 * The dialplan functions the core provides, with Asterisk's names and
 * arguments: CALLERID (the channel's caller identity), LEN, CUT, IF,
 * GLOBAL (global variables) and ENV (the daemon's environment, read only).
 * Their documentation is here, beside the code, and is what "core show
 * function NAME" prints.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/func.h>

#include "func_internal.h"

#define FIELD_MAX 256

static int need_channel(px_channel *ch, const char *fn, px_err *err)
{
	if (!ch)
		return px_err_set(err, "%s needs a channel", fn);
	return 0;
}

/* ---------------------------------------------------------------- CALLERID */

enum cid_field { CID_NUM, CID_NAME, CID_ALL };

static int cid_field(const char *args, enum cid_field *out, px_err *err)
{
	char copy[32];

	snprintf(copy, sizeof(copy), "%s", args);
	const char *f = px_app_trim(copy);
	if (!strcasecmp(f, "num") || !strcasecmp(f, "number"))
		*out = CID_NUM;
	else if (!strcasecmp(f, "name"))
		*out = CID_NAME;
	else if (!strcasecmp(f, "all"))
		*out = CID_ALL;
	else
		return px_err_set(err, "CALLERID: unknown field '%s' (num, name or all)", args);
	return 0;
}

static int callerid_read(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	char num[FIELD_MAX], name[FIELD_MAX];
	enum cid_field field;

	if (need_channel(ch, "CALLERID", err) < 0 || cid_field(args, &field, err) < 0)
		return -1;
	px_channel_get_caller(ch, num, sizeof(num), name, sizeof(name));
	switch (field) {
	case CID_NUM:
		snprintf(buf, size, "%s", num);
		break;
	case CID_NAME:
		snprintf(buf, size, "%s", name);
		break;
	case CID_ALL:
		if (name[0] && num[0])
			snprintf(buf, size, "\"%s\" <%s>", name, num);
		else if (name[0])
			snprintf(buf, size, "\"%s\"", name);
		else
			snprintf(buf, size, "%s", num);
		break;
	}
	return 0;
}

/* "Name" <num>, Name <num>, <num> or num. */
static void parse_all(char *v, char **num, char **name)
{
	char *lt = strrchr(v, '<'), *gt = lt ? strchr(lt, '>') : NULL;

	*num = *name = NULL;
	if (!lt || !gt) {
		*num = px_app_trim(v);
		return;
	}
	*gt = '\0';
	*num = px_app_trim(lt + 1);
	*lt = '\0';
	*name = px_app_trim(v);
	size_t n = strlen(*name);
	if (n >= 2 && (*name)[0] == '"' && (*name)[n - 1] == '"') {
		(*name)[n - 1] = '\0';
		(*name)++;
	}
}

static int callerid_write(px_channel *ch, const char *args, const char *value, px_err *err)
{
	char num[FIELD_MAX], name[FIELD_MAX], copy[2 * FIELD_MAX];
	enum cid_field field;
	char *n, *m;

	if (need_channel(ch, "CALLERID", err) < 0 || cid_field(args, &field, err) < 0)
		return -1;
	px_channel_get_caller(ch, num, sizeof(num), name, sizeof(name));
	switch (field) {
	case CID_NUM:
		px_channel_set_caller(ch, value, name[0] ? name : NULL);
		break;
	case CID_NAME:
		px_channel_set_caller(ch, num[0] ? num : NULL, value);
		break;
	case CID_ALL:
		snprintf(copy, sizeof(copy), "%s", value);
		parse_all(copy, &n, &m);
		px_channel_set_caller(ch, n && *n ? n : NULL, m && *m ? m : NULL);
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------- LEN */

static int len_read(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	snprintf(buf, size, "%zu", strlen(args));
	return 0;
}

/* ---------------------------------------------------------------- CUT */

/* A channel variable, or a global one when the channel has none. */
static char *variable(px_channel *ch, const char *name)
{
	for (size_t size = 1024; size <= 1024 * 1024; size *= 4) {
		char *buf = malloc(size);
		int rc;
		if (!buf)
			return NULL;
		rc = ch ? px_channel_var_get(ch, name, buf, size) : -1;
		if (rc < 0)
			rc = px_global_get(name, buf, size);
		if (rc < 0)
			buf[0] = '\0';
		if (strlen(buf) + 1 < size)
			return buf;
		free(buf);
	}
	return NULL;
}

/* Append field number i (1-based) of value split on delim to out. */
static void append_fields(const char *value, char delim, long from, long to, char *out, size_t size,
			  bool *first)
{
	long i = 1;
	const char *p = value;

	for (;;) {
		const char *end = strchr(p, delim);
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (i >= from && (to < 0 || i <= to)) {
			size_t used = strlen(out);
			if (!*first && used + 1 < size)
				out[used++] = delim, out[used] = '\0';
			*first = false;
			if (used + len >= size)
				len = size - used - 1;
			memcpy(out + used, p, len);
			out[used + len] = '\0';
		}
		if (!end || (to >= 0 && i >= to))
			break;
		p = end + 1;
		i++;
	}
}

static int cut_read(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	char *copy = strdup(args), *argv[3] = {NULL, NULL, NULL}, *value, *spec, *part;
	char delim = '-';
	bool first = true;
	int argc;

	if (!copy)
		return px_err_set(err, "out of memory");
	argc = px_app_split_args(copy, argv, 3);
	if (argc < 3 || !*px_app_trim(argv[0])) {
		free(copy);
		return px_err_set(err, "CUT: syntax is CUT(varname,char-delim,range-spec)");
	}
	if (argv[1][0])
		delim = argv[1][0];
	value = variable(ch, px_app_trim(argv[0]));
	if (!value) {
		free(copy);
		return px_err_set(err, "out of memory");
	}
	buf[0] = '\0';
	spec = px_app_trim(argv[2]);
	while ((part = strsep(&spec, "&"))) {
		long from, to;
		char *dash, *end;

		part = px_app_trim(part);
		if (!*part)
			continue;
		dash = strchr(part, '-');
		if (!dash) {
			from = to = strtol(part, &end, 10);
			if (*end || from < 1)
				goto bad;
		} else {
			*dash = '\0';
			from = *part ? strtol(part, &end, 10) : 1;
			if (*part && (*end || from < 1))
				goto bad;
			to = dash[1] ? strtol(dash + 1, &end, 10) : -1;
			if (dash[1] && (*end || to < from))
				goto bad;
		}
		append_fields(value, delim, from, to, buf, size, &first);
	}
	free(value);
	free(copy);
	return 0;
bad:
	free(value);
	free(copy);
	return px_err_set(err, "CUT: bad range '%s' (use 2, 2-4, 2-, -3 or 1&3)", args);
}

/* ---------------------------------------------------------------- IF */

static int if_read(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	const char *q = strchr(args, '?'), *iftrue, *iffalse = NULL;
	char cond[1024];
	size_t n;

	if (!q)
		return px_err_set(err, "IF: syntax is IF(<expr>?[<true>][:<false>])");
	n = (size_t)(q - args);
	if (n >= sizeof(cond))
		n = sizeof(cond) - 1;
	memcpy(cond, args, n);
	cond[n] = '\0';
	iftrue = q + 1;
	iffalse = strchr(iftrue, ':');
	if (px_app_condition_true(cond)) {
		n = iffalse ? (size_t)(iffalse - iftrue) : strlen(iftrue);
		snprintf(buf, size, "%.*s", (int)n, iftrue);
	} else {
		snprintf(buf, size, "%s", iffalse ? iffalse + 1 : "");
	}
	return 0;
}

/* ---------------------------------------------------------------- GLOBAL */

static int global_name(const char *args, char *name, size_t size, px_err *err)
{
	snprintf(name, size, "%s", args);
	char *t = px_app_trim(name);
	memmove(name, t, strlen(t) + 1);
	if (!name[0])
		return px_err_set(err, "GLOBAL: a variable name is needed");
	return 0;
}

static int global_read(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	char name[256];

	if (global_name(args, name, sizeof(name), err) < 0)
		return -1;
	if (px_global_get(name, buf, size) < 0)
		buf[0] = '\0';
	return 0;
}

static int global_write(px_channel *ch, const char *args, const char *value, px_err *err)
{
	char name[256];

	if (global_name(args, name, sizeof(name), err) < 0)
		return -1;
	px_global_set(name, value);
	return 0;
}

/* ---------------------------------------------------------------- ENV */

static int env_read(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	const char *v = getenv(args);

	snprintf(buf, size, "%s", v ? v : "");
	return 0;
}

/* ---------------------------------------------------------------- the table */

static const struct px_func builtin_funcs[] = {
	{
		.name = "CALLERID",
		.synopsis = "Gets or sets the caller ID of the channel",
		.syntax = "CALLERID(num|name|all)",
		.description = "Reads or writes a part of the channel's caller identity:\n"
			       "  num   the number (\"number\" is accepted too)\n"
			       "  name  the name\n"
			       "  all   both, as \"Name\" <number> (only the number when there is\n"
			       "        no name); written the same way, or as a bare number.\n"
			       "Written before Dial, the caller ID is what the called phones see.",
		.read = callerid_read,
		.write = callerid_write,
	},
	{
		.name = "CUT",
		.synopsis = "Slices a variable's value into fields and returns some",
		.syntax = "CUT(varname,char-delim,range-spec)",
		.description =
			"Splits the value of the variable varname (a channel variable, or a\n"
			"global one when the channel has none) on the character char-delim\n"
			"('-' when empty) and returns the fields of range-spec, joined by\n"
			"the same character. Fields count from 1; range-spec is a field (2),\n"
			"a range (2-4), an open range (2- or -3), or several joined by '&'\n"
			"(1&3).",
		.read = cut_read,
	},
	{
		.name = "ENV",
		.synopsis = "Gets an environment variable of the daemon",
		.syntax = "ENV(envname)",
		.description =
			"Returns the value of the environment variable envname of plexusd, or\n"
			"an empty string. It cannot be written: changing the environment of\n"
			"a running multi-threaded daemon is not safe.",
		.read = env_read,
	},
	{
		.name = "GLOBAL",
		.synopsis = "Gets or sets a global variable",
		.syntax = "GLOBAL(varname)",
		.description = "Reads or writes the global variable varname, shared by every\n"
			       "channel. A channel variable of the same name hides it from the\n"
			       "dialplan's plain variable reads, not from GLOBAL().",
		.read = global_read,
		.write = global_write,
	},
	{
		.name = "IF",
		.synopsis = "Chooses one of two values by a condition",
		.syntax = "IF(expr?[true][:false])",
		.description = "Returns true when expr is true, false otherwise (either may be\n"
			       "empty). As in Asterisk, an empty expr is false, a number is true\n"
			       "when it is not 0, and any other text is true.",
		.read = if_read,
	},
	{
		.name = "LEN",
		.synopsis = "Returns the length of its argument",
		.syntax = "LEN(string)",
		.description = "Returns the number of bytes in string.",
		.read = len_read,
	},
};

#define NBUILTINS (sizeof(builtin_funcs) / sizeof(builtin_funcs[0]))

int px_func_builtin_register(px_err *err)
{
	for (size_t i = 0; i < NBUILTINS; i++) {
		if (px_func_register(NULL, &builtin_funcs[i], err) < 0) {
			while (i-- > 0)
				px_func_unregister(&builtin_funcs[i]);
			return -1;
		}
	}
	return 0;
}

void px_func_builtin_unregister(void)
{
	for (size_t i = 0; i < NBUILTINS; i++)
		px_func_unregister(&builtin_funcs[i]);
	px_globals_clear();
}
