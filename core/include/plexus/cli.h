/*
 * Console commands. A module (or the core) declares its commands in a
 * table: the words that name the command, a one-line summary, the usage
 * text, the handler and an optional completer for arguments. The console's
 * "help" and its tab completion are answered from these tables, so a command
 * exists in exactly one place.
 *
 * In the words, "a|b" accepts either word at that position ("core set
 * verbose|debug"). The handler receives every word the user typed; extra
 * words after the fixed ones are its arguments. It writes its output with
 * px_cli_printf and returns PX_CLI_SUCCESS, PX_CLI_FAILURE or
 * PX_CLI_SHOWUSAGE (the console then prints the usage and fails).
 */
#ifndef PLEXUS_CLI_H
#define PLEXUS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <plexus/error.h>
#include <plexus/module.h>

typedef struct px_cli px_cli;
typedef struct px_cli_completion px_cli_completion;

enum px_cli_status {
	PX_CLI_SUCCESS = 0,
	PX_CLI_FAILURE = 1,
	PX_CLI_SHOWUSAGE = 2,
	PX_CLI_NOCOMMAND = 3, /* no command matches: set by the dispatcher only */
	PX_CLI_DENIED = 5,    /* the console's role does not allow it: dispatcher only */
};

typedef enum px_cli_status (*px_cli_handler)(px_cli *cli, int argc, char **argv);
/* Offer candidates for word number pos (0-based) of argv, whose typed
 * prefix is argv[pos]; candidates not starting with it are filtered out. */
typedef void (*px_cli_completer)(px_cli_completion *c, int argc, char **argv, int pos);

/*
 * Roles of console users (console.conf), each allowed what the ones below
 * it are: monitor watches (events, show commands), operator steers calls
 * (actions: originate, hangup, redirect ...), admin runs everything (module
 * and core commands). PX_ROLE_NONE may not use the console at all.
 */
enum px_role {
	PX_ROLE_NONE = 0,
	PX_ROLE_MONITOR,
	PX_ROLE_OPERATOR,
	PX_ROLE_ADMIN,
};
const char *px_role_name(enum px_role role); /* "monitor" ... */

struct px_cli_command {
	const char *words;   /* "module unload" */
	const char *summary; /* one line for "help" */
	const char *usage;   /* full usage, first line "Usage: ..." */
	px_cli_handler handler;
	px_cli_completer complete; /* NULL: no argument completion */
	/* The role the command needs. PX_ROLE_NONE (left out): classed by its
	 * words, "help" and any command with the word "show" need monitor,
	 * every other command admin. */
	enum px_role role;
};

/* Register n commands owned by owner (NULL for the core). The table must
 * outlive the registration. Fails if a command's words are already taken. */
int px_cli_register(px_module *owner, const struct px_cli_command *cmds, size_t n, px_err *err);
void px_cli_unregister(const struct px_cli_command *cmds, size_t n);

void px_cli_printf(px_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void px_cli_write(px_cli *cli, const char *data, size_t len);

/* Who runs the command: the peer credentials of the console, or the
 * daemon's own for commands run internally. */
uid_t px_cli_uid(const px_cli *cli);
pid_t px_cli_pid(const px_cli *cli);
/* The role of whoever runs the command (admin for internal runs). */
enum px_role px_cli_role(const px_cli *cli);

void px_cli_complete_add(px_cli_completion *c, const char *candidate);

#endif
