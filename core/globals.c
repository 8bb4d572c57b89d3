/*
 * Global variables of the dialplan: one table shared by every channel,
 * read and written by GLOBAL() and read by a dialplan engine when a
 * channel has no variable of the name asked for. Names are case-sensitive,
 * as channel variables are.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/func.h>

#include "func_internal.h"

struct global_var {
	struct global_var *next;
	char *name;
	char *value;
};

static pthread_rwlock_t globals_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct global_var *globals;

int px_global_get(const char *name, char *buf, size_t size)
{
	int rc = -1;

	pthread_rwlock_rdlock(&globals_lock);
	for (struct global_var *v = globals; v; v = v->next) {
		if (!strcmp(v->name, name)) {
			if (size)
				snprintf(buf, size, "%s", v->value);
			rc = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&globals_lock);
	return rc;
}

static void var_free(struct global_var *v)
{
	free(v->name);
	free(v->value);
	free(v);
}

void px_global_set(const char *name, const char *value)
{
	struct global_var **pp, *v, *old = NULL, *fresh = NULL;

	if (value) {
		fresh = calloc(1, sizeof(*fresh));
		if (!fresh || !(fresh->name = strdup(name)) || !(fresh->value = strdup(value))) {
			if (fresh)
				var_free(fresh);
			return;
		}
	}
	pthread_rwlock_wrlock(&globals_lock);
	for (pp = &globals; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->name, name))
			break;
	v = *pp;
	if (v) {
		old = v;
		*pp = v->next;
	}
	if (fresh) {
		fresh->next = globals;
		globals = fresh;
	}
	pthread_rwlock_unlock(&globals_lock);
	if (old)
		var_free(old);
}

void px_globals_clear(void)
{
	struct global_var *list;

	pthread_rwlock_wrlock(&globals_lock);
	list = globals;
	globals = NULL;
	pthread_rwlock_unlock(&globals_lock);
	while (list) {
		struct global_var *next = list->next;
		var_free(list);
		list = next;
	}
}
