/*
 * The location service: where an endpoint (an address of record, "1001")
 * can be reached now. A registrar module (res_registrar) provides it and
 * keeps the bindings, persisted in the store; channel technologies feed it
 * the REGISTER requests they authenticated and ask it for the contacts to
 * ring. An update answers asynchronously, once its bindings are on disk, so
 * that the signalling thread never waits for the store.
 */
#ifndef PLEXUS_LOCATION_H
#define PLEXUS_LOCATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <plexus/error.h>
#include <plexus/module.h>

#define PX_AOR_MAX     64
#define PX_CONTACT_MAX 512

struct px_binding {
	char aor[PX_AOR_MAX];         /* endpoint name */
	char contact[PX_CONTACT_MAX]; /* Contact URI as the phone registered it */
	char received[160];           /* where the REGISTER came from: "udp:1.2.3.4:5060",
					 "tcp:[::1]:5070"; requests go there (NAT) */
	char user_agent[160];
	char call_id[160];
	uint32_t cseq;
	int q;                 /* 0..1000 (q=0.5 is 500); -1 when not given */
	int64_t expires_at;    /* unix time */
	int64_t registered_at; /* unix time of the last refresh */
};

struct px_register_contact {
	const char *uri; /* Contact URI */
	int expires;     /* the contact's expires parameter, -1 when absent */
	int q;           /* 0..1000, -1 when absent */
};

struct px_register_request {
	const char *aor;
	const struct px_register_contact *contacts;
	size_t ncontacts; /* 0 with !wildcard: a query for the current bindings */
	bool wildcard;    /* "Contact: *" (valid only with Expires: 0) */
	int expires;      /* the Expires header, -1 when absent */
	const char *call_id;
	uint32_t cseq;
	const char *user_agent; /* may be NULL */
	const char *received;   /* "udp:1.2.3.4:5060" */
	int max_contacts;       /* of the endpoint; the oldest binding is replaced */
	int min_expires, max_expires, default_expires;
};

struct px_register_result {
	int status;                        /* 200, 400 (bad request), 423 (too brief), 500 */
	const char *reason;                /* for logs and the status phrase of 400/500 */
	int min_expires;                   /* with 423 */
	const struct px_binding *bindings; /* current bindings after the update (200) */
	size_t nbindings;
};

/* Called exactly once per accepted update, from a registrar thread. */
typedef void (*px_register_done)(void *ctx, const struct px_register_result *res);

struct px_registrar {
	const char *name;
	/* Apply a REGISTER; 0 when done() will be called, -1 (err) when not. */
	int (*update)(const struct px_register_request *req, px_register_done done, void *ctx,
		      px_err *err);
	/* Up to max current (unexpired) bindings of aor, best q first;
	 * returns how many there are (max 0, out NULL: only counts them).
	 * Any thread, no waiting on disk. */
	size_t (*lookup)(const char *aor, struct px_binding *out, size_t max);
	/* Every current binding, of aor or (NULL) of every AOR, sorted by AOR
	 * and then best first, in a new array (*out, to free()); returns how
	 * many (*out NULL when none), -1 when memory ran out. Any thread. */
	long (*list)(const char *aor, struct px_binding **out);
};

int px_registrar_register(px_module *owner, const struct px_registrar *r, px_err *err);
void px_registrar_unregister(const struct px_registrar *r);

/* Dispatch to the registered registrar; -1 with err when there is none. */
int px_location_update(const struct px_register_request *req, px_register_done done, void *ctx,
		       px_err *err);
size_t px_location_lookup(const char *aor, struct px_binding *out, size_t max);
/* The registrar's list (above) for the console: 0 with *out (free()) and
 * *count, or -1 with err when no registrar is loaded or memory ran out. */
int px_location_list(const char *aor, struct px_binding **out, size_t *count, px_err *err);

#endif
