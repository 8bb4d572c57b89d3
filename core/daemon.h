/*
 * The daemon's state shared between main() and the core commands: its
 * settings, its configuration paths, and the queue of stop and reload
 * requests that the main thread carries out.
 */
#ifndef PLEXUS_DAEMON_H
#define PLEXUS_DAEMON_H

#include <plexus/core.h>
#include <plexus/error.h>

#include "settings.h"

/* Set once at start-up, before any thread runs. */
void px_daemon_init(const char *config_dir, const char *main_config);
/* Take ownership of s as the running settings (the old ones are freed). */
void px_daemon_set_settings(struct px_settings *s);
/* The running settings; stable until the next successful reload, which
 * only happens under px_daemon_lock. */
const struct px_settings *px_daemon_settings(void);
void px_daemon_lock(void);
void px_daemon_unlock(void);
void px_daemon_shutdown(void);

/* Re-read plexus.conf and reload every module. A bad plexus.conf keeps the
 * running settings and is reported in err (modules are still reloaded). */
int px_core_reload(px_err *err);
/* Apply sounds.conf of the configuration directory (the defaults when
 * there is none); a bad one is refused and the running settings kept. */
int px_daemon_configure_sounds(px_err *err);

/* An fd that becomes readable when a stop or reload was requested. */
int px_daemon_request_fd(void);
enum px_daemon_request { PX_REQ_NONE, PX_REQ_RELOAD, PX_REQ_STOP_NOW, PX_REQ_STOP_GRACEFULLY };
/* Take the most urgent pending request (stop before reload). */
enum px_daemon_request px_daemon_take_request(void);

#endif
