/*
 * Configuration files in the Asterisk style. A file holds sections
 * ("[name]"), each an ordered list of "key = value" or "key => value" lines;
 * ';' starts a comment (write "\;" for a literal semicolon). "[name](!)"
 * declares a template, "[name](tpl1,tpl2)" inherits the variables of its
 * parents in that order, "[name](!,tpl)" is a template that inherits, and
 * "[name](+)" appends to a section declared earlier. "#include file" (path
 * relative to the including file, glob patterns allowed) pulls in another
 * file; an include cycle is an error. Every variable remembers its file and
 * line so that any later complaint about it names its place, and typed
 * getters report "file:line: message" for a value they cannot accept.
 *
 * A loaded px_config is immutable and refcounted, so a reload can build a
 * new one next to the running one and swap only when it is good.
 */
#ifndef PLEXUS_CONFIG_H
#define PLEXUS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <plexus/error.h>

typedef struct px_config px_config;
typedef struct px_config_section px_config_section;

typedef struct px_config_var {
	const char *name;                 /* key, surrounding blanks trimmed */
	const char *value;                /* value, trimmed, comment removed */
	const char *file;                 /* file it was read from */
	int line;                         /* 1-based line in that file */
	bool arrow;                       /* written "key => value" */
	bool inherited;                   /* copied from a template */
	const struct px_config_var *next; /* next variable of the section */
} px_config_var;

/* Parse path and everything it includes. On failure *out is untouched and
 * err holds "file:line: message". */
int px_config_load(const char *path, px_config **out, px_err *err);
/* Parse text held in memory (tests, generated config); name is used as the
 * file name in messages, and #include is resolved relative to the current
 * directory. */
int px_config_load_string(const char *name, const char *text, px_config **out, px_err *err);
px_config *px_config_ref(px_config *cfg);
void px_config_unref(px_config *cfg);

/* The main file the config was loaded from. */
const char *px_config_path(const px_config *cfg);

/* Sections in file order, templates included (see px_config_section_is_template). */
const px_config_section *px_config_sections(const px_config *cfg);
const px_config_section *px_config_section_next(const px_config_section *s);
/* First non-template section with that name (case-sensitive), or NULL. */
const px_config_section *px_config_find(const px_config *cfg, const char *name);

const char *px_config_section_name(const px_config_section *s);
bool px_config_section_is_template(const px_config_section *s);
const char *px_config_section_file(const px_config_section *s);
int px_config_section_line(const px_config_section *s);
/* Names of the templates the section inherits from, in order; *n gets the count. */
const char *const *px_config_section_parents(const px_config_section *s, size_t *n);

/* All variables, inherited ones first (in parent order), then the section's
 * own in file order. Repeated keys are all kept. */
const px_config_var *px_config_vars(const px_config_section *s);
/* The last variable with that name (case-insensitive): own values override
 * inherited ones, later parents override earlier ones. NULL if absent. */
const px_config_var *px_config_var_find(const px_config_section *s, const char *name);
/* Next variable after prev with the same name, for repeated keys. */
const px_config_var *px_config_var_find_next(const px_config_var *prev);

/*
 * Typed parsing of one variable. Each returns 0 and fills *out, or returns -1
 * with err = "file:line: <name>: message" and leaves *out untouched.
 */
int px_config_var_bool(const px_config_var *v, bool *out, px_err *err);
int px_config_var_int(const px_config_var *v, long long min, long long max, long long *out,
		      px_err *err);
/* Durations: "30" (seconds), "250ms", "30s", "5m", "2h", "1d"; result in ms. */
int px_config_var_duration(const px_config_var *v, int64_t min_ms, int64_t max_ms, int64_t *out_ms,
			   px_err *err);
/* One of names[] (NULL-terminated, case-insensitive); *out is its index. */
int px_config_var_enum(const px_config_var *v, const char *const *names, int *out, px_err *err);
/* "1.2.3.4", "1.2.3.4:5060", "[::1]:5060", "::1", "localhost:5060";
 * default_port when the value has none. Host names are resolved. */
int px_config_var_addr(const px_config_var *v, uint16_t default_port, struct sockaddr_storage *out,
		       px_err *err);
/* Comma-separated list, items trimmed, empty items refused. *out is a
 * NULL-terminated array to release with px_config_list_free. */
int px_config_var_list(const px_config_var *v, char ***out, px_err *err);
void px_config_list_free(char **list);

/* Parsers that take a plain string, for values that do not come from a file
 * (console arguments): 0 and *out filled, or -1 when s is not acceptable. */
int px_parse_bool(const char *s, bool *out);
int px_parse_duration_ms(const char *s, int64_t *out_ms);

/*
 * Declarative options: a table of the keys a section may hold, their type,
 * default and limits, and where each goes in a struct. px_config_apply fills
 * the struct from defaults and then from the section (NULL: defaults only);
 * an unknown key, or a bad value, is an error naming file:line. Strings and
 * lists are allocated; px_config_options_free releases them. The struct's
 * previous contents are overwritten without being freed; after a failure
 * every string and list field is NULL and nothing is left allocated.
 */
enum px_config_type {
	PX_CFG_STRING,   /* char *                    */
	PX_CFG_BOOL,     /* bool                      */
	PX_CFG_INT,      /* long long, within min..max */
	PX_CFG_DURATION, /* int64_t ms, within min..max */
	PX_CFG_ENUM,     /* int index into choices    */
	PX_CFG_ADDR,     /* struct sockaddr_storage, default port in max */
	PX_CFG_LIST,     /* char ** (NULL-terminated) */
};

struct px_config_option {
	const char *name; /* key in the section */
	enum px_config_type type;
	const char *def;    /* default, written as in a file; NULL: none */
	long long min, max; /* INT/DURATION limits (ms for durations); ADDR: max = default port */
	const char *const *choices; /* ENUM names, NULL-terminated */
	size_t offset;              /* offsetof(struct, field) */
	const char *help;           /* one line, for docs and console */
};

int px_config_apply(const px_config_section *s, const struct px_config_option *opts, size_t nopts,
		    void *base, px_err *err);
void px_config_options_free(const struct px_config_option *opts, size_t nopts, void *base);

#endif
