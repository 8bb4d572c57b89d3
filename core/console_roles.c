/*
 * console.conf: which users and groups get which console role. Parsed
 * into an immutable table swapped whole on reload (a bad file keeps the
 * running one); resolving a peer's role reads the table under a lock.
 *
 *   [general]
 *   default_role = none    ; users in no list (none, monitor, operator, admin)
 *   [users]
 *   alice = operator       ; a user name or a numeric uid
 *   [groups]
 *   plexus-ops = operator  ; a group name or a numeric gid
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <plexus/config.h>
#include <plexus/core.h>
#include <plexus/log.h>

#include "console_roles.h"

#define ROLES_FILE "console.conf"

struct role_entry {
	bool numeric;
	unsigned long id; /* uid or gid when numeric */
	char name[64];
	enum px_role role;
};

struct roles {
	bool from_file;
	enum px_role default_role;
	struct role_entry *users, *groups;
	size_t nusers, ngroups;
};

static pthread_mutex_t roles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct roles *current;
static unsigned generation = 1;

static void roles_free(struct roles *r)
{
	if (!r)
		return;
	free(r->users);
	free(r->groups);
	free(r);
}

static const char *const role_names[] = {"none", "monitor", "operator", "admin", NULL};

static int parse_entries(const px_config_section *s, struct role_entry **out, size_t *n,
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
		e->numeric = !errno && end != v->name && !*end;
		snprintf(e->name, sizeof(e->name), "%s", v->name);
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
		if (strcmp(name, "general") && strcmp(name, "users") && strcmp(name, "groups")) {
			px_err_set(err, "%s:%d: unknown section [%s] (general, users, groups)",
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
	if (parse_entries(px_config_find(cfg, "users"), &r->users, &r->nusers, err) < 0 ||
	    parse_entries(px_config_find(cfg, "groups"), &r->groups, &r->ngroups, err) < 0)
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

unsigned px_console_roles_generation(void)
{
	unsigned g;

	pthread_mutex_lock(&roles_lock);
	g = generation;
	pthread_mutex_unlock(&roles_lock);
	return g;
}

static bool user_is(const struct role_entry *e, uid_t uid, const char *name)
{
	return e->numeric ? e->id == (unsigned long)uid : (name && !strcmp(e->name, name));
}

static bool group_is(const struct role_entry *e, gid_t gid)
{
	struct group gr, *res = NULL;
	char buf[4096];

	if (e->numeric)
		return e->id == (unsigned long)gid;
	return getgrgid_r(gid, &gr, buf, sizeof(buf), &res) == 0 && res &&
	       !strcmp(res->gr_name, e->name);
}

enum px_role px_console_role_of(uid_t uid, gid_t gid, const gid_t *groups, int ngroups)
{
	struct passwd pw, *pwres = NULL;
	char buf[4096];
	const char *name = NULL;
	enum px_role role;

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwres) == 0 && pwres)
		name = pwres->pw_name;
	pthread_mutex_lock(&roles_lock);
	if (!current) {
		pthread_mutex_unlock(&roles_lock);
		return uid == 0 || uid == getuid() ? PX_ROLE_ADMIN : PX_ROLE_MONITOR;
	}
	for (size_t i = 0; i < current->nusers; i++) {
		if (user_is(&current->users[i], uid, name)) {
			role = current->users[i].role;
			pthread_mutex_unlock(&roles_lock);
			return role;
		}
	}
	role = current->default_role;
	if (uid == 0 || uid == getuid())
		role = PX_ROLE_ADMIN;
	for (size_t i = 0; i < current->ngroups; i++) {
		bool member = group_is(&current->groups[i], gid);
		for (int k = 0; k < ngroups && !member; k++)
			member = group_is(&current->groups[i], groups[k]);
		if (member && current->groups[i].role > role)
			role = current->groups[i].role;
	}
	pthread_mutex_unlock(&roles_lock);
	return role;
}
