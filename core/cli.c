/*
 * The command registry: every console command, core or module, is an entry
 * made from a px_cli_command table row. This file splits command lines into
 * words, finds the entry that matches the most words, runs its handler while
 * the owning module is marked busy, and answers "help" and tab completion
 * from the same entries.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <plexus/log.h>

#include "cli_internal.h"
#include "loader.h"

struct cli_entry {
	const struct px_cli_command *cmd;
	px_module *owner;
	px_module_resource *res; /* tracking handle while owned by a module */
	char **words;            /* cmd->words split; a word may hold "a|b" */
	int nwords;
	struct cli_entry *next;
};

struct px_cli_completion {
	const char *prefix;
	char **items;
	size_t n, cap;
};

static pthread_rwlock_t registry_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct cli_entry *entries; /* sorted by words */

/* ---- words ---- */

int px_cli_split(const char *line, char ***argv_out)
{
	char **argv = NULL;
	int argc = 0, cap = 0;
	const char *p = line;

	for (;;) {
		char *word;
		size_t len = 0;
		bool quoted = false;

		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		word = malloc(strlen(p) + 1);
		if (!word)
			goto fail;
		while (*p && (quoted || !isspace((unsigned char)*p))) {
			if (*p == '"') {
				quoted = !quoted;
				p++;
			} else if (*p == '\\' && p[1]) {
				word[len++] = p[1];
				p += 2;
			} else {
				word[len++] = *p++;
			}
		}
		word[len] = '\0';
		if (quoted) {
			free(word);
			goto fail;
		}
		if (argc + 2 > cap) {
			int ncap = cap ? cap * 2 : 8;
			char **n = realloc(argv, (size_t)ncap * sizeof(*n));
			if (!n) {
				free(word);
				goto fail;
			}
			argv = n;
			cap = ncap;
		}
		argv[argc++] = word;
	}
	if (!argv) {
		argv = calloc(1, sizeof(*argv));
		if (!argv)
			return -1;
	}
	argv[argc] = NULL;
	*argv_out = argv;
	return argc;
fail:
	px_cli_free_words(argc, argv);
	return -1;
}

void px_cli_free_words(int argc, char **argv)
{
	if (!argv)
		return;
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}

/* Take the next alternative of a pattern word ("a|b|c") into word; *p
 * advances past it. False when there is none left. */
static bool next_alternative(const char **p, char *word, size_t size)
{
	const char *bar;
	size_t len;

	if (!*p)
		return false;
	bar = strchr(*p, '|');
	len = bar ? (size_t)(bar - *p) : strlen(*p);
	if (len >= size)
		len = size - 1;
	memcpy(word, *p, len);
	word[len] = '\0';
	*p = bar ? bar + 1 : NULL;
	return true;
}

/* Does typed match pattern, a word or "alt1|alt2"? */
static bool word_matches(const char *pattern, const char *typed)
{
	char word[64];

	for (const char *p = pattern; next_alternative(&p, word, sizeof(word));)
		if (!strcasecmp(word, typed))
			return true;
	return false;
}

static int entry_compare(const struct cli_entry *a, const struct cli_entry *b)
{
	return strcasecmp(a->cmd->words, b->cmd->words);
}

/* ---- registration ---- */

static void entry_free(struct cli_entry *e)
{
	px_cli_free_words(e->nwords, e->words);
	free(e);
}

/* Caller holds the write lock. */
static void entry_unlink(struct cli_entry *e)
{
	for (struct cli_entry **pp = &entries; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			return;
		}
	}
}

/* Release callback for the loader: the module unloaded with this command
 * still registered. */
static void entry_release(void *obj)
{
	struct cli_entry *e = obj;

	pthread_rwlock_wrlock(&registry_lock);
	e->res = NULL;
	entry_unlink(e);
	pthread_rwlock_unlock(&registry_lock);
	entry_free(e);
}

/* Do two pattern words accept a common word ("a|b" and "b|c" do)? */
static bool words_overlap(const char *a, const char *b)
{
	char word[64];

	for (const char *p = a; next_alternative(&p, word, sizeof(word));)
		if (word_matches(b, word))
			return true;
	return false;
}

/* An entry that some typed command would match as well as ne: same number
 * of words, and at every position the alternatives share a word. */
static struct cli_entry *find_same_words(const struct cli_entry *ne)
{
	for (struct cli_entry *e = entries; e; e = e->next) {
		int i;
		if (e->nwords != ne->nwords)
			continue;
		for (i = 0; i < e->nwords; i++)
			if (!words_overlap(e->words[i], ne->words[i]))
				break;
		if (i == e->nwords)
			return e;
	}
	return NULL;
}

int px_cli_register(px_module *owner, const struct px_cli_command *cmds, size_t n, px_err *err)
{
	size_t done = 0;

	for (; done < n; done++) {
		const struct px_cli_command *cmd = &cmds[done];
		struct cli_entry *e = calloc(1, sizeof(*e));

		if (!e) {
			px_err_set(err, "out of memory");
			goto fail;
		}
		e->cmd = cmd;
		e->owner = owner;
		e->nwords = cmd->words ? px_cli_split(cmd->words, &e->words) : -1;
		if (e->nwords <= 0 || !cmd->handler || !cmd->summary || !cmd->usage) {
			px_err_set(err, "console command '%s' is incomplete",
				   cmd->words ? cmd->words : "(null)");
			if (e->nwords < 0)
				e->nwords = 0;
			entry_free(e);
			goto fail;
		}
		pthread_rwlock_wrlock(&registry_lock);
		if (find_same_words(e)) {
			pthread_rwlock_unlock(&registry_lock);
			px_err_set(err, "console command '%s' is already registered", cmd->words);
			entry_free(e);
			goto fail;
		}
		struct cli_entry **pp = &entries;
		while (*pp && entry_compare(*pp, e) < 0)
			pp = &(*pp)->next;
		e->next = *pp;
		*pp = e;
		if (owner)
			e->res = px_module_track(owner, "console command", entry_release, e);
		pthread_rwlock_unlock(&registry_lock);
	}
	return 0;
fail:
	px_cli_unregister(cmds, done);
	return -1;
}

void px_cli_unregister(const struct px_cli_command *cmds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct cli_entry *found = NULL;

		pthread_rwlock_wrlock(&registry_lock);
		for (struct cli_entry *e = entries; e; e = e->next) {
			if (e->cmd == &cmds[i]) {
				found = e;
				break;
			}
		}
		if (found) {
			entry_unlink(found);
			if (found->res)
				px_module_untrack(found->res);
		}
		pthread_rwlock_unlock(&registry_lock);
		if (found)
			entry_free(found);
	}
}

void px_cli_registry_shutdown(void)
{
	pthread_rwlock_wrlock(&registry_lock);
	while (entries) {
		struct cli_entry *e = entries;
		entries = e->next;
		if (e->res)
			px_module_untrack(e->res);
		entry_free(e);
	}
	pthread_rwlock_unlock(&registry_lock);
}

/* ---- output ---- */

void px_cli_write(px_cli *cli, const char *data, size_t len)
{
	if (cli && cli->write && len)
		cli->write(cli->ctx, data, len);
}

void px_cli_printf(px_cli *cli, const char *fmt, ...)
{
	char stackbuf[512];
	char *buf = stackbuf;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(stackbuf, sizeof(stackbuf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(stackbuf)) {
		buf = malloc((size_t)n + 1);
		if (!buf)
			return;
		va_start(ap, fmt);
		vsnprintf(buf, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	px_cli_write(cli, buf, (size_t)n);
	if (buf != stackbuf)
		free(buf);
}

uid_t px_cli_uid(const px_cli *cli)
{
	return cli->uid;
}

pid_t px_cli_pid(const px_cli *cli)
{
	return cli->pid;
}

enum px_role px_cli_role(const px_cli *cli)
{
	return cli->role == PX_ROLE_NONE ? PX_ROLE_ADMIN : cli->role;
}

const char *px_role_name(enum px_role role)
{
	switch (role) {
	case PX_ROLE_MONITOR:
		return "monitor";
	case PX_ROLE_OPERATOR:
		return "operator";
	case PX_ROLE_ADMIN:
		return "admin";
	default:
		return "none";
	}
}

enum px_role px_cli_command_role(const struct px_cli_command *cmd)
{
	char **words;
	int n;
	enum px_role role = PX_ROLE_ADMIN;

	if (cmd->role != PX_ROLE_NONE)
		return cmd->role;
	n = px_cli_split(cmd->words, &words);
	for (int i = 0; i < n; i++) {
		if (word_matches(words[i], "show") ||
		    (i == 0 && n == 1 && !strcasecmp(words[0], "help")))
			role = PX_ROLE_MONITOR;
	}
	px_cli_free_words(n < 0 ? 0 : n, n < 0 ? NULL : words);
	return role;
}

/* ---- lookup and execution ---- */

/* The entry matching the most leading words of argv. Caller holds a lock. */
static struct cli_entry *find_entry(int argc, char **argv)
{
	struct cli_entry *best = NULL;

	for (struct cli_entry *e = entries; e; e = e->next) {
		int i;
		if (e->nwords > argc)
			continue;
		for (i = 0; i < e->nwords; i++)
			if (!word_matches(e->words[i], argv[i]))
				break;
		if (i == e->nwords && (!best || e->nwords > best->nwords))
			best = e;
	}
	return best;
}

enum px_role px_cli_line_role(const char *line, char *words, size_t size)
{
	char **argv;
	int argc = px_cli_split(line, &argv);
	struct cli_entry *e;
	enum px_role role = PX_ROLE_NONE;

	if (size)
		words[0] = '\0';
	if (argc <= 0) {
		px_cli_free_words(argc < 0 ? 0 : argc, argc < 0 ? NULL : argv);
		return PX_ROLE_NONE;
	}
	pthread_rwlock_rdlock(&registry_lock);
	e = find_entry(argc, argv);
	if (e) {
		role = px_cli_command_role(e->cmd);
		if (size)
			snprintf(words, size, "%s", e->cmd->words);
	}
	pthread_rwlock_unlock(&registry_lock);
	px_cli_free_words(argc, argv);
	return role;
}

enum px_cli_status px_cli_execute(px_cli *cli, const char *line)
{
	char **argv;
	int argc = px_cli_split(line, &argv);
	struct cli_entry *e;
	const struct px_cli_command *cmd;
	px_module *owner;
	enum px_cli_status st;

	if (argc < 0) {
		px_cli_printf(cli, "Unterminated quote in command line\n");
		return PX_CLI_SHOWUSAGE;
	}
	if (argc == 0) {
		px_cli_free_words(argc, argv);
		return PX_CLI_SUCCESS;
	}
	pthread_rwlock_rdlock(&registry_lock);
	e = find_entry(argc, argv);
	cmd = e ? e->cmd : NULL;
	if (cmd && px_cli_command_role(cmd) > px_cli_role(cli)) {
		enum px_role need = px_cli_command_role(cmd);
		char words[128];
		snprintf(words, sizeof(words), "%s", cmd->words);
		pthread_rwlock_unlock(&registry_lock);
		px_cli_printf(cli,
			      "Permission denied: '%s' needs the %s role (this console is %s)\n",
			      words, px_role_name(need), px_role_name(px_cli_role(cli)));
		px_cli_free_words(argc, argv);
		return PX_CLI_DENIED;
	}
	owner = e ? e->owner : NULL;
	if (owner)
		px_module_busy_enter(owner);
	pthread_rwlock_unlock(&registry_lock);
	if (!cmd) {
		px_cli_printf(cli,
			      "No such command '%s' (type 'help %s' for other possible commands)\n",
			      line, argv[0]);
		px_cli_free_words(argc, argv);
		return PX_CLI_NOCOMMAND;
	}
	st = cmd->handler(cli, argc, argv);
	if (st == PX_CLI_SHOWUSAGE)
		px_cli_printf(cli, "%s\n", cmd->usage);
	if (owner)
		px_module_busy_leave(owner);
	px_cli_free_words(argc, argv);
	return st;
}

struct capture {
	char *buf;
	size_t len, cap;
};

static void capture_write(void *ctx, const char *data, size_t len)
{
	struct capture *c = ctx;

	if (c->len + len + 1 > c->cap) {
		size_t ncap = c->cap ? c->cap : 256;
		while (ncap < c->len + len + 1)
			ncap *= 2;
		char *n = realloc(c->buf, ncap);
		if (!n)
			return;
		c->buf = n;
		c->cap = ncap;
	}
	memcpy(c->buf + c->len, data, len);
	c->len += len;
	c->buf[c->len] = '\0';
}

enum px_cli_status px_cli_run_capture(const char *line, char **output)
{
	struct capture c = {0};
	px_cli cli = {.write = capture_write, .ctx = &c, .uid = getuid(), .pid = getpid()};
	enum px_cli_status st = px_cli_execute(&cli, line);

	if (!c.buf)
		c.buf = strdup("");
	*output = c.buf;
	return st;
}

/* ---- completion ---- */

void px_cli_complete_add(px_cli_completion *c, const char *candidate)
{
	if (strncasecmp(candidate, c->prefix, strlen(c->prefix)) != 0)
		return;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		char **n = realloc(c->items, ncap * sizeof(*n));
		if (!n)
			return;
		c->items = n;
		c->cap = ncap;
	}
	c->items[c->n] = strdup(candidate);
	if (c->items[c->n])
		c->n++;
}

/* Offer each alternative of a pattern word. */
static void add_alternatives(px_cli_completion *c, const char *pattern)
{
	char word[64];

	for (const char *p = pattern; next_alternative(&p, word, sizeof(word));)
		px_cli_complete_add(c, word);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Complete word pos of argv against the registry: command words first, then
 * the argument completer of a command whose words are all typed. */
static void complete_words(px_cli_completion *c, int argc, char **argv, int pos)
{
	for (struct cli_entry *e = entries; e; e = e->next) {
		int i;
		for (i = 0; i < pos && i < e->nwords; i++)
			if (!word_matches(e->words[i], argv[i]))
				break;
		if (i < pos && i < e->nwords)
			continue;
		if (pos < e->nwords)
			add_alternatives(c, e->words[pos]);
		else if (e->cmd->complete)
			e->cmd->complete(c, argc, argv, pos);
	}
}

char *px_cli_complete(px_cli *cli, const char *line)
{
	px_cli_completion c = {0};
	char **argv;
	int argc = px_cli_split(line, &argv);
	size_t len = strlen(line);
	char *out;
	size_t total = 1;

	(void)cli;
	if (argc < 0)
		return strdup("");
	/* After a trailing blank the word to complete is a new, empty one. */
	if (argc == 0 || isspace((unsigned char)line[len - 1])) {
		char **n = realloc(argv, (size_t)(argc + 2) * sizeof(*n));
		if (!n) {
			px_cli_free_words(argc, argv);
			return strdup("");
		}
		argv = n;
		argv[argc] = strdup("");
		argv[++argc] = NULL;
	}
	c.prefix = argv[argc - 1];
	pthread_rwlock_rdlock(&registry_lock);
	complete_words(&c, argc, argv, argc - 1);
	pthread_rwlock_unlock(&registry_lock);

	if (c.n)
		qsort(c.items, c.n, sizeof(*c.items), compare_strings);
	for (size_t i = 0; i < c.n; i++)
		total += strlen(c.items[i]) + 1;
	out = malloc(total);
	if (out) {
		size_t used = 0;
		out[0] = '\0';
		for (size_t i = 0; i < c.n; i++) {
			if (i && !strcmp(c.items[i], c.items[i - 1]))
				continue;
			used += (size_t)sprintf(out + used, "%s%s", used ? "\n" : "", c.items[i]);
		}
	}
	for (size_t i = 0; i < c.n; i++)
		free(c.items[i]);
	free(c.items);
	px_cli_free_words(argc, argv);
	return out;
}

/* ---- help ---- */

static bool entry_has_prefix(const struct cli_entry *e, int argc, char **argv)
{
	if (argc > e->nwords)
		return false;
	for (int i = 0; i < argc; i++)
		if (!word_matches(e->words[i], argv[i]))
			return false;
	return true;
}

enum px_cli_status px_cli_help(px_cli *cli, int argc, char **argv)
{
	int nwant = argc - 1;
	char **want = argv + 1;
	int shown = 0;
	struct cli_entry *exact = NULL;

	pthread_rwlock_rdlock(&registry_lock);
	for (struct cli_entry *e = entries; e; e = e->next)
		if (nwant && e->nwords == nwant && entry_has_prefix(e, nwant, want))
			exact = e;
	if (exact) {
		px_cli_printf(cli, "%s\n", exact->cmd->usage);
		pthread_rwlock_unlock(&registry_lock);
		return PX_CLI_SUCCESS;
	}
	for (struct cli_entry *e = entries; e; e = e->next) {
		if (!entry_has_prefix(e, nwant, want))
			continue;
		px_cli_printf(cli, "%-36s %s\n", e->cmd->words, e->cmd->summary);
		shown++;
	}
	pthread_rwlock_unlock(&registry_lock);
	if (!shown) {
		px_cli_printf(cli, "No such command '");
		for (int i = 0; i < nwant; i++)
			px_cli_printf(cli, "%s%s", i ? " " : "", want[i]);
		px_cli_printf(cli, "'\n");
		return PX_CLI_FAILURE;
	}
	return PX_CLI_SUCCESS;
}

/* "help" completes command words, as if "help" were not typed. */
void px_cli_help_complete(px_cli_completion *c, int argc, char **argv, int pos)
{
	/* Called with the registry read lock held by px_cli_complete. */
	complete_words(c, argc - 1, argv + 1, pos - 1);
}
