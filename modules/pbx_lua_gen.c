/*
 * Generations of pbx_lua: turning extensions.lua into an immutable
 * generation (read, compile once, run in a first state, index the global
 * tables `extensions` and `hints` in C with every bad entry refused by its
 * place), making more Lua states of a generation from its compiled chunk,
 * and answering lookups from the index in any thread: which entry an
 * extension reaches (own extensions in Asterisk's order, then includes),
 * canmatch and matchmore, and the step-by-step account "dialplan locate"
 * prints.
 */
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include <plexus/log.h>

#include "pbx_lua.h"

/* ---------------------------------------------------------------- settings */

void pxlua_settings_free(struct pxlua_settings *set)
{
	free(set->lua_path);
	set->lua_path = NULL;
}

int pxlua_settings_copy(struct pxlua_settings *to, const struct pxlua_settings *from)
{
	*to = *from;
	to->lua_path = NULL;
	if (from->lua_path && !(to->lua_path = strdup(from->lua_path)))
		return -1;
	return 0;
}

/* ---------------------------------------------------------------- states */

void pxlua_state_close(struct pxlua_state *st)
{
	if (!st)
		return;
	if (st->L)
		lua_close(st->L);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

void pxlua_states_close(struct pxlua_state *list)
{
	while (list) {
		struct pxlua_state *next = list->next;
		pxlua_state_close(list);
		list = next;
	}
}

struct pxlua_state *pxlua_state_alloc(struct pxlua_gen *g)
{
	struct pxlua_state *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	if (pthread_mutex_init(&st->lock, NULL) != 0) {
		free(st);
		return NULL;
	}
	st->gen = g;
	st->gmt_ref = st->base_ref = st->pcmt_ref = st->sink_ref = LUA_NOREF;
	return st;
}

/* A fresh Lua state in st with the API installed, not yet running the file;
 * load is the call the making is charged to. */
static int state_open(struct pxlua_state *st, struct pxlua_call *load, px_err *err)
{
	int rc;

	*load = (struct pxlua_call){.st = st,
				    .co_ref = LUA_NOREF,
				    .env_ref = LUA_NOREF,
				    .ticks_left = -1,
				    .loading = true};
	st->running = load;
	st->L = lua_newstate(pxlua_alloc, st);
	if (!st->L) {
		st->running = NULL;
		return px_err_set(err, "out of memory");
	}
	*(struct pxlua_state **)lua_getextraspace(st->L) = st;
	/* Set once on the main thread: every coroutine inherits it. */
	lua_sethook(st->L, pxlua_count_hook, LUA_MASKCOUNT, PXLUA_HOOK_TICK);
	lua_pushcfunction(st->L, pxlua_setup_state);
	rc = lua_pcall(st->L, 0, 0, 0);
	if (rc != LUA_OK) {
		char line[PX_ERR_MAX];
		pxlua_error_line(st->L, rc, line, sizeof(line), NULL, 0);
		px_err_set(err, "cannot set up a Lua state: %s", line);
		lua_close(st->L);
		st->L = NULL;
		st->running = NULL;
		return -1;
	}
	return 0;
}

/* Close what state_open made, after a failure. */
static void state_unopen(struct pxlua_state *st)
{
	if (st->L)
		lua_close(st->L);
	st->L = NULL;
	st->running = NULL;
}

/* Run the chunk on top of the stack (the file) in st, under the limits of
 * the call load; err gets "file:line: message" on failure. */
static int state_run_chunk(struct pxlua_state *st, struct pxlua_call *load, px_err *err)
{
	lua_State *L = st->L;
	int rc;

	lua_pushcfunction(L, pxlua_msgh);
	lua_insert(L, -2);
	pxlua_limits_start(load);
	rc = lua_pcall(L, 0, 0, -2);
	pxlua_limits_stop(load);
	if (rc != LUA_OK) {
		char line[PX_ERR_MAX];
		if (load->stop == PXLUA_STOP_BUDGET)
			px_err_set(err,
				   "%s: running the file took more than %lld instructions "
				   "(instruction_limit in lua.conf)",
				   load->where[0] ? load->where : st->gen->path,
				   st->gen->set.instruction_limit);
		else if (load->stop == PXLUA_STOP_MEMORY ||
			 (rc == LUA_ERRMEM && load->refused && load->mem_limited))
			px_err_set(err,
				   "%s: running the file took more than %lld KiB "
				   "(memory_limit in lua.conf)",
				   load->where[0] ? load->where : st->gen->path,
				   st->gen->set.memory_limit_kib);
		else {
			pxlua_error_line(L, rc, line, sizeof(line), NULL, 0);
			px_err_set(err, "%s", line);
		}
		load->stop = PXLUA_STOP_NONE;
	}
	lua_settop(L, 0);
	return rc == LUA_OK ? 0 : -1;
}

static void chunk_name(const struct pxlua_gen *g, char *out, size_t size)
{
	snprintf(out, size, "@%s", g->path);
}

/* The file has run in st: freeze its globals behind the per-call table. */
static int state_freeze(struct pxlua_state *st, px_err *err)
{
	int rc;

	lua_pushcfunction(st->L, pxlua_freeze_globals);
	rc = lua_pcall(st->L, 0, 0, 0);
	if (rc != LUA_OK) {
		pxlua_error_line(st->L, rc, err->msg, sizeof(err->msg), NULL, 0);
		lua_settop(st->L, 0);
		return -1;
	}
	lua_gc(st->L, LUA_GCCOLLECT);
	__atomic_store_n(&st->mem_loaded, __atomic_load_n(&st->mem_used, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	st->running = NULL;
	return 0;
}

int pxlua_state_make(struct pxlua_state *st, px_err *err)
{
	struct pxlua_call load;
	struct pxlua_gen *g = st->gen;
	char name[4200];
	int rc;

	if (state_open(st, &load, err) < 0)
		return -1;
	chunk_name(g, name, sizeof(name));
	rc = luaL_loadbufferx(st->L, g->chunk, g->chunk_len, name, "b");
	if (rc != LUA_OK) {
		pxlua_error_line(st->L, rc, err->msg, sizeof(err->msg), NULL, 0);
		state_unopen(st);
		return -1;
	}
	if (state_run_chunk(st, &load, err) < 0 || state_freeze(st, err) < 0) {
		state_unopen(st);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- building */

static void context_free(struct pxlua_context *c)
{
	for (size_t i = 0; i < c->nexts; i++) {
		free(c->exts[i].key);
		free(c->exts[i].defined);
	}
	free(c->exts);
	for (size_t i = 0; i < c->nincludes; i++)
		free(c->includes[i]);
	free(c->includes);
	free(c->incl_idx);
	free(c->name);
}

void pxlua_gen_free(struct pxlua_gen *g)
{
	if (!g)
		return;
	pxlua_states_close(g->states);
	for (size_t i = 0; i < g->nctxs; i++)
		context_free(&g->ctxs[i]);
	free(g->ctxs);
	for (size_t i = 0; i < g->nhints; i++) {
		free(g->hints[i].context);
		free(g->hints[i].exten);
		free(g->hints[i].device);
	}
	free(g->hints);
	free(g->chunk);
	free(g->path);
	free(g->dir);
	pxlua_settings_free(&g->set);
	free(g);
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
	struct pxlua_gen *g = ud;

	(void)L;
	if (g->chunk_len + sz > g->chunk_cap) {
		size_t cap = g->chunk_cap ? g->chunk_cap : 4096;
		char *n;
		while (cap < g->chunk_len + sz)
			cap *= 2;
		n = realloc(g->chunk, cap);
		if (!n)
			return 1;
		g->chunk = n;
		g->chunk_cap = cap;
	}
	memcpy(g->chunk + g->chunk_len, p, sz);
	g->chunk_len += sz;
	return 0;
}

static char *read_file(const char *path, size_t *len, px_err *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		px_err_set(err, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t got;
		if (n == cap) {
			char *nb;
			cap = cap ? cap * 2 : 16384;
			nb = realloc(buf, cap);
			if (!nb) {
				px_err_set(err, "%s: out of memory", path);
				goto fail;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		px_err_set(err, "%s: cannot read: %s", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	*len = n;
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

static int ext_compare(const void *a, const void *b)
{
	return pxlua_ext_cmp(((const struct pxlua_ext *)a)->key,
			     ((const struct pxlua_ext *)b)->key);
}

static int context_compare(const void *a, const void *b)
{
	return strcmp(((const struct pxlua_context *)a)->name,
		      ((const struct pxlua_context *)b)->name);
}

long pxlua_context_index(const struct pxlua_gen *g, const char *name)
{
	size_t lo = 0, hi = g->nctxs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, g->ctxs[mid].name);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

static char *dup_or_raise(lua_State *L, const char *s)
{
	char *d = strdup(s);

	if (!d)
		luaL_error(L, "out of memory");
	return d;
}

static void *calloc_or_raise(lua_State *L, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		luaL_error(L, "out of memory");
	return p;
}

static size_t table_count(lua_State *L, int t)
{
	size_t n = 0;

	for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1))
		n++;
	return n;
}

/* The key at index k as text (strings and integers), into buf. */
static const char *key_text(lua_State *L, int k, char *buf, size_t size)
{
	if (lua_type(L, k) == LUA_TSTRING)
		return lua_tostring(L, k);
	if (lua_isinteger(L, k)) {
		snprintf(buf, size, "%lld", (long long)lua_tointeger(L, k));
		return buf;
	}
	return NULL;
}

static void extract_includes(lua_State *L, struct pxlua_gen *g, struct pxlua_context *c)
{
	size_t n;

	if (!lua_istable(L, -1))
		luaL_error(L,
			   "%s: extensions.%s.include is a %s; it must be a list of context names",
			   g->path, c->name, luaL_typename(L, -1));
	n = lua_rawlen(L, -1);
	c->includes = calloc_or_raise(L, n, sizeof(*c->includes));
	c->incl_idx = calloc_or_raise(L, n, sizeof(*c->incl_idx));
	for (size_t i = 1; i <= n; i++) {
		if (lua_rawgeti(L, -1, (lua_Integer)i) != LUA_TSTRING)
			luaL_error(L, "%s: extensions.%s.include[%d] is a %s, not a context name",
				   g->path, c->name, (int)i, luaL_typename(L, -1));
		c->includes[c->nincludes++] = dup_or_raise(L, lua_tostring(L, -1));
		lua_pop(L, 1);
	}
}

/* Read context c from the table at index t (raw access only). */
static void extract_context(lua_State *L, struct pxlua_gen *g, struct pxlua_context *c, int t)
{
	size_t cap = table_count(L, t);

	c->exts = calloc_or_raise(L, cap, sizeof(*c->exts));
	for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
		struct pxlua_ext *e;
		lua_Debug ar;
		const char *why, *k;
		char key[64];

		if (lua_type(L, -2) == LUA_TSTRING && !strcmp(lua_tostring(L, -2), "include")) {
			extract_includes(L, g, c);
			continue;
		}
		k = key_text(L, -2, key, sizeof(key));
		if (!k) {
			lua_pushvalue(L, -2);
			luaL_error(L,
				   "%s: extensions.%s has a key that is a %s; extensions are "
				   "strings",
				   g->path, c->name, luaL_typename(L, -1));
		}
		if ((why = pxlua_ext_check(k)) != NULL)
			luaL_error(L, "%s: extensions.%s[\"%s\"]: %s", g->path, c->name, k, why);
		if (!lua_isfunction(L, -1))
			luaL_error(L, "%s: extensions.%s[\"%s\"] is a %s, not a function", g->path,
				   c->name, k, luaL_typename(L, -1));
		e = &c->exts[c->nexts];
		e->key = dup_or_raise(L, k);
		c->nexts++;
		e->int_key = lua_type(L, -2) != LUA_TSTRING;
		e->ival = e->int_key ? lua_tointeger(L, -2) : 0;
		lua_pushvalue(L, -1);
		lua_getinfo(L, ">S", &ar);
		if (ar.linedefined > 0)
			lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
		else
			lua_pushstring(L, ar.short_src);
		e->defined = dup_or_raise(L, lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	if (c->nexts > 1)
		qsort(c->exts, c->nexts, sizeof(*c->exts), ext_compare);
	for (size_t i = 1; i < c->nexts; i++)
		if (pxlua_ext_same(c->exts[i - 1].key, c->exts[i].key))
			luaL_error(L, "%s: extensions.%s: '%s' and '%s' are the same extension",
				   g->path, c->name, c->exts[i - 1].key, c->exts[i].key);
}

/* hints = { context = { exten = "SIP/1001", ... }, ... } */
static void extract_hints(lua_State *L, struct pxlua_gen *g)
{
	size_t n = 0;
	int t;

	if (lua_getglobal(L, "hints") == LUA_TNIL)
		return;
	if (!lua_istable(L, -1))
		luaL_error(L, "%s: 'hints' is a %s; it must be a table of contexts", g->path,
			   luaL_typename(L, -1));
	t = lua_gettop(L);
	for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
		if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1))
			luaL_error(L, "%s: hints.%s must be a table of extension = \"device\"",
				   g->path, key_text(L, -2, (char[64]){0}, 64) ?: "?");
		n += table_count(L, lua_gettop(L));
	}
	g->hints = calloc_or_raise(L, n, sizeof(*g->hints));
	for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
		int c = lua_gettop(L);
		for (lua_pushnil(L); lua_next(L, c); lua_pop(L, 1)) {
			char key[64];
			const char *k = key_text(L, -2, key, sizeof(key));
			struct pxlua_hint *h;
			if (!k || lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "%s: hints.%s: each hint is extension = \"device\"",
					   g->path, lua_tostring(L, c - 1));
			h = &g->hints[g->nhints++];
			h->context = dup_or_raise(L, lua_tostring(L, c - 1));
			h->exten = dup_or_raise(L, k);
			h->device = dup_or_raise(L, lua_tostring(L, -1));
		}
	}
	lua_pop(L, 1);
}

/* Build the index of generation g (light userdata at 1) from the globals of
 * the state that ran the file. Run protected. */
static int extract_index(lua_State *L)
{
	struct pxlua_gen *g = lua_touserdata(L, 1);
	size_t n;

	if (lua_getglobal(L, "extensions") != LUA_TTABLE)
		return luaL_error(L,
				  "%s: the file must define a global table 'extensions' "
				  "(its contexts); it is %s",
				  g->path, lua_isnil(L, -1) ? "not defined" : luaL_typename(L, -1));
	n = table_count(L, 2);
	g->ctxs = calloc_or_raise(L, n, sizeof(*g->ctxs));
	for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
		struct pxlua_context *c;

		if (lua_type(L, -2) != LUA_TSTRING) {
			lua_pushvalue(L, -2);
			return luaL_error(L,
					  "%s: extensions has a key that is a %s; context names "
					  "are strings",
					  g->path, luaL_typename(L, -1));
		}
		if (!lua_istable(L, -1))
			return luaL_error(L, "%s: extensions.%s is a %s, not a table of extensions",
					  g->path, lua_tostring(L, -2), luaL_typename(L, -1));
		c = &g->ctxs[g->nctxs++];
		c->name = dup_or_raise(L, lua_tostring(L, -2));
		extract_context(L, g, c, lua_gettop(L));
		g->nexts += c->nexts;
	}
	if (g->nctxs > 1)
		qsort(g->ctxs, g->nctxs, sizeof(*g->ctxs), context_compare);
	for (size_t i = 0; i < g->nctxs; i++) {
		struct pxlua_context *c = &g->ctxs[i];
		for (size_t j = 0; j < c->nincludes; j++)
			c->incl_idx[j] = pxlua_context_index(g, c->includes[j]);
	}
	lua_settop(L, 1);
	extract_hints(L, g);
	return 0;
}

int pxlua_gen_build(const char *path, const struct pxlua_settings *set, struct pxlua_gen **out,
		    px_err *err)
{
	struct pxlua_gen *g;
	struct pxlua_state *st = NULL;
	struct pxlua_call load;
	char name[4200], *copy;
	char *text;
	size_t len;
	int rc;

	text = read_file(path, &len, err);
	if (!text)
		return -1;
	g = calloc(1, sizeof(*g));
	copy = strdup(path);
	if (!g || !copy || !(g->path = strdup(path)) || !(g->dir = strdup(dirname(copy))) ||
	    pxlua_settings_copy(&g->set, set) < 0) {
		px_err_set(err, "%s: out of memory", path);
		goto fail;
	}
	g->refs = 1;
	st = pxlua_state_alloc(g);
	if (!st) {
		px_err_set(err, "%s: out of memory", path);
		goto fail;
	}
	/* Nobody else can reach st yet; the lock is taken for the Lua API,
	 * which expects the running call to hold it. */
	pthread_mutex_lock(&st->lock);
	if (state_open(st, &load, err) < 0)
		goto fail;
	chunk_name(g, name, sizeof(name));
	/* Text only: a precompiled chunk can crash the interpreter. */
	rc = luaL_loadbufferx(st->L, text, len, name, "t");
	if (rc != LUA_OK) {
		pxlua_error_line(st->L, rc, err->msg, sizeof(err->msg), NULL, 0);
		if (strstr(err->msg, "attempt to load a binary chunk"))
			px_err_set(err,
				   "%s: a precompiled (binary) Lua chunk is refused; give the "
				   "source text",
				   path);
		goto fail;
	}
	if (lua_dump(st->L, dump_writer, g, 0) != 0) {
		px_err_set(err, "%s: out of memory", path);
		goto fail;
	}
	if (state_run_chunk(st, &load, err) < 0)
		goto fail;
	lua_pushcfunction(st->L, extract_index);
	lua_pushlightuserdata(st->L, g);
	rc = lua_pcall(st->L, 1, 0, 0);
	if (rc != LUA_OK) {
		pxlua_error_line(st->L, rc, err->msg, sizeof(err->msg), NULL, 0);
		goto fail;
	}
	lua_settop(st->L, 0);
	if (state_freeze(st, err) < 0)
		goto fail;
	for (size_t i = 0; i < g->nctxs; i++) {
		struct pxlua_context *c = &g->ctxs[i];
		for (size_t j = 0; j < c->nincludes; j++)
			if (c->incl_idx[j] < 0)
				px_log_warning(
					"%s: context '%s' includes '%s', which is not defined",
					path, c->name, c->includes[j]);
	}
	pthread_mutex_unlock(&st->lock);
	st->serial = 1;
	st->listed = true;
	g->states = st;
	g->created = 1;
	free(text);
	free(copy);
	*out = g;
	return 0;
fail:
	if (st) {
		pthread_mutex_unlock(&st->lock);
		pxlua_state_close(st);
	}
	pxlua_gen_free(g);
	free(text);
	free(copy);
	return -1;
}

/* ---------------------------------------------------------------- lookup */

/* Visit context ci then its includes, depth first, each context once (seen
 * bits), until visit returns true. */
typedef bool (*visit_fn)(void *ctx, const struct pxlua_context *c, int depth);

static bool walk(const struct pxlua_gen *g, long ci, uint8_t *seen, int depth, visit_fn visit,
		 void *ctx)
{
	const struct pxlua_context *c = &g->ctxs[ci];

	if (seen[ci / 8] & (1u << (ci % 8)))
		return false;
	seen[ci / 8] |= (uint8_t)(1u << (ci % 8));
	if (visit(ctx, c, depth))
		return true;
	for (size_t i = 0; i < c->nincludes; i++)
		if (c->incl_idx[i] >= 0 && walk(g, c->incl_idx[i], seen, depth + 1, visit, ctx))
			return true;
	return false;
}

static bool walk_from(const struct pxlua_gen *g, const char *context, visit_fn visit, void *ctx)
{
	uint8_t small[64], *seen = small;
	long ci = pxlua_context_index(g, context);
	bool found;

	if (ci < 0)
		return false;
	if (g->nctxs > sizeof(small) * 8) {
		seen = calloc((g->nctxs + 7) / 8, 1);
		if (!seen)
			return false;
	} else {
		memset(small, 0, sizeof(small));
	}
	found = walk(g, ci, seen, 0, visit, ctx);
	if (seen != small)
		free(seen);
	return found;
}

struct find {
	const char *exten;
	enum pxlua_match mode;
	const struct pxlua_ext *found;
	const struct pxlua_context *where;
};

static bool find_visit(void *ctx, const struct pxlua_context *c, int depth)
{
	struct find *f = ctx;

	(void)depth;
	for (size_t i = 0; i < c->nexts; i++) {
		bool hit = f->mode == PXLUA_MATCH
				   ? pxlua_ext_match(c->exts[i].key, f->exten)
				   : pxlua_ext_close(c->exts[i].key, f->exten, f->mode);
		if (hit) {
			f->found = &c->exts[i];
			f->where = c;
			return true;
		}
	}
	return false;
}

const struct pxlua_ext *pxlua_find(const struct pxlua_gen *g, const char *context,
				   const char *exten, const struct pxlua_context **where)
{
	struct find f = {.exten = exten, .mode = PXLUA_MATCH};

	if (!context || !exten || !walk_from(g, context, find_visit, &f))
		return NULL;
	if (where)
		*where = f.where;
	return f.found;
}

bool pxlua_close(const struct pxlua_gen *g, const char *context, const char *exten,
		 enum pxlua_match mode)
{
	struct find f = {.exten = exten ? exten : "", .mode = mode};

	return context && walk_from(g, context, find_visit, &f);
}

struct locate {
	px_cli *cli;
	const char *exten;
	const struct pxlua_ext *winner;
	const struct pxlua_context *where;
	int searched;
};

static bool locate_visit(void *ctx, const struct pxlua_context *c, int depth)
{
	struct locate *l = ctx;

	l->searched++;
	px_cli_printf(l->cli, "%*sContext '%s'%s: %zu entr%s\n", depth * 2, "", c->name,
		      depth ? " (included)" : "", c->nexts, c->nexts == 1 ? "y" : "ies");
	for (size_t i = 0; i < c->nexts; i++) {
		const struct pxlua_ext *e = &c->exts[i];
		char why[256];
		bool hit = pxlua_ext_match(e->key, l->exten);

		pxlua_ext_describe(e->key, why, sizeof(why));
		px_cli_printf(l->cli, "%*s  %2zu. '%s' %s  [%s]\n", depth * 2, "", i + 1, e->key,
			      hit ? "MATCHES" : "no match", e->defined);
		if (hit) {
			px_cli_printf(l->cli, "%*s      %s\n", depth * 2, "", why);
			l->winner = e;
			l->where = c;
			return true;
		}
	}
	return false;
}

void pxlua_locate(px_cli *cli, const struct pxlua_gen *g, const char *context, const char *exten)
{
	struct locate l = {.cli = cli, .exten = exten};

	px_cli_printf(cli, "Looking for '%s' in context '%s' (%s, generation %u):\n", exten,
		      context, g->path, g->id);
	px_cli_printf(cli, "Entries are tried in order: exact extensions first, then patterns "
			   "from the most specific; then the included contexts, in order.\n");
	walk_from(g, context, locate_visit, &l);
	if (l.winner) {
		px_cli_printf(cli, "=> '%s' in context '%s' runs, the function at %s%s.\n",
			      l.winner->key, l.where->name, l.winner->defined,
			      l.winner->key[0] == '_' ? " (the first pattern in order that matches)"
						      : " (an exact match)");
	} else {
		px_cli_printf(cli, "=> no entry matches '%s'.\n", exten);
	}
	px_cli_printf(cli, "canmatch: %s; matchmore: %s\n",
		      pxlua_close(g, context, exten, PXLUA_CANMATCH) ? "yes" : "no",
		      pxlua_close(g, context, exten, PXLUA_MATCHMORE) ? "yes" : "no");
}
