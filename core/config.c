/*
 * The configuration reader (see plexus/config.h). It owns the parsing of
 * Asterisk-style .conf files (sections, templates, "(+)" appends, #include
 * with glob patterns and cycle detection), the immutable refcounted
 * px_config that keeps everything it read in one arena, the typed getters
 * that turn a variable into a bool, number, duration, choice, address or
 * list or else complain with "file:line: key: ...", and px_config_apply,
 * which fills a struct from a table of options.
 */
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <plexus/config.h>

/* Deeper nesting is surely a mistake; without a limit it would only stop at
 * the cycle check or at the file-descriptor limit. */
#define MAX_INCLUDE_DEPTH 32
/* Large enough that a typical file fits in a couple of blocks. */
#define ARENA_BLOCK_SIZE 16384
/* Messages quote at most this much of a line or value, so that a huge line
 * still gives a readable one-line complaint. */
#define QUOTE_MAX 80

/* For "'%.*s%s'": at most QUOTE_MAX characters of s, then "..." if cut. */
#define QUOTED(s) quote_len(s), (s), quote_tail(s)

struct arena_block {
	struct arena_block *next;
	size_t used;
	size_t size;
	max_align_t data[];
};

struct px_config_section {
	const char *name;
	const char *file;
	int line;
	bool is_template;
	const char **parents;
	size_t nparents;
	px_config_var *vars;
	px_config_var *last_var;
	px_config_section *next;
};

struct px_config {
	atomic_int refs;
	const char *path;
	px_config_section *sections;
	px_config_section *last_section;
	struct arena_block *arena;
};

/* One file being read; the chain of them is the include stack. */
struct include_frame {
	const char *file; /* as named in messages and in every variable */
	size_t dir_len;   /* length of the prefix of file that includes resolve against */
	char *real;       /* canonical path for the cycle check; NULL for text in memory */
	int line;         /* line being parsed */
	struct include_frame *outer;
};

struct parser {
	px_config *cfg;
	/* Section that key/value lines go to. It carries across #include in both
	 * directions, as in Asterisk: an included file may continue the current
	 * section, and a section it opens stays current after it. */
	px_config_section *current;
	struct include_frame *top;
	int depth;
	px_err *err;
};

static int quote_len(const char *s)
{
	size_t len = strlen(s);

	return len > QUOTE_MAX ? QUOTE_MAX : (int)len;
}

static const char *quote_tail(const char *s)
{
	return strlen(s) > QUOTE_MAX ? "..." : "";
}

/* ---------------------------------------------------------------- arena */

static void *arena_alloc(px_config *cfg, size_t size)
{
	const size_t align = alignof(max_align_t);
	struct arena_block *block = cfg->arena;
	void *p;

	if (size > SIZE_MAX / 2)
		return NULL;
	size = (size + align - 1) / align * align;
	if (size == 0)
		size = align;
	if (!block || block->size - block->used < size) {
		size_t block_size = size > ARENA_BLOCK_SIZE ? size : ARENA_BLOCK_SIZE;
		struct arena_block *fresh = malloc(sizeof(*fresh) + block_size);

		if (!fresh)
			return NULL;
		fresh->used = 0;
		fresh->size = block_size;
		/* An oversized request gets a block of its own behind the current
		 * one, so that the room left in the current one is still used. */
		if (block && block_size > ARENA_BLOCK_SIZE) {
			fresh->next = block->next;
			block->next = fresh;
		} else {
			fresh->next = block;
			cfg->arena = fresh;
		}
		block = fresh;
	}
	p = (char *)block->data + block->used;
	block->used += size;
	memset(p, 0, size);
	return p;
}

static char *arena_strdup(px_config *cfg, const char *s)
{
	size_t len = strlen(s);
	char *copy = arena_alloc(cfg, len + 1);

	if (copy)
		memcpy(copy, s, len + 1);
	return copy;
}

static px_config *config_new(void)
{
	px_config *cfg = calloc(1, sizeof(*cfg));

	if (cfg)
		atomic_init(&cfg->refs, 1);
	return cfg;
}

static void config_free(px_config *cfg)
{
	struct arena_block *block = cfg->arena;

	while (block) {
		struct arena_block *next = block->next;

		free(block);
		block = next;
	}
	free(cfg);
}

/* ---------------------------------------------------------------- parsing */

__attribute__((format(printf, 2, 3))) static int parse_error(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	px_err_vset(p->err, fmt, ap);
	va_end(ap);
	if (p->top)
		px_err_prefix(p->err, "%s:%d", p->top->file, p->top->line);
	return -1;
}

static char *skip_blanks(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static char *trim(char *s)
{
	char *end;

	s = skip_blanks(s);
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

/* Cut the line at the first ';' not written "\;", and turn each "\;" into
 * ';'. Other backslashes stay as they are, since values such as regular
 * expressions or Windows paths need them. */
static void strip_comment(char *line)
{
	char *in = line;
	char *out = line;

	while (*in) {
		if (in[0] == '\\' && in[1] == ';') {
			*out++ = ';';
			in += 2;
		} else if (*in == ';') {
			break;
		} else {
			*out++ = *in++;
		}
	}
	*out = '\0';
}

/* The section a "(name)" option refers to. A template is what is normally
 * meant, so one wins over a plain section of the same name; among several,
 * the latest declared wins, being the one the writer last saw. */
static const px_config_section *find_parent(const px_config *cfg, const char *name)
{
	const px_config_section *template = NULL;
	const px_config_section *plain = NULL;

	for (const px_config_section *s = cfg->sections; s; s = s->next) {
		if (strcmp(s->name, name) != 0)
			continue;
		if (s->is_template)
			template = s;
		else
			plain = s;
	}
	return template ? template : plain;
}

static px_config_section *find_last_section(const px_config *cfg, const char *name)
{
	px_config_section *found = NULL;

	for (px_config_section *s = cfg->sections; s; s = s->next)
		if (strcmp(s->name, name) == 0)
			found = s;
	return found;
}

static void append_var(px_config_section *s, px_config_var *v)
{
	if (s->last_var)
		s->last_var->next = v;
	else
		s->vars = v;
	s->last_var = v;
}

static int inherit_vars(struct parser *p, px_config_section *s, const px_config_section *parent)
{
	for (const px_config_var *v = parent->vars; v; v = v->next) {
		px_config_var *copy = arena_alloc(p->cfg, sizeof(*copy));

		if (!copy)
			return parse_error(p, "out of memory");
		*copy = *v;
		copy->inherited = true;
		copy->next = NULL;
		append_var(s, copy);
	}
	return 0;
}

/* The options of "[name](...)": "!", "+" and template names, comma-separated. */
static int parse_section_options(struct parser *p, char *options, px_config_section *s,
				 const px_config_section ***parents, bool *append)
{
	size_t max_items = 1;
	char *item = options;

	for (const char *c = options; *c; c++)
		if (*c == ',')
			max_items++;
	s->parents = arena_alloc(p->cfg, max_items * sizeof(*s->parents));
	*parents = arena_alloc(p->cfg, max_items * sizeof(**parents));
	if (!s->parents || !*parents)
		return parse_error(p, "out of memory");
	for (;;) {
		char *comma = strchr(item, ',');
		char *word;

		if (comma)
			*comma = '\0';
		word = trim(item);
		if (!*word) {
			return parse_error(p, "empty name in section options");
		} else if (strcmp(word, "!") == 0) {
			s->is_template = true;
		} else if (strcmp(word, "+") == 0) {
			*append = true;
		} else {
			/* Looked up now, before the new section is linked in, so
			 * that "[a](a)" means an earlier [a], never itself. */
			const px_config_section *parent = find_parent(p->cfg, word);

			if (!parent)
				return parse_error(p, "unknown template '%.*s%s'", QUOTED(word));
			s->parents[s->nparents] = arena_strdup(p->cfg, word);
			if (!s->parents[s->nparents])
				return parse_error(p, "out of memory");
			(*parents)[s->nparents++] = parent;
		}
		if (!comma)
			return 0;
		item = comma + 1;
	}
}

static int parse_section_header(struct parser *p, char *line)
{
	char *close = strchr(line, ']');
	char *options = NULL;
	char *name;
	char *rest;
	px_config_section *s;
	const px_config_section **parents = NULL;
	bool append = false;

	if (!close)
		return parse_error(p, "unterminated section header");
	*close = '\0';
	name = trim(line + 1);
	rest = skip_blanks(close + 1);
	if (*rest == '(') {
		char *end = strchr(rest, ')');

		if (!end)
			return parse_error(p, "unterminated section header");
		*end = '\0';
		options = rest + 1;
		rest = skip_blanks(end + 1);
	}
	if (*rest)
		return parse_error(p, "unexpected '%.*s%s' after section header", QUOTED(rest));
	if (!*name)
		return parse_error(p, "empty section name");

	s = arena_alloc(p->cfg, sizeof(*s));
	if (!s)
		return parse_error(p, "out of memory");
	if (options && parse_section_options(p, options, s, &parents, &append) < 0)
		return -1;

	if (append) {
		px_config_section *target;

		if (s->is_template || s->nparents > 0)
			return parse_error(p, "'+' cannot be combined with other section options");
		target = find_last_section(p->cfg, name);
		if (!target)
			return parse_error(p, "no section '%.*s%s' to append to", QUOTED(name));
		/* s is left unused in the arena; it is small and freed with the rest. */
		p->current = target;
		return 0;
	}

	s->name = arena_strdup(p->cfg, name);
	if (!s->name)
		return parse_error(p, "out of memory");
	s->file = p->top->file;
	s->line = p->top->line;
	for (size_t i = 0; i < s->nparents; i++)
		if (inherit_vars(p, s, parents[i]) < 0)
			return -1;
	if (p->cfg->last_section)
		p->cfg->last_section->next = s;
	else
		p->cfg->sections = s;
	p->cfg->last_section = s;
	p->current = s;
	return 0;
}

static int parse_assignment(struct parser *p, char *line)
{
	char *eq = strchr(line, '=');
	px_config_var *v;
	bool arrow;

	/* line is trimmed, so an '=' in first place means an empty key. */
	if (!eq || eq == line)
		return parse_error(p, "expected 'key = value', got '%.*s%s'", QUOTED(line));
	if (!p->current)
		return parse_error(p, "value outside of any section");
	arrow = eq[1] == '>';
	*eq = '\0';

	v = arena_alloc(p->cfg, sizeof(*v));
	if (!v)
		return parse_error(p, "out of memory");
	v->name = arena_strdup(p->cfg, trim(line));
	v->value = arena_strdup(p->cfg, trim(eq + (arrow ? 2 : 1)));
	if (!v->name || !v->value)
		return parse_error(p, "out of memory");
	v->file = p->top->file;
	v->line = p->top->line;
	v->arrow = arrow;
	append_var(p->current, v);
	return 0;
}

static int load_file(struct parser *p, const char *path, bool must_exist);

static bool has_glob_magic(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* The first len bytes of prefix, with glob's special characters escaped,
 * followed by pattern: so that only the part written in the directive acts
 * as a pattern even when the including file lives in a directory such as
 * "conf[1]". */
static char *glob_pattern(const char *prefix, size_t len, const char *pattern)
{
	char *out = malloc(2 * len + strlen(pattern) + 1);
	char *w = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (strchr("*?[\\", prefix[i]))
			*w++ = '\\';
		*w++ = prefix[i];
	}
	strcpy(w, pattern);
	return out;
}

static int include_files(struct parser *p, const char *written, bool must_exist)
{
	/* Relative names resolve against the directory of the including file;
	 * prefixing keeps the name readable in messages, unlike realpath. */
	size_t dir_len = written[0] == '/' ? 0 : p->top->dir_len;
	glob_t matches;
	char *path;
	int rc;

	if (!has_glob_magic(written)) {
		path = malloc(dir_len + strlen(written) + 1);
		if (!path)
			return parse_error(p, "out of memory");
		memcpy(path, p->top->file, dir_len);
		strcpy(path + dir_len, written);
		rc = load_file(p, path, must_exist);
		free(path);
		return rc;
	}

	path = glob_pattern(p->top->file, dir_len, written);
	if (!path)
		return parse_error(p, "out of memory");
	/* GLOB_MARK flags directories so they can be skipped; results are sorted. */
	rc = glob(path, GLOB_MARK, NULL, &matches);
	free(path);
	if (rc == GLOB_NOMATCH)
		return 0; /* like an empty conf.d directory: nothing to read */
	if (rc == GLOB_NOSPACE)
		return parse_error(p, "out of memory");
	if (rc != 0)
		return parse_error(p, "cannot read the files matching '%.*s%s'", QUOTED(written));
	for (size_t i = 0; i < matches.gl_pathc && rc == 0; i++) {
		const char *match = matches.gl_pathv[i];
		size_t len = strlen(match);

		if (len > 0 && match[len - 1] != '/')
			rc = load_file(p, match, true);
	}
	globfree(&matches);
	return rc;
}

static int parse_directive(struct parser *p, char *line)
{
	char *name = line + 1;
	char *arg = name;
	const char *directive;
	bool must_exist;
	size_t name_len;

	while (*arg && !isspace((unsigned char)*arg))
		arg++;
	name_len = (size_t)(arg - name);
	if (name_len == 7 && strncasecmp(name, "include", 7) == 0) {
		directive = "include";
		must_exist = true;
	} else if (name_len == 10 && strncasecmp(name, "tryinclude", 10) == 0) {
		/* As in Asterisk: a missing file is skipped silently. */
		directive = "tryinclude";
		must_exist = false;
	} else {
		return parse_error(p, "unknown directive '#%.*s%s'",
				   name_len > QUOTE_MAX ? QUOTE_MAX : (int)name_len, name,
				   name_len > QUOTE_MAX ? "..." : "");
	}

	arg = skip_blanks(arg);
	if (*arg == '"' || *arg == '<') {
		char closer = *arg == '"' ? '"' : '>';
		char *end = strchr(arg + 1, closer);
		char *rest;

		if (!end)
			return parse_error(p, "#%s: missing closing %c", directive, closer);
		rest = skip_blanks(end + 1);
		if (*rest)
			return parse_error(p, "#%s: unexpected '%.*s%s' after the file name",
					   directive, QUOTED(rest));
		*end = '\0';
		arg++;
	}
	if (!*arg)
		return parse_error(p, "#%s needs a file name", directive);
	return include_files(p, arg, must_exist);
}

static int parse_line(struct parser *p, char *line)
{
	strip_comment(line);
	line = trim(line);
	switch (*line) {
	case '\0':
		return 0;
	case '#':
		return parse_directive(p, line);
	case '[':
		return parse_section_header(p, line);
	default:
		return parse_assignment(p, line);
	}
}

/* text holds len bytes followed by a NUL; it is cut up in place. */
static int parse_text(struct parser *p, char *text, size_t len)
{
	char *pos = text;
	char *end = text + len;

	/* Editors on Windows like to start UTF-8 files with a byte-order mark. */
	if (len >= 3 && memcmp(pos, "\xEF\xBB\xBF", 3) == 0)
		pos += 3;
	while (pos < end) {
		char *newline = memchr(pos, '\n', (size_t)(end - pos));
		char *line_end = newline ? newline : end;

		p->top->line++;
		if (memchr(pos, '\0', (size_t)(line_end - pos)))
			return parse_error(p, "line contains a NUL byte");
		/* The '\r' of a CRLF line goes with the trailing blanks in parse_line. */
		*line_end = '\0';
		if (parse_line(p, pos) < 0)
			return -1;
		pos = line_end + 1;
	}
	return 0;
}

/* Read all of f into a NUL-terminated buffer; no line is ever truncated. */
static int read_all(FILE *f, char **out, size_t *out_len)
{
	size_t cap = 4096;
	size_t len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -1;
	for (;;) {
		size_t got;

		if (cap - len < 2) {
			char *bigger = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);

			if (!bigger) {
				free(buf);
				errno = ENOMEM;
				return -1;
			}
			buf = bigger;
			cap *= 2;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		errno = errno ? errno : EIO;
		return -1;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}

static int include_cycle_error(struct parser *p, const struct include_frame *start,
			       const char *path)
{
	const struct include_frame *chain[MAX_INCLUDE_DEPTH + 1];
	char msg[PX_ERR_MAX];
	size_t n = 0;
	size_t used = 0;

	for (const struct include_frame *f = p->top; f != start->outer; f = f->outer)
		chain[n++] = f;
	msg[0] = '\0';
	while (n-- > 0 && used < sizeof(msg)) {
		int w = snprintf(msg + used, sizeof(msg) - used, "%s -> ", chain[n]->file);

		used += w > 0 ? (size_t)w : 0;
	}
	return parse_error(p, "include cycle: %s%s", msg, path);
}

static int load_file(struct parser *p, const char *path, bool must_exist)
{
	struct include_frame frame = {0};
	const char *slash;
	struct stat st;
	char *text;
	size_t len;
	FILE *f;
	int rc;

	if (p->depth >= MAX_INCLUDE_DEPTH)
		return parse_error(p, "includes nested deeper than %d levels", MAX_INCLUDE_DEPTH);
	f = fopen(path, "re");
	if (!f) {
		if (!must_exist && errno == ENOENT)
			return 0;
		return parse_error(p, "cannot open '%s': %s", path, strerror(errno));
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		return parse_error(p, "cannot open '%s': %s", path, strerror(EISDIR));
	}
	frame.real = realpath(path, NULL);
	if (!frame.real) {
		int saved = errno;

		fclose(f);
		return parse_error(p, "cannot open '%s': %s", path, strerror(saved));
	}
	for (const struct include_frame *outer = p->top; outer; outer = outer->outer) {
		if (outer->real && strcmp(outer->real, frame.real) == 0) {
			free(frame.real);
			fclose(f);
			return include_cycle_error(p, outer, path);
		}
	}
	if (read_all(f, &text, &len) < 0) {
		int saved = errno;

		free(frame.real);
		fclose(f);
		return parse_error(p, "cannot read '%s': %s", path, strerror(saved));
	}
	fclose(f);

	frame.file = arena_strdup(p->cfg, path);
	if (!frame.file) {
		free(text);
		free(frame.real);
		return parse_error(p, "out of memory");
	}
	slash = strrchr(path, '/');
	frame.dir_len = slash ? (size_t)(slash - path) + 1 : 0;
	frame.outer = p->top;
	p->top = &frame;
	p->depth++;
	rc = parse_text(p, text, len);
	p->depth--;
	p->top = frame.outer;
	free(text);
	free(frame.real);
	return rc;
}

int px_config_load(const char *path, px_config **out, px_err *err)
{
	struct parser p = {.err = err};

	if (!path || !out)
		return px_err_set(err, "px_config_load: no path or result given");
	p.cfg = config_new();
	if (!p.cfg)
		return px_err_set(err, "out of memory");
	p.cfg->path = arena_strdup(p.cfg, path);
	if (!p.cfg->path) {
		config_free(p.cfg);
		return px_err_set(err, "out of memory");
	}
	if (load_file(&p, path, true) < 0) {
		config_free(p.cfg);
		return -1;
	}
	*out = p.cfg;
	return 0;
}

int px_config_load_string(const char *name, const char *text, px_config **out, px_err *err)
{
	struct include_frame frame = {0};
	struct parser p = {.err = err};
	size_t len;
	char *copy;
	int rc;

	if (!text || !out)
		return px_err_set(err, "px_config_load_string: no text or result given");
	if (!name)
		name = "<string>";
	len = strlen(text);
	copy = malloc(len + 1);
	p.cfg = config_new();
	if (copy)
		memcpy(copy, text, len + 1);
	if (p.cfg)
		p.cfg->path = frame.file = arena_strdup(p.cfg, name);
	if (!copy || !p.cfg || !frame.file) {
		free(copy);
		if (p.cfg)
			config_free(p.cfg);
		return px_err_set(err, "out of memory");
	}
	/* dir_len stays 0: includes resolve against the current directory. */
	p.top = &frame;
	p.depth = 1;
	rc = parse_text(&p, copy, len);
	free(copy);
	if (rc < 0) {
		config_free(p.cfg);
		return -1;
	}
	*out = p.cfg;
	return 0;
}

px_config *px_config_ref(px_config *cfg)
{
	if (cfg)
		atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
	return cfg;
}

void px_config_unref(px_config *cfg)
{
	if (cfg && atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
		config_free(cfg);
}

/* ---------------------------------------------------------------- access */

const char *px_config_path(const px_config *cfg)
{
	return cfg ? cfg->path : NULL;
}

const px_config_section *px_config_sections(const px_config *cfg)
{
	return cfg ? cfg->sections : NULL;
}

const px_config_section *px_config_section_next(const px_config_section *s)
{
	return s ? s->next : NULL;
}

const px_config_section *px_config_find(const px_config *cfg, const char *name)
{
	for (const px_config_section *s = px_config_sections(cfg); s; s = s->next)
		if (!s->is_template && strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

const char *px_config_section_name(const px_config_section *s)
{
	return s->name;
}

bool px_config_section_is_template(const px_config_section *s)
{
	return s->is_template;
}

const char *px_config_section_file(const px_config_section *s)
{
	return s->file;
}

int px_config_section_line(const px_config_section *s)
{
	return s->line;
}

const char *const *px_config_section_parents(const px_config_section *s, size_t *n)
{
	if (n)
		*n = s->nparents;
	return s->parents;
}

const px_config_var *px_config_vars(const px_config_section *s)
{
	return s ? s->vars : NULL;
}

const px_config_var *px_config_var_find(const px_config_section *s, const char *name)
{
	const px_config_var *found = NULL;

	for (const px_config_var *v = px_config_vars(s); v; v = v->next)
		if (strcasecmp(v->name, name) == 0)
			found = v;
	return found;
}

const px_config_var *px_config_var_find_next(const px_config_var *prev)
{
	if (!prev)
		return NULL;
	for (const px_config_var *v = prev->next; v; v = v->next)
		if (strcasecmp(v->name, prev->name) == 0)
			return v;
	return NULL;
}

/* ---------------------------------------------------------------- value parsers */

/*
 * Each parser takes a plain string and, on failure, puts into why only the
 * complaint about the value ("'x' is not a boolean ..."); the callers add
 * "file:line: key: " or "default of key: " in front.
 */

static int parse_bool_value(const char *s, bool *out, px_err *why)
{
	static const char *const truths[] = {"yes", "true", "on", "1"};
	static const char *const lies[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
		if (strcasecmp(s, truths[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, lies[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return px_err_set(why, "'%.*s%s' is not a boolean (yes/no, true/false, on/off, 1/0)",
			  QUOTED(s));
}

static int parse_int_value(const char *s, long long min, long long max, long long *out, px_err *why)
{
	const char *digits = s;
	long long value;
	char *end;
	int base;

	if (*digits == '+' || *digits == '-')
		digits++;
	/* strtoll would skip blanks and take an empty string as 0. */
	if (!isdigit((unsigned char)*digits))
		return px_err_set(why, "'%.*s%s' is not an integer", QUOTED(s));
	/* Base 10 unless "0x": base 0 would read "010" as octal 8, which
	 * nobody writing a config file means. */
	base = digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X') ? 16 : 10;
	errno = 0;
	value = strtoll(s, &end, base);
	if (*end)
		return px_err_set(why, "'%.*s%s' is not an integer", QUOTED(s));
	if (errno == ERANGE || value < min || value > max)
		return px_err_set(why, "'%.*s%s' is out of range %lld..%lld", QUOTED(s), min, max);
	*out = value;
	return 0;
}

enum duration_result { DURATION_OK = 0, DURATION_SYNTAX = -1, DURATION_OVERFLOW = -2 };

static enum duration_result parse_duration(const char *s, int64_t *out_ms)
{
	static const struct {
		const char *suffix;
		int64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	const char *c = s;
	int64_t factor = 1000; /* a bare number is seconds */
	int64_t value = 0;

	/* No sign: a negative duration means nothing, and "-1" as "off" is
	 * better said with 0 or a separate boolean. */
	if (!isdigit((unsigned char)*c))
		return DURATION_SYNTAX;
	for (; isdigit((unsigned char)*c); c++) {
		int digit = *c - '0';

		if (value > (INT64_MAX - digit) / 10)
			return DURATION_OVERFLOW;
		value = value * 10 + digit;
	}
	while (*c == ' ' || *c == '\t')
		c++;
	if (*c) {
		size_t i;

		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcasecmp(c, units[i].suffix) == 0)
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return DURATION_SYNTAX;
		factor = units[i].ms;
	}
	if (value > INT64_MAX / factor)
		return DURATION_OVERFLOW;
	value *= factor;
	*out_ms = value;
	return DURATION_OK;
}

/* A limit in the largest unit that states it exactly: "1h", not "3600000". */
static void format_ms(int64_t ms, char *buf, size_t size)
{
	if (ms == 0)
		snprintf(buf, size, "0");
	else if (ms % 86400000 == 0)
		snprintf(buf, size, "%lldd", (long long)(ms / 86400000));
	else if (ms % 3600000 == 0)
		snprintf(buf, size, "%lldh", (long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		snprintf(buf, size, "%lldm", (long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, size, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, size, "%lldms", (long long)ms);
}

static int parse_duration_value(const char *s, int64_t min_ms, int64_t max_ms, int64_t *out_ms,
				px_err *why)
{
	enum duration_result rc;
	int64_t ms = 0;

	rc = parse_duration(s, &ms);
	if (rc == DURATION_SYNTAX)
		return px_err_set(why,
				  "'%.*s%s' is not a duration (like 30, 250ms, 30s, 5m, 2h, 1d)",
				  QUOTED(s));
	if (rc == DURATION_OVERFLOW || ms < min_ms || ms > max_ms) {
		char min_text[32];
		char max_text[32];

		format_ms(min_ms, min_text, sizeof(min_text));
		format_ms(max_ms, max_text, sizeof(max_text));
		return px_err_set(why, "'%.*s%s' is out of range %s..%s", QUOTED(s), min_text,
				  max_text);
	}
	*out_ms = ms;
	return 0;
}

static int parse_enum_value(const char *s, const char *const *names, int *out, px_err *why)
{
	char allowed[PX_ERR_MAX / 2];
	size_t used = 0;

	if (!names)
		return px_err_set(why, "no choices given");
	for (int i = 0; names[i]; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	allowed[0] = '\0';
	for (int i = 0; names[i] && used < sizeof(allowed); i++) {
		int w = snprintf(allowed + used, sizeof(allowed) - used, "%s%s", i ? ", " : "",
				 names[i]);

		used += w > 0 ? (size_t)w : 0;
	}
	return px_err_set(why, "'%.*s%s' is not one of: %s", QUOTED(s), allowed);
}

static int parse_port(const char *s, uint16_t *out, px_err *why)
{
	unsigned long port = 0;

	if (!*s)
		return px_err_set(why, "missing port after ':'");
	for (const char *c = s; *c; c++) {
		if (!isdigit((unsigned char)*c))
			return px_err_set(why, "port '%.*s%s' is not a number", QUOTED(s));
		if (port <= 65535)
			port = port * 10 + (unsigned long)(*c - '0');
	}
	if (port < 1 || port > 65535)
		return px_err_set(why, "port '%.*s%s' is out of range 1..65535", QUOTED(s));
	*out = (uint16_t)port;
	return 0;
}

static int parse_addr_value(const char *s, uint16_t default_port, struct sockaddr_storage *out,
			    px_err *why)
{
	struct addrinfo hints = {0};
	struct addrinfo *found = NULL;
	uint16_t port = default_port;
	char *copy = strdup(s);
	bool ipv6_only = false;
	char *host = copy;
	char *port_text = NULL;
	int rc;

	if (!copy)
		return px_err_set(why, "out of memory");
	if (copy[0] == '[') {
		char *close = strchr(copy, ']');

		if (!close) {
			free(copy);
			return px_err_set(why, "'%.*s%s' lacks the closing ']'", QUOTED(s));
		}
		*close = '\0';
		host = copy + 1;
		ipv6_only = true;
		if (close[1] == ':') {
			port_text = close + 2;
		} else if (close[1]) {
			px_err_set(why, "unexpected '%.*s%s' after ']'", QUOTED(close + 1));
			free(copy);
			return -1;
		}
	} else {
		char *colon = strchr(copy, ':');

		/* One colon separates a port; more make a bare IPv6 address,
		 * which cannot carry a port without brackets. */
		if (colon && !strchr(colon + 1, ':')) {
			*colon = '\0';
			port_text = colon + 1;
		} else if (colon) {
			ipv6_only = true;
		}
	}
	if (!*host) {
		free(copy);
		return px_err_set(why, "'%.*s%s' has no host", QUOTED(s));
	}
	if (port_text && parse_port(port_text, &port, why) < 0) {
		free(copy);
		return -1;
	}

	hints.ai_family = ipv6_only ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM; /* one answer per address, not one per protocol */
	hints.ai_flags = AI_NUMERICSERV | (ipv6_only ? AI_NUMERICHOST : 0);
	rc = getaddrinfo(host, NULL, &hints, &found);
	if (rc != 0) {
		if (ipv6_only)
			px_err_set(why, "'%.*s%s' is not an IPv6 address", QUOTED(host));
		else
			px_err_set(why, "cannot resolve '%.*s%s': %s", QUOTED(host),
				   rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		free(copy);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	memcpy(out, found->ai_addr, found->ai_addrlen);
	if (found->ai_family == AF_INET6)
		((struct sockaddr_in6 *)out)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)out)->sin_port = htons(port);
	freeaddrinfo(found);
	free(copy);
	return 0;
}

static bool is_blank(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return *s == '\0';
}

/* An all-blank value is the empty list, so that "allow =" can say "none". */
static int parse_list_value(const char *s, char ***out, px_err *why)
{
	size_t count = 0;
	const char *item = s;
	char **list;

	if (!is_blank(s)) {
		count = 1;
		for (const char *c = s; *c; c++)
			if (*c == ',')
				count++;
	}
	list = calloc(count + 1, sizeof(*list));
	if (!list)
		return px_err_set(why, "out of memory");
	for (size_t i = 0; i < count; i++) {
		const char *comma = strchr(item, ',');
		const char *end = comma ? comma : item + strlen(item);
		const char *start = item;

		while (start < end && isspace((unsigned char)*start))
			start++;
		while (end > start && isspace((unsigned char)end[-1]))
			end--;
		if (start == end) {
			px_config_list_free(list);
			return px_err_set(why, "'%.*s%s' has an empty item", QUOTED(s));
		}
		list[i] = strndup(start, (size_t)(end - start));
		if (!list[i]) {
			px_config_list_free(list);
			return px_err_set(why, "out of memory");
		}
		item = comma ? comma + 1 : end;
	}
	*out = list;
	return 0;
}

/* ---------------------------------------------------------------- typed getters */

static int blame_var(const px_config_var *v, const px_err *why, px_err *err)
{
	return px_err_set(err, "%s:%d: %s: %s", v->file, v->line, v->name, why->msg);
}

int px_config_var_bool(const px_config_var *v, bool *out, px_err *err)
{
	px_err why;
	bool value;

	if (!v)
		return px_err_set(err, "no variable given");
	if (parse_bool_value(v->value, &value, &why) < 0)
		return blame_var(v, &why, err);
	*out = value;
	return 0;
}

int px_config_var_int(const px_config_var *v, long long min, long long max, long long *out,
		      px_err *err)
{
	px_err why;
	long long value;

	if (!v)
		return px_err_set(err, "no variable given");
	if (parse_int_value(v->value, min, max, &value, &why) < 0)
		return blame_var(v, &why, err);
	*out = value;
	return 0;
}

int px_config_var_duration(const px_config_var *v, int64_t min_ms, int64_t max_ms, int64_t *out_ms,
			   px_err *err)
{
	px_err why;
	int64_t value;

	if (!v)
		return px_err_set(err, "no variable given");
	if (parse_duration_value(v->value, min_ms, max_ms, &value, &why) < 0)
		return blame_var(v, &why, err);
	*out_ms = value;
	return 0;
}

int px_config_var_enum(const px_config_var *v, const char *const *names, int *out, px_err *err)
{
	px_err why;
	int value;

	if (!v)
		return px_err_set(err, "no variable given");
	if (parse_enum_value(v->value, names, &value, &why) < 0)
		return blame_var(v, &why, err);
	*out = value;
	return 0;
}

int px_config_var_addr(const px_config_var *v, uint16_t default_port, struct sockaddr_storage *out,
		       px_err *err)
{
	struct sockaddr_storage value;
	px_err why;

	if (!v)
		return px_err_set(err, "no variable given");
	if (parse_addr_value(v->value, default_port, &value, &why) < 0)
		return blame_var(v, &why, err);
	*out = value;
	return 0;
}

int px_config_var_list(const px_config_var *v, char ***out, px_err *err)
{
	px_err why;
	char **value;

	if (!v)
		return px_err_set(err, "no variable given");
	if (parse_list_value(v->value, &value, &why) < 0)
		return blame_var(v, &why, err);
	*out = value;
	return 0;
}

void px_config_list_free(char **list)
{
	if (!list)
		return;
	for (char **item = list; *item; item++)
		free(*item);
	free(list);
}

int px_parse_bool(const char *s, bool *out)
{
	return s ? parse_bool_value(s, out, NULL) : -1;
}

int px_parse_duration_ms(const char *s, int64_t *out_ms)
{
	return s && parse_duration(s, out_ms) == DURATION_OK ? 0 : -1;
}

/* ---------------------------------------------------------------- option tables */

static void *option_field(void *base, const struct px_config_option *opt)
{
	return (char *)base + opt->offset;
}

static size_t option_size(const struct px_config_option *opt)
{
	switch (opt->type) {
	case PX_CFG_STRING:
		return sizeof(char *);
	case PX_CFG_BOOL:
		return sizeof(bool);
	case PX_CFG_INT:
		return sizeof(long long);
	case PX_CFG_DURATION:
		return sizeof(int64_t);
	case PX_CFG_ENUM:
		return sizeof(int);
	case PX_CFG_ADDR:
		return sizeof(struct sockaddr_storage);
	case PX_CFG_LIST:
		return sizeof(char **);
	}
	return 0;
}

/* Mistakes in the table itself, caught before anything is written. */
static int check_option(const struct px_config_option *opt, px_err *err)
{
	if (!opt->name)
		return px_err_set(err, "option without a name");
	if (option_size(opt) == 0)
		return px_err_set(err, "option %s: unknown type %d", opt->name, (int)opt->type);
	if (opt->type == PX_CFG_ENUM && !opt->choices)
		return px_err_set(err, "option %s: no choices given", opt->name);
	if (opt->type == PX_CFG_ADDR && (opt->max < 0 || opt->max > 65535))
		return px_err_set(err, "option %s: default port %lld is out of range 0..65535",
				  opt->name, opt->max);
	return 0;
}

/* Parse text as opt says and store it in its field, releasing the string or
 * list stored there before (the field must hold NULL or one of ours). */
static int store_option(const struct px_config_option *opt, const char *text, void *base,
			px_err *why)
{
	void *field = option_field(base, opt);
	union {
		char *string;
		bool boolean;
		long long integer;
		int64_t ms;
		int index;
		struct sockaddr_storage addr;
		char **list;
	} value;
	int rc = -1;

	switch (opt->type) {
	case PX_CFG_STRING:
		value.string = strdup(text);
		rc = value.string ? 0 : px_err_set(why, "out of memory");
		break;
	case PX_CFG_BOOL:
		rc = parse_bool_value(text, &value.boolean, why);
		break;
	case PX_CFG_INT:
		rc = parse_int_value(text, opt->min, opt->max, &value.integer, why);
		break;
	case PX_CFG_DURATION:
		rc = parse_duration_value(text, opt->min, opt->max, &value.ms, why);
		break;
	case PX_CFG_ENUM:
		rc = parse_enum_value(text, opt->choices, &value.index, why);
		break;
	case PX_CFG_ADDR:
		rc = parse_addr_value(text, (uint16_t)opt->max, &value.addr, why);
		break;
	case PX_CFG_LIST:
		rc = parse_list_value(text, &value.list, why);
		break;
	}
	if (rc < 0)
		return -1;
	if (opt->type == PX_CFG_STRING || opt->type == PX_CFG_LIST) {
		char **old_list;
		char *old_string;

		if (opt->type == PX_CFG_STRING) {
			memcpy(&old_string, field, sizeof(old_string));
			free(old_string);
		} else {
			memcpy(&old_list, field, sizeof(old_list));
			px_config_list_free(old_list);
		}
	}
	memcpy(field, &value, option_size(opt));
	return 0;
}

static const struct px_config_option *find_option(const struct px_config_option *opts, size_t nopts,
						  const char *name)
{
	for (size_t i = 0; i < nopts; i++)
		if (strcasecmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

/*
 * Whatever base held before is overwritten, not released (it may well be
 * uninitialized): call px_config_options_free first to reuse a struct. On
 * failure every string and list field is left NULL, so that nothing leaks
 * and px_config_options_free stays safe to call.
 */
int px_config_apply(const px_config_section *s, const struct px_config_option *opts, size_t nopts,
		    void *base, px_err *err)
{
	px_err why;

	for (size_t i = 0; i < nopts; i++)
		if (check_option(&opts[i], err) < 0)
			return -1;
	/* Every field gets a known value first, so that store_option may
	 * release what is there and a failure can release it all. */
	for (size_t i = 0; i < nopts; i++)
		memset(option_field(base, &opts[i]), 0, option_size(&opts[i]));
	for (size_t i = 0; i < nopts; i++) {
		if (opts[i].def && store_option(&opts[i], opts[i].def, base, &why) < 0) {
			px_config_options_free(opts, nopts, base);
			return px_err_set(err, "default of %s: %s", opts[i].name, why.msg);
		}
	}
	/* Inherited variables come first, so own values override them, and
	 * a repeated key ends up with its last value. */
	for (const px_config_var *v = px_config_vars(s); v; v = v->next) {
		const struct px_config_option *opt = find_option(opts, nopts, v->name);

		if (!opt) {
			px_config_options_free(opts, nopts, base);
			return px_err_set(err, "%s:%d: unknown option '%s' in [%s]", v->file,
					  v->line, v->name, s->name);
		}
		if (store_option(opt, v->value, base, &why) < 0) {
			px_config_options_free(opts, nopts, base);
			return blame_var(v, &why, err);
		}
	}
	return 0;
}

void px_config_options_free(const struct px_config_option *opts, size_t nopts, void *base)
{
	for (size_t i = 0; i < nopts; i++) {
		void *field = option_field(base, &opts[i]);
		char **list;
		char *string;

		if (opts[i].type == PX_CFG_STRING) {
			memcpy(&string, field, sizeof(string));
			free(string);
			string = NULL;
			memcpy(field, &string, sizeof(string));
		} else if (opts[i].type == PX_CFG_LIST) {
			memcpy(&list, field, sizeof(list));
			px_config_list_free(list);
			list = NULL;
			memcpy(field, &list, sizeof(list));
		}
	}
}
