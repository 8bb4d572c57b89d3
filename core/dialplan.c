/*
 * The dialplan dispatch: the one registered dialplan engine, asked whether
 * an extension exists and run on a channel's session thread, with its
 * module marked busy while it runs so it cannot be unmapped under a call.
 */
#include <pthread.h>
#include <stdlib.h>

#include <plexus/dialplan.h>
#include <plexus/log.h>

#include "loader.h"

static pthread_rwlock_t engine_lock = PTHREAD_RWLOCK_INITIALIZER;
static const struct px_dialplan_engine *engine;
static px_module *engine_owner;
static px_module_resource *engine_res;

static void engine_release(void *obj)
{
	pthread_rwlock_wrlock(&engine_lock);
	if (engine == obj) {
		engine = NULL;
		engine_owner = NULL;
		engine_res = NULL;
	}
	pthread_rwlock_unlock(&engine_lock);
}

int px_dialplan_register(px_module *owner, const struct px_dialplan_engine *e, px_err *err)
{
	pthread_rwlock_wrlock(&engine_lock);
	if (engine) {
		const char *name = engine->name;
		pthread_rwlock_unlock(&engine_lock);
		return px_err_set(err, "dialplan engine %s is already registered", name);
	}
	engine = e;
	engine_owner = owner;
	engine_res = px_module_track(owner, "dialplan engine", engine_release, (void *)e);
	pthread_rwlock_unlock(&engine_lock);
	return 0;
}

void px_dialplan_unregister(const struct px_dialplan_engine *e)
{
	px_module_resource *res = NULL;

	pthread_rwlock_wrlock(&engine_lock);
	if (engine == e) {
		res = engine_res;
		engine = NULL;
		engine_owner = NULL;
		engine_res = NULL;
	}
	pthread_rwlock_unlock(&engine_lock);
	px_module_untrack(res);
}

bool px_dialplan_exists(const char *context, const char *exten, const char *callerid)
{
	bool found = false;

	pthread_rwlock_rdlock(&engine_lock);
	if (engine)
		found = engine->exists(context, exten, callerid);
	pthread_rwlock_unlock(&engine_lock);
	return found;
}

int px_dialplan_run(px_channel *ch)
{
	const struct px_dialplan_engine *e;
	px_module *owner;
	char context[80], exten[80];
	int rc;

	pthread_rwlock_rdlock(&engine_lock);
	e = engine;
	owner = engine_owner;
	if (owner)
		px_module_busy_enter(owner);
	pthread_rwlock_unlock(&engine_lock);
	if (!e) {
		px_log_warning("No dialplan engine is loaded; hanging up %s", px_channel_name(ch));
		return -1;
	}
	px_channel_get_dialplan(ch, context, sizeof(context), exten, sizeof(exten));
	rc = e->exec(ch, context, exten);
	if (owner)
		px_module_busy_leave(owner);
	return rc;
}
