/*
 * The registry of dialplan applications: registration recorded against the
 * owning module, case-insensitive lookup, running an application on a
 * channel while its module is marked busy, and the Asterisk-style splitting
 * of an application's argument string.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <plexus/app.h>
#include <plexus/log.h>

#include "app_internal.h"
#include "channel_internal.h"
#include "loader.h"

struct app_entry {
	const struct px_app *app;
	px_module *owner;
	px_module_resource *res;
	struct app_entry *next;
};

static pthread_rwlock_t apps_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct app_entry *apps;

static void app_release(void *obj)
{
	struct app_entry *e = obj;

	pthread_rwlock_wrlock(&apps_lock);
	for (struct app_entry **pp = &apps; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	pthread_rwlock_unlock(&apps_lock);
	free(e);
}

int px_app_register(px_module *owner, const struct px_app *app, px_err *err)
{
	struct app_entry *e;

	if (!app->name || !app->exec || !app->synopsis)
		return px_err_set(err, "application %s is incomplete",
				  app->name ? app->name : "(null)");
	pthread_rwlock_wrlock(&apps_lock);
	for (e = apps; e; e = e->next) {
		if (!strcasecmp(e->app->name, app->name)) {
			pthread_rwlock_unlock(&apps_lock);
			return px_err_set(err, "application %s is already registered", app->name);
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		pthread_rwlock_unlock(&apps_lock);
		return px_err_set(err, "out of memory");
	}
	e->app = app;
	e->owner = owner;
	/* Sorted by name, for listings. */
	struct app_entry **pp = &apps;
	while (*pp && strcasecmp((*pp)->app->name, app->name) < 0)
		pp = &(*pp)->next;
	e->next = *pp;
	*pp = e;
	e->res = px_module_track(owner, "application", app_release, e);
	pthread_rwlock_unlock(&apps_lock);
	return 0;
}

void px_app_unregister(const struct px_app *app)
{
	struct app_entry *found = NULL;

	pthread_rwlock_wrlock(&apps_lock);
	for (struct app_entry **pp = &apps; *pp; pp = &(*pp)->next) {
		if ((*pp)->app == app) {
			found = *pp;
			*pp = found->next;
			break;
		}
	}
	pthread_rwlock_unlock(&apps_lock);
	if (found) {
		px_module_untrack(found->res);
		free(found);
	}
}

bool px_app_exists(const char *name)
{
	bool found = false;

	pthread_rwlock_rdlock(&apps_lock);
	for (struct app_entry *e = apps; e && !found; e = e->next)
		found = !strcasecmp(e->app->name, name);
	pthread_rwlock_unlock(&apps_lock);
	return found;
}

int px_app_exec(px_channel *ch, const char *name, const char *data, px_err *err)
{
	const struct px_app *app = NULL;
	px_module *owner = NULL;
	int rc;

	pthread_rwlock_rdlock(&apps_lock);
	for (struct app_entry *e = apps; e; e = e->next) {
		if (!strcasecmp(e->app->name, name)) {
			app = e->app;
			owner = e->owner;
			if (owner)
				px_module_busy_enter(owner);
			break;
		}
	}
	pthread_rwlock_unlock(&apps_lock);
	if (!app)
		return px_err_set(err, "no such application '%s'", name);
	/* A bridge an operator asked for is carried out here, in the session,
	 * and the dialplan goes on after it (the application then returns 0).
	 * A channel sent elsewhere (redirect) runs nothing more here, and an
	 * application that returns while it is asked to leave ends the
	 * extension, so the session can take the channel where it goes. */
	if (px_channel_leaving(ch) && !px_channel_session_departs(ch)) {
		rc = -1;
	} else {
		px_verbose(3, "Executing [%s] %s(\"%s\")", px_channel_name(ch), app->name,
			   data ? data : "");
		px_channel_set_application(ch, app->name, data);
		rc = app->exec(ch, data ? data : "");
		if (px_channel_leaving(ch))
			rc = px_channel_session_departs(ch) ? 0 : -1;
	}
	if (owner)
		px_module_busy_leave(owner);
	return rc;
}

void px_app_foreach(void (*fn)(void *ctx, const struct px_app *app), void *ctx)
{
	pthread_rwlock_rdlock(&apps_lock);
	for (struct app_entry *e = apps; e; e = e->next)
		fn(ctx, e->app);
	pthread_rwlock_unlock(&apps_lock);
}

int px_app_split_args(char *data, char **argv, int max)
{
	int argc = 0, depth = 0;
	bool quoted = false;
	char *out = data, *start = data;

	if (!data || max <= 0)
		return 0;
	for (char *p = data;; p++) {
		char c = *p;
		if (c == '\\' && p[1]) {
			*out++ = *++p;
			continue;
		}
		if (c == '"') {
			quoted = !quoted;
			continue;
		}
		if (!quoted && c == '(')
			depth++;
		else if (!quoted && c == ')' && depth > 0)
			depth--;
		if (c == '\0' || (c == ',' && !quoted && depth == 0 && argc < max - 1)) {
			*out = '\0';
			argv[argc++] = start;
			if (c == '\0')
				break;
			out = p + 1;
			start = out;
			continue;
		}
		*out++ = c;
	}
	return argc;
}

char *px_app_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

bool px_app_condition_true(const char *s)
{
	int n;

	while (isspace((unsigned char)*s))
		s++;
	if (!*s)
		return false;
	if (sscanf(s, "%30d", &n) == 1)
		return n != 0;
	return true;
}
