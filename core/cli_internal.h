/*
 * The command registry seen from the core: running a command line and
 * answering completion, with the output going to a sink the caller chooses
 * (a console connection, a buffer in tests, the log).
 */
#ifndef PLEXUS_CLI_INTERNAL_H
#define PLEXUS_CLI_INTERNAL_H

#include <plexus/cli.h>

struct px_console; /* console_server.h; NULL when not run from a console */

struct px_cli {
	void (*write)(void *ctx, const char *data, size_t len); /* where output goes */
	void *ctx;
	struct px_console *console; /* the console that runs the command, or NULL */
	uid_t uid;
	pid_t pid;
	enum px_role role; /* what the runner may do; PX_ROLE_NONE is read as admin */
};

/* The role a command needs (its own, or classed by its words). */
enum px_role px_cli_command_role(const struct px_cli_command *cmd);
/* The role needed by the command a line would run; PX_ROLE_NONE when no
 * command matches. words gets the matched command's words ("" if none). */
enum px_role px_cli_line_role(const char *line, char *words, size_t size);

/* Split line into words (blanks separate; "double quotes" group, \ escapes).
 * Returns argc, or -1 on an unterminated quote. argv is allocated; free with
 * px_cli_free_words. */
int px_cli_split(const char *line, char ***argv);
void px_cli_free_words(int argc, char **argv);

/* Run one command line. An empty line succeeds silently. A command that
 * needs a role above cli->role is refused (PX_CLI_DENIED), with a message
 * naming the role it needs. */
enum px_cli_status px_cli_execute(px_cli *cli, const char *line);

/* Candidates for the last word of line (empty after a trailing blank):
 * a newline-separated, sorted, duplicate-free list (caller frees). */
char *px_cli_complete(px_cli *cli, const char *line);

/* Run a command and collect its output into a new string (tests, internal use). */
enum px_cli_status px_cli_run_capture(const char *line, char **output);

/* "help [words]" and its completion, registered with the core commands. */
enum px_cli_status px_cli_help(px_cli *cli, int argc, char **argv);
void px_cli_help_complete(px_cli_completion *c, int argc, char **argv, int pos);

/* Core commands (core_commands.c) are registered at start-up. */
int px_core_commands_register(px_err *err);
void px_core_commands_unregister(void);
void px_cli_registry_shutdown(void);

#endif
