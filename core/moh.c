/*
 * The music-on-hold hook (plexus/moh.h): the one registered provider and
 * the channels it plays to. The registry's lock is held across the
 * provider's start and stop, so that unregistering (which stops every
 * channel under the same lock) leaves no call in flight into a module that
 * is about to be unmapped; starts and stops are rare (a hold, an
 * application) and quick (attach or detach a source).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/log.h>
#include <plexus/moh.h>

struct moh_listener {
	px_channel *ch; /* our reference */
	void *handle;   /* the provider's */
	struct moh_listener *next;
};

static pthread_mutex_t moh_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct px_moh_provider *provider;
static px_module_resource *provider_res;
static struct moh_listener *listeners;

/* Unlink ch's entry (moh_lock held); NULL when it has none. */
static struct moh_listener *take_listener(px_channel *ch)
{
	for (struct moh_listener **pp = &listeners; *pp; pp = &(*pp)->next) {
		if ((*pp)->ch == ch) {
			struct moh_listener *l = *pp;
			*pp = l->next;
			return l;
		}
	}
	return NULL;
}

static void stop_listener(struct moh_listener *l)
{
	provider->stop(l->ch, l->handle);
	px_verbose(3, "%s: music on hold stopped", px_channel_name(l->ch));
	px_channel_unref(l->ch);
	free(l);
}

/* Stop every listener and forget p; the resource that tracked it, for the
 * caller to untrack (or NULL). */
static px_module_resource *drop_provider(const struct px_moh_provider *p)
{
	px_module_resource *res = NULL;

	pthread_mutex_lock(&moh_lock);
	if (provider == p) {
		while (listeners) {
			struct moh_listener *l = listeners;
			listeners = l->next;
			stop_listener(l);
		}
		provider = NULL;
		res = provider_res;
		provider_res = NULL;
	}
	pthread_mutex_unlock(&moh_lock);
	return res;
}

/* The module unloaded without unregistering: the loader untracks. */
static void provider_release(void *obj)
{
	drop_provider(obj);
}

int px_moh_register(px_module *owner, const struct px_moh_provider *p, px_err *err)
{
	if (!p || !p->start || !p->stop)
		return px_err_set(err, "a music-on-hold provider needs start and stop");
	pthread_mutex_lock(&moh_lock);
	if (provider) {
		pthread_mutex_unlock(&moh_lock);
		return px_err_set(err, "a music-on-hold provider is already registered");
	}
	provider = p;
	provider_res =
		px_module_track(owner, "music-on-hold provider", provider_release, (void *)p);
	pthread_mutex_unlock(&moh_lock);
	return 0;
}

void px_moh_unregister(const struct px_moh_provider *p)
{
	px_module_untrack(drop_provider(p));
}

int px_moh_start(px_channel *ch, const char *music_class, px_err *err)
{
	struct moh_listener *l;
	px_err local = {""};

	if (!err)
		err = &local;
	if (!music_class || !*music_class)
		music_class = "default";
	l = calloc(1, sizeof(*l));
	if (!l)
		return px_err_set(err, "out of memory");
	pthread_mutex_lock(&moh_lock);
	if (!provider) {
		pthread_mutex_unlock(&moh_lock);
		free(l);
		px_debug(1, "%s: no music-on-hold provider (res_musiconhold not loaded): silence",
			 px_channel_name(ch));
		return px_err_set(err, "no music-on-hold provider is loaded");
	}
	struct moh_listener *old = take_listener(ch);
	if (old)
		stop_listener(old);
	if (provider->start(ch, music_class, &l->handle, err) < 0) {
		pthread_mutex_unlock(&moh_lock);
		free(l);
		return -1;
	}
	l->ch = px_channel_ref(ch);
	l->next = listeners;
	listeners = l;
	pthread_mutex_unlock(&moh_lock);
	px_verbose(3, "%s: music on hold, class %s", px_channel_name(ch), music_class);
	return 0;
}

void px_moh_stop(px_channel *ch)
{
	pthread_mutex_lock(&moh_lock);
	struct moh_listener *l = take_listener(ch);
	if (l)
		stop_listener(l);
	pthread_mutex_unlock(&moh_lock);
}

bool px_moh_playing(px_channel *ch)
{
	bool found = false;

	pthread_mutex_lock(&moh_lock);
	for (struct moh_listener *l = listeners; l && !found; l = l->next)
		found = l->ch == ch;
	pthread_mutex_unlock(&moh_lock);
	return found;
}

void px_moh_suggested_class(px_channel *ch, char *buf, size_t size)
{
	if (px_channel_var_get(ch, PX_MOH_SUGGEST_VAR, buf, size) < 0 || !buf[0])
		snprintf(buf, size, "default");
}
