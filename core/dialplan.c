/*
 * The dialplan dispatch: the one registered dialplan engine, asked whether
 * an extension exists and run on a channel's session thread, with its
 * module marked busy while it runs so it cannot be unmapped under a call.
 */
#include <plexus/dialplan.h>
#include <plexus/log.h>

#include "provider.h"

static struct px_provider_slot engine_slot = PX_PROVIDER_SLOT_INIT("dialplan engine");

int px_dialplan_register(px_module *owner, const struct px_dialplan_engine *e, px_err *err)
{
	return px_provider_set(&engine_slot, owner, e, e->name, err);
}

void px_dialplan_unregister(const struct px_dialplan_engine *e)
{
	px_provider_clear(&engine_slot, e);
}

bool px_dialplan_exists(const char *context, const char *exten, const char *callerid)
{
	px_module *owner;
	const struct px_dialplan_engine *e = px_provider_get(&engine_slot, &owner);
	bool found = e && e->exists(context, exten, callerid);

	px_provider_put(owner);
	return found;
}

bool px_dialplan_canmatch(const char *context, const char *exten, const char *callerid)
{
	px_module *owner;
	const struct px_dialplan_engine *e = px_provider_get(&engine_slot, &owner);
	bool found = e && e->canmatch && e->canmatch(context, exten, callerid);

	px_provider_put(owner);
	return found;
}

bool px_dialplan_matchmore(const char *context, const char *exten, const char *callerid)
{
	px_module *owner;
	const struct px_dialplan_engine *e = px_provider_get(&engine_slot, &owner);
	bool found = e && e->matchmore && e->matchmore(context, exten, callerid);

	px_provider_put(owner);
	return found;
}

int px_dialplan_run(px_channel *ch)
{
	px_module *owner;
	const struct px_dialplan_engine *e = px_provider_get(&engine_slot, &owner);
	char context[80], exten[80];
	int rc;

	if (!e) {
		px_log_warning("No dialplan engine is loaded; hanging up %s", px_channel_name(ch));
		return -1;
	}
	px_channel_get_dialplan(ch, context, sizeof(context), exten, sizeof(exten));
	rc = e->exec(ch, context, exten);
	px_provider_put(owner);
	return rc;
}
