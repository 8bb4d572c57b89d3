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

/* How long a console streaming events lets them gather before it writes
 * them (console.conf [events] event_gather_ms): an event is on the wire at
 * most about this long after it happened. 0: written as soon as the
 * console thread is woken. */
#define PX_EVENT_GATHER_MS_DEFAULT 50
#define PX_EVENT_GATHER_MS_MAX     1000
int px_console_event_gather_ms(void);
/* The nice value of a console thread while it streams events (console.conf
 * [events] event_nice, 0..19; 0: no change), under SCHED_BATCH: its work
 * tolerates latency, the SIP and session threads' does not. */
#define PX_EVENT_NICE_DEFAULT 10
int px_console_event_nice(void);

/* The role of a peer: uid, primary gid and supplementary groups. */
enum px_role px_console_role_of(uid_t uid, gid_t gid, const gid_t *groups, int ngroups);

#endif
