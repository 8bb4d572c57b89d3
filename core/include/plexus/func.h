/*
 * Dialplan functions (CALLERID, LEN, CUT, IF, GLOBAL, ENV, DB ...): named
 * values a dialplan reads and writes as NAME(arguments), as in Asterisk's
 * ${CALLERID(num)} and Set(CALLERID(name)=Alice). A function is a name,
 * its documentation, and a read and an optional write callback; modules
 * register theirs (res_db registers DB), the core registers the built-in
 * ones. Registrations are recorded against the owning module and the module
 * is marked busy while its callback runs, like applications.
 *
 * Global variables, shared by every channel, live here too: GLOBAL() reads
 * and writes them, and a dialplan engine falls back to them when a channel
 * has no variable of that name.
 */
#ifndef PLEXUS_FUNC_H
#define PLEXUS_FUNC_H

#include <stdbool.h>
#include <stddef.h>

#include <plexus/channel.h>
#include <plexus/error.h>
#include <plexus/module.h>

/* The longest function name, without the parenthesis. */
#define PX_FUNC_NAME_MAX 64

struct px_func {
	const char *name;        /* "CALLERID"; looked up case-insensitively */
	const char *synopsis;    /* one line */
	const char *syntax;      /* "CALLERID(num|name|all)" */
	const char *description; /* arguments, behaviour, what it returns */
	/* Read NAME(args) into buf (size > 0; always terminated, truncated when
	 * longer). ch is NULL when no channel is at hand (console, plexus.db):
	 * a function that needs one fails then. 0, or -1 with err set. */
	int (*read)(px_channel *ch, const char *args, char *buf, size_t size, px_err *err);
	/* Write value to NAME(args); NULL for a read-only function. */
	int (*write)(px_channel *ch, const char *args, const char *value, px_err *err);
};

int px_func_register(px_module *owner, const struct px_func *f, px_err *err);
void px_func_unregister(const struct px_func *f);
bool px_func_exists(const char *name);

/* Split "NAME(args)" into its name and arguments (the text between the
 * first '(' and the last ')', which must end expr). -1 with err naming what
 * is wrong ("missing ')'", "no function name" ...). */
int px_func_parse(const char *expr, char *name, size_t name_size, const char **args,
		  size_t *args_len, px_err *err);

/* Read or write a function given as "NAME(args)". -1 with err when expr is
 * malformed, the function does not exist or is read-only, or the function
 * itself fails. */
int px_func_read(px_channel *ch, const char *expr, char *buf, size_t size, px_err *err);
int px_func_write(px_channel *ch, const char *expr, const char *value, px_err *err);

/* Global variables: get into buf (-1 when unset), set (NULL removes). */
int px_global_get(const char *name, char *buf, size_t size);
void px_global_set(const char *name, const char *value);

#endif
