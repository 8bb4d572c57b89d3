/*
 * The registry of dialplan functions: registration recorded against the
 * owning module, case-insensitive lookup, parsing "NAME(args)", and
 * reading or writing a function on a channel while its module is marked
 * busy, so a module cannot be unmapped under a running callback.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <plexus/func.h>
#include <plexus/log.h>

#include "func_internal.h"
#include "loader.h"

struct func_entry {
	const struct px_func *func;
	px_module *owner;
	px_module_resource *res;
	struct func_entry *next;
};

static pthread_rwlock_t funcs_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct func_entry *funcs; /* sorted by name */

static void func_release(void *obj)
{
	struct func_entry *e = obj;

	pthread_rwlock_wrlock(&funcs_lock);
	for (struct func_entry **pp = &funcs; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	pthread_rwlock_unlock(&funcs_lock);
	free(e);
}

static bool valid_name(const char *name)
{
	size_t n = 0;

	for (const char *p = name; *p; p++, n++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return false;
	return n > 0 && n < PX_FUNC_NAME_MAX;
}

int px_func_register(px_module *owner, const struct px_func *f, px_err *err)
{
	struct func_entry *e, **pp;

	if (!f->name || !f->read || !f->synopsis)
		return px_err_set(err, "function %s is incomplete", f->name ? f->name : "(null)");
	if (!valid_name(f->name))
		return px_err_set(err, "function name '%s' is not letters, digits and '_'",
				  f->name);
	pthread_rwlock_wrlock(&funcs_lock);
	for (e = funcs; e; e = e->next) {
		if (!strcasecmp(e->func->name, f->name)) {
			pthread_rwlock_unlock(&funcs_lock);
			return px_err_set(err, "function %s is already registered", f->name);
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		pthread_rwlock_unlock(&funcs_lock);
		return px_err_set(err, "out of memory");
	}
	e->func = f;
	e->owner = owner;
	for (pp = &funcs; *pp && strcasecmp((*pp)->func->name, f->name) < 0; pp = &(*pp)->next)
		;
	e->next = *pp;
	*pp = e;
	e->res = px_module_track(owner, "function", func_release, e);
	pthread_rwlock_unlock(&funcs_lock);
	return 0;
}

void px_func_unregister(const struct px_func *f)
{
	struct func_entry *found = NULL;

	pthread_rwlock_wrlock(&funcs_lock);
	for (struct func_entry **pp = &funcs; *pp; pp = &(*pp)->next) {
		if ((*pp)->func == f) {
			found = *pp;
			*pp = found->next;
			break;
		}
	}
	pthread_rwlock_unlock(&funcs_lock);
	if (found) {
		px_module_untrack(found->res);
		free(found);
	}
}

/* The function called name with its module marked busy, or NULL. */
static const struct px_func *func_enter(const char *name, px_module **owner)
{
	const struct px_func *f = NULL;

	*owner = NULL;
	pthread_rwlock_rdlock(&funcs_lock);
	for (struct func_entry *e = funcs; e; e = e->next) {
		if (!strcasecmp(e->func->name, name)) {
			f = e->func;
			*owner = e->owner;
			if (e->owner)
				px_module_busy_enter(e->owner);
			break;
		}
	}
	pthread_rwlock_unlock(&funcs_lock);
	return f;
}

static void func_leave(px_module *owner)
{
	if (owner)
		px_module_busy_leave(owner);
}

bool px_func_exists(const char *name)
{
	bool found = false;

	pthread_rwlock_rdlock(&funcs_lock);
	for (struct func_entry *e = funcs; e && !found; e = e->next)
		found = !strcasecmp(e->func->name, name);
	pthread_rwlock_unlock(&funcs_lock);
	return found;
}

int px_func_parse(const char *expr, char *name, size_t name_size, const char **args,
		  size_t *args_len, px_err *err)
{
	const char *open = strchr(expr, '(');
	size_t len = strlen(expr), n;

	if (!open)
		return px_err_set(err, "'%s' is not a function: no '('", expr);
	n = (size_t)(open - expr);
	if (n == 0)
		return px_err_set(err, "'%s': no function name before '('", expr);
	if (n >= name_size || n >= PX_FUNC_NAME_MAX)
		return px_err_set(err, "'%.*s...': function name too long", 20, expr);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)expr[i]) && expr[i] != '_')
			return px_err_set(err, "'%s': '%.*s' is not a function name", expr, (int)n,
					  expr);
	if (expr[len - 1] != ')') {
		const char *close = strrchr(expr, ')');
		if (close && close > open)
			return px_err_set(err, "'%s': text after the closing ')'", expr);
		return px_err_set(err, "'%s': missing ')'", expr);
	}
	memcpy(name, expr, n);
	name[n] = '\0';
	*args = open + 1;
	*args_len = len - n - 2;
	return 0;
}

/* Parse expr and find its function (busy); *args is a new string. */
static const struct px_func *func_prepare(const char *expr, char **args, px_module **owner,
					  px_err *err)
{
	char name[PX_FUNC_NAME_MAX];
	const char *a;
	size_t alen;
	const struct px_func *f;

	if (px_func_parse(expr, name, sizeof(name), &a, &alen, err) < 0)
		return NULL;
	f = func_enter(name, owner);
	if (!f) {
		px_err_set(err, "no such function '%s'", name);
		return NULL;
	}
	*args = strndup(a, alen);
	if (!*args) {
		func_leave(*owner);
		px_err_set(err, "out of memory");
		return NULL;
	}
	return f;
}

int px_func_read(px_channel *ch, const char *expr, char *buf, size_t size, px_err *err)
{
	px_module *owner;
	char *args = NULL;
	const struct px_func *f;
	int rc;

	if (!size)
		return px_err_set(err, "no room for the value");
	buf[0] = '\0';
	f = func_prepare(expr, &args, &owner, err);
	if (!f)
		return -1;
	rc = f->read(ch, args, buf, size, err);
	if (rc < 0 && !err->msg[0])
		px_err_set(err, "%s failed", f->name);
	buf[size - 1] = '\0';
	func_leave(owner);
	free(args);
	return rc < 0 ? -1 : 0;
}

int px_func_write(px_channel *ch, const char *expr, const char *value, px_err *err)
{
	px_module *owner;
	char *args = NULL;
	const struct px_func *f;
	int rc;

	f = func_prepare(expr, &args, &owner, err);
	if (!f)
		return -1;
	if (!f->write) {
		rc = px_err_set(err, "function %s cannot be written", f->name);
	} else {
		rc = f->write(ch, args, value ? value : "", err);
		if (rc < 0 && !err->msg[0])
			px_err_set(err, "%s failed", f->name);
	}
	func_leave(owner);
	free(args);
	return rc < 0 ? -1 : 0;
}

void px_func_foreach(void (*fn)(void *ctx, const struct px_func *f), void *ctx)
{
	pthread_rwlock_rdlock(&funcs_lock);
	for (struct func_entry *e = funcs; e; e = e->next)
		fn(ctx, e->func);
	pthread_rwlock_unlock(&funcs_lock);
}
