/*
 * plexus --switchboard: a terminal view of plexusd's registrations and
 * live calls, refreshed from the event stream, with keys to hang up,
 * redirect and originate calls (docs/switchboard.md).
 */
#ifndef PLEXUS_CONSOLE_SWITCHBOARD_H
#define PLEXUS_CONSOLE_SWITCHBOARD_H

/* Run until the user quits (or a signal); reconnects whenever plexusd goes
 * away. Returns the exit status. */
int px_switchboard_run(const char *socket_path);

#endif
