/*
 * Music on hold, as the core sees it: a hook that a module fills. The
 * core starts and stops music on a channel (a bridge whose other party put
 * this one on hold; the MusicOnHold application) without knowing where the
 * music comes from; the module that provides it (res_musiconhold) registers
 * itself as the provider, and unregistering stops every channel it plays
 * to. With no provider the channel hears silence and a debug line says
 * why. The core keeps the list of channels the provider plays to, so a
 * channel is stopped exactly once, by whoever comes first: px_moh_stop,
 * a new px_moh_start on it, or the provider going away.
 */
#ifndef PLEXUS_MOH_H
#define PLEXUS_MOH_H

#include <stdbool.h>
#include <stddef.h>

#include <plexus/channel.h>
#include <plexus/error.h>
#include <plexus/module.h>

/* The class a channel's holder suggests when it puts its peer on hold: the
 * channel variable a technology sets from its endpoint (sip.conf
 * moh_suggest). Unset: "default". */
#define PX_MOH_SUGGEST_VAR "MOH_SUGGEST"

struct px_moh_provider {
	/* Play class (never NULL) to ch: 0 with *handle its own state, or -1
	 * with err saying why (no such class, no media). Runs on the caller's
	 * thread (a session thread) with the registry's lock held: it must
	 * not call px_moh_*. */
	int (*start)(px_channel *ch, const char *music_class, void **handle, px_err *err);
	/* Stop what start began (same rules). */
	void (*stop)(px_channel *ch, void *handle);
};

/* One provider at a time; owner is the module that provides it. */
int px_moh_register(px_module *owner, const struct px_moh_provider *p, px_err *err);
/* Stops music on every channel it plays to; no call reaches p afterwards. */
void px_moh_unregister(const struct px_moh_provider *p);

/* Start music of music_class (NULL or "": "default") on ch, replacing what
 * plays there. 0 when it plays, -1 (err filled when given) when there is
 * no provider or it refused: the channel then hears nothing. */
int px_moh_start(px_channel *ch, const char *music_class, px_err *err);
/* Stop music on ch, if any. */
void px_moh_stop(px_channel *ch);
bool px_moh_playing(px_channel *ch);
/* The class ch suggests for its held peer (PX_MOH_SUGGEST_VAR, else
 * "default"), into buf. */
void px_moh_suggested_class(px_channel *ch, char *buf, size_t size);

#endif
