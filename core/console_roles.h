/*
 * Console access control: the role (plexus/cli.h) of whoever connects to
 * the console socket, from its peer credentials and console.conf. The
 * socket's owner, group and mode decide who may connect at all; the role
 * decides what a connection may do.
 */
#ifndef PLEXUS_CONSOLE_ROLES_H
#define PLEXUS_CONSOLE_ROLES_H

#include <sys/types.h>

#include <plexus/cli.h>
#include <plexus/error.h>

/* Read console.conf from the configuration directory (a missing file means
 * the defaults). At start a bad file is an error; see reload. */
int px_console_roles_load(px_err *err);
/* Re-read console.conf (core reload, SIGHUP): a bad file is logged and the
 * running roles kept. */
void px_console_roles_reload(void);
void px_console_roles_shutdown(void);
/* Bumped whenever the roles change, so consoles re-resolve theirs. */
unsigned px_console_roles_generation(void);

/* The role of a peer: uid, primary gid and supplementary groups. */
enum px_role px_console_role_of(uid_t uid, gid_t gid, const gid_t *groups, int ngroups);

#endif
