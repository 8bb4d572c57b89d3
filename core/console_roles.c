/*
 * console.conf: which users and groups get which console role, and how
 * much memory the consoles' event queues may hold. Parsed into an
 * immutable table swapped whole on reload (a bad file keeps the running
 * one); resolving a peer's role reads the table under a lock. User and
 * group names are turned into ids when the file is read, outside the
 * lock: NSS (LDAP, sssd ...) may block for seconds, and every console
 * that connects resolves its role under that lock. A name that does not
 * exist then matches nobody until the next reload (a warning says so).
 *
 *   [general]
 *   default_role = none    ; users in no list (none, monitor, operator, admin)
 *   [users]
 *   alice = operator       ; a user name or a numeric uid
 *   [groups]
 *   plexus-ops = operator  ; a group name or a numeric gid
 *   [events]
 *   queue_kb = 4096        ; one console's queued events (event_internal.h)
 *   total_kb = 65536       ; all consoles' queued events
 *   event_gather_ms = 50   ; how long a streaming console lets events gather
 *   event_nice = 10        ; a streaming console thread's nice value (SCHED_BATCH)
 *
 * Resolution: a user's own entry decides alone (it may lower even root);
 * otherwise the highest of: admin for root and for the daemon's own uid,
 * the roles of the peer's groups, and default_role. Without console.conf
 * root and the daemon's uid are admin and everyone else who can open the
 * socket is monitor.
 */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <plexus/config.h>
#include <plexus/core.h>
#include <plexus/log.h>

#include "console_roles.h"
#include "event_internal.h"

#define ROLES_FILE "console.conf"

struct role_entry {
	bool resolved;    /* id is known: numeric, or the name was found */
	unsigned long id; /* uid or gid */
	char name[64];
	enum px_role role;
};

struct roles {
	bool from_file;
	enum px_role default_role;
	struct role_entry *users, *groups;
	size_t nusers, ngroups;
	size_t queue_bytes, total_bytes; /* [events]: the event queues' memory budget */
	int gather_ms;                   /* [events] event_gather_ms */
	int nice;                        /* [events] event_nice */
};

static pthread_mutex_t roles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct roles *current;
static unsigned generation = 1;
/* Read by every streaming console at each batch: no lock for it. */
static atomic_int gather_ms = PX_EVENT_GATHER_MS_DEFAULT;
static atomic_int stream_nice = PX_EVENT_NICE_DEFAULT;

static void roles_free(struct roles *r)
{
	if (!r)
		return;
	free(r->users);
	free(r->groups);
	free(r);
}

static const char *const role_names[] = {"none", "monitor", "operator", "admin", NULL};

/* The uid (users) or gid (groups) of a name, looked up now. */
static bool lookup_id(const char *name, bool group, unsigned long *id)
{
	char buf[4096];

	if (group) {
		struct group gr, *res = NULL;
		if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || !res)
			return false;
		*id = (unsigned long)res->gr_gid;
	} else {
		struct passwd pw, *res = NULL;
		if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res)
			return false;
		*id = (unsigned long)res->pw_uid;
	}
	return true;
}

static int parse_entries(const px_config_section *s, bool group, struct role_entry **out, size_t *n,
			 px_err *err)
{
	size_t count = 0;

	for (const px_config_var *v = s ? px_config_vars(s) : NULL; v; v = v->next)
		count++;
	*out = calloc(count ? count : 1, sizeof(**out));
	if (!*out)
		return px_err_set(err, "out of memory");
	*n = 0;
	for (const px_config_var *v = s ? px_config_vars(s) : NULL; v; v = v->next) {
		struct role_entry *e = &(*out)[(*n)++];
		char *end;
		int idx;

		if (px_config_var_enum(v, role_names, &idx, err) < 0)
			return -1;
		e->role = (enum px_role)idx;
		errno = 0;
		e->id = strtoul(v->name, &end, 10);
		e->resolved = !errno && end != v->name && !*end;
		snprintf(e->name, sizeof(e->name), "%s", v->name);
		if (!e->resolved && !(e->resolved = lookup_id(v->name, group, &e->id)))
			px_log_warning("%s:%d: no %s '%s': the entry matches nobody", v->file,
				       v->line, group ? "group" : "user", v->name);
	}
	return 0;
}

/* [events] queue_kb, total_kb: the memory budget of queued events;
 * event_gather_ms: the consoles' batching period; event_nice: their
 * priority while they stream. */
static int parse_events(const px_config_section *s, struct roles *r, px_err *err)
{
	for (const px_config_var *v = s ? px_config_vars(s) : NULL; v; v = v->next) {
		long long kb;

		if (!strcasecmp(v->name, "queue_kb")) {
			if (px_config_var_int(v, 16, 1 << 20, &kb, err) < 0)
				return -1;
			r->queue_bytes = (size_t)kb << 10;
		} else if (!strcasecmp(v->name, "total_kb")) {
			if (px_config_var_int(v, 64, 1 << 24, &kb, err) < 0)
				return -1;
			r->total_bytes = (size_t)kb << 10;
		} else if (!strcasecmp(v->name, "event_gather_ms")) {
			long long ms;
			if (px_config_var_int(v, 0, PX_EVENT_GATHER_MS_MAX, &ms, err) < 0)
				return -1;
			r->gather_ms = (int)ms;
		} else if (!strcasecmp(v->name, "event_nice")) {
			long long nice;
			if (px_config_var_int(v, 0, 19, &nice, err) < 0)
				return -1;
			r->nice = (int)nice;
		} else {
			return px_err_set(
				err,
				"%s:%d: unknown key '%s' in [events] (queue_kb, total_kb, "
				"event_gather_ms, event_nice)",
				v->file, v->line, v->name);
		}
	}
	return 0;
}

static int roles_parse(struct roles **out, px_err *err)
{
	struct roles *r = calloc(1, sizeof(*r));
	char path[4096];
	px_config *cfg = NULL;
	const px_config_section *s;
	int idx;

	if (!r)
		return px_err_set(err, "out of memory");
	r->default_role = PX_ROLE_MONITOR;
	r->gather_ms = PX_EVENT_GATHER_MS_DEFAULT;
	r->nice = PX_EVENT_NICE_DEFAULT;
	snprintf(path, sizeof(path), "%s/%s", px_core_config_dir() ? px_core_config_dir() : ".",
		 ROLES_FILE);
	if (access(path, F_OK) != 0) {
		/* No file: the built-in defaults. */
		r->users = calloc(1, sizeof(*r->users));
		r->groups = calloc(1, sizeof(*r->groups));
		if (!r->users || !r->groups) {
			roles_free(r);
			return px_err_set(err, "out of memory");
		}
		*out = r;
		return 0;
	}
	if (px_config_load(path, &cfg, err) < 0) {
		roles_free(r);
		return -1;
	}
	r->from_file = true;
	r->default_role = PX_ROLE_NONE;
	for (s = px_config_sections(cfg); s; s = px_config_section_next(s)) {
		const char *name = px_config_section_name(s);
		if (px_config_section_is_template(s))
			continue;
		if (strcmp(name, "general") && strcmp(name, "users") && strcmp(name, "groups") &&
		    strcmp(name, "events")) {
			px_err_set(err,
				   "%s:%d: unknown section [%s] (general, users, groups, events)",
				   px_config_section_file(s), px_config_section_line(s), name);
			goto fail;
		}
	}
	s = px_config_find(cfg, "general");
	for (const px_config_var *v = s ? px_config_vars(s) : NULL; v; v = v->next) {
		if (strcasecmp(v->name, "default_role")) {
			px_err_set(err, "%s:%d: unknown key '%s' in [general]", v->file, v->line,
				   v->name);
			goto fail;
		}
		if (px_config_var_enum(v, role_names, &idx, err) < 0)
			goto fail;
		r->default_role = (enum px_role)idx;
	}
	if (parse_entries(px_config_find(cfg, "users"), false, &r->users, &r->nusers, err) < 0 ||
	    parse_entries(px_config_find(cfg, "groups"), true, &r->groups, &r->ngroups, err) < 0 ||
	    parse_events(px_config_find(cfg, "events"), r, err) < 0)
		goto fail;
	px_config_unref(cfg);
	*out = r;
	return 0;
fail:
	px_config_unref(cfg);
	roles_free(r);
	return -1;
}

static void roles_install(struct roles *r)
{
	struct roles *old;

	pthread_mutex_lock(&roles_lock);
	old = current;
	current = r;
	generation++;
	pthread_mutex_unlock(&roles_lock);
	/* 0: the defaults (no file, no [events], shutdown). */
	px_event_budget_set(r ? r->queue_bytes : 0, r ? r->total_bytes : 0);
	atomic_store(&gather_ms, r ? r->gather_ms : PX_EVENT_GATHER_MS_DEFAULT);
	atomic_store(&stream_nice, r ? r->nice : PX_EVENT_NICE_DEFAULT);
	roles_free(old);
}

int px_console_roles_load(px_err *err)
{
	struct roles *r;

	if (roles_parse(&r, err) < 0)
		return -1;
	roles_install(r);
	return 0;
}

void px_console_roles_reload(void)
{
	px_err err = {""};
	struct roles *r;

	if (roles_parse(&r, &err) < 0) {
		px_log_error("console roles: %s; keeping the running roles", err.msg);
		return;
	}
	roles_install(r);
}

void px_console_roles_shutdown(void)
{
	roles_install(NULL);
}

int px_console_event_gather_ms(void)
{
	return atomic_load_explicit(&gather_ms, memory_order_relaxed);
}

int px_console_event_nice(void)
{
	return atomic_load_explicit(&stream_nice, memory_order_relaxed);
}

unsigned px_console_roles_generation(void)
{
	unsigned g;

	pthread_mutex_lock(&roles_lock);
	g = generation;
	pthread_mutex_unlock(&roles_lock);
	return g;
}

/* Ids only: no NSS lookup happens here, under roles_lock. */
static bool entry_is(const struct role_entry *e, unsigned long id)
{
	return e->resolved && e->id == id;
}

enum px_role px_console_role_of(uid_t uid, gid_t gid, const gid_t *groups, int ngroups)
{
	enum px_role role;

	pthread_mutex_lock(&roles_lock);
	if (!current) {
		pthread_mutex_unlock(&roles_lock);
		return uid == 0 || uid == getuid() ? PX_ROLE_ADMIN : PX_ROLE_MONITOR;
	}
	for (size_t i = 0; i < current->nusers; i++) {
		if (entry_is(&current->users[i], (unsigned long)uid)) {
			role = current->users[i].role;
			pthread_mutex_unlock(&roles_lock);
			return role;
		}
	}
	role = current->default_role;
	if (uid == 0 || uid == getuid())
		role = PX_ROLE_ADMIN;
	for (size_t i = 0; i < current->ngroups; i++) {
		bool member = entry_is(&current->groups[i], (unsigned long)gid);
		for (int k = 0; k < ngroups && !member; k++)
			member = entry_is(&current->groups[i], (unsigned long)groups[k]);
		if (member && current->groups[i].role > role)
			role = current->groups[i].role;
	}
	pthread_mutex_unlock(&roles_lock);
	return role;
}
