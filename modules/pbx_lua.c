/*
 * pbx_lua: the Lua 5.4 dialplan engine, in the layout of Asterisk's pbx_lua
 * (extensions.lua defines a global table `extensions` of contexts, each a
 * table of extension functions and an optional `include` list; functions
 * call applications through `app.*` and reach channel variables through
 * `channel.NAME:get()/:set()`). This file owns turning extensions.lua into
 * an immutable generation (the compiled chunk, and a C index of contexts,
 * keys and includes that answers exists() without Lua), the pool of Lua
 * states of each generation (each ran the file once and serves one call at
 * a time), running an extension on a channel, the Lua API, and the
 * "dialplan show" and "dialplan reload" console commands.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/cli.h>
#include <plexus/core.h>
#include <plexus/dialplan.h>
#include <plexus/log.h>
#include <plexus/module.h>

#include "pbx_lua_pattern.h"

#define DIALPLAN_FILE "extensions.lua"
#define POOL_MAX      64                   /* idle states kept per generation */
#define VAR_MAX       (1024 * 1024)        /* longest variable value read back */
#define VAR_MT        "plexus.channel.var" /* metatable of channel.NAME objects */

struct ext {
	char *key;        /* "1000", "_1XXX": the key as text */
	bool int_key;     /* written as an integer key: [1000] = ... */
	lua_Integer ival; /* the integer then */
	char *defined;    /* where its function is defined: "extensions.lua:12" */
};

struct context {
	char *name;
	struct ext *exts; /* in order of precedence */
	size_t nexts;
	char **includes; /* names, in the order written */
	long *incl_idx;  /* their index in the generation's contexts, -1 if none */
	size_t nincludes;
};

struct lstate;

/* One load of extensions.lua. Immutable once installed, except for its pool
 * and counters, which gen_lock guards. */
struct generation {
	unsigned id; /* 1 for the first load, one more per reload */
	int refs;    /* current pointer, each call and each reader */
	char *path;  /* the file it was compiled from */
	char *chunk; /* the compiled file (lua_dump, with line info) */
	size_t chunk_len, chunk_cap;
	struct context *ctxs; /* sorted by name */
	size_t nctxs;
	size_t nexts; /* extensions in all contexts */
	time_t loaded;
	struct lstate *idle; /* pooled states, most recently used first */
	size_t nidle;
	unsigned long created; /* states made for this generation */
};

/* A Lua state and what the Lua API needs to know about the call it runs;
 * reached from Lua through the state's extra space. */
struct lstate {
	lua_State *L;
	struct generation *gen;
	px_channel *ch;      /* the channel of the call being run, NULL between calls */
	bool hungup;         /* an application asked for a hangup: stop the function */
	struct lstate *next; /* in the pool */
};

/* What exec hands to the protected call of an extension function. */
struct call {
	const struct ext *ext;
	const char *ext_context; /* the context that holds ext */
	const char *context;     /* the context asked for: the function's arguments */
	const char *exten;
};

static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct generation *current; /* under gen_lock */
static unsigned generation_serial; /* under gen_lock */
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
static bool running; /* between load and unload; under reload_lock */
static px_module *self_module;

/* The error value that unwinds an extension function when an application
 * returned -1: the call is over, which is not a failure. */
static char hangup_mark;

/* ---------------------------------------------------------------- the Lua API */

static struct lstate *state_of(lua_State *L)
{
	return *(struct lstate **)lua_getextraspace(L);
}

static px_channel *need_channel(lua_State *L, const char *what, const char *name)
{
	struct lstate *st = state_of(L);

	if (!st || !st->ch)
		luaL_error(L, "%s%s: only inside an extension function running on a channel", what,
			   name);
	return st->ch;
}

/* Append the value at index i to b as application data: strings and
 * numbers as Lua writes them, booleans as true/false, nil as nothing.
 * what and argn name the value in an error ("Dial: argument 2"). */
static void add_text(lua_State *L, luaL_Buffer *b, int i, const char *what, int argn)
{
	const char *s;
	size_t len;

	switch (lua_type(L, i)) {
	case LUA_TNIL:
	case LUA_TNONE:
		return;
	case LUA_TBOOLEAN:
		luaL_addstring(b, lua_toboolean(L, i) ? "true" : "false");
		return;
	case LUA_TNUMBER:
	case LUA_TSTRING:
		s = lua_tolstring(L, i, &len);
		luaL_addlstring(b, s, len);
		return;
	default:
		luaL_error(L, "%s: argument %d is a %s; strings, numbers and booleans only", what,
			   argn, luaL_typename(L, i));
	}
}

/* app.Name(args...): run application Name with the arguments joined by ','. */
static int app_call(lua_State *L)
{
	struct lstate *st = state_of(L);
	const char *name = lua_tostring(L, lua_upvalueindex(1));
	int n = lua_gettop(L);
	px_err err = {""};
	px_channel *ch;
	luaL_Buffer b;
	int rc;

	ch = need_channel(L, "app.", name);
	if (st->hungup) {
		lua_pushlightuserdata(L, &hangup_mark);
		return lua_error(L);
	}
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, ',');
		add_text(L, &b, i, name, i);
	}
	luaL_pushresult(&b);
	rc = px_app_exec(ch, name, lua_tostring(L, -1), &err);
	if (rc >= 0)
		return 0;
	if (err.msg[0]) {
		if (!px_app_exists(name))
			return luaL_error(L, "no such application '%s'", name);
		return luaL_error(L, "app.%s: %s", name, err.msg);
	}
	/* The application wants the channel hung up: unwind the function. */
	px_debug(1, "pbx_lua: %s: %s asked for a hangup; leaving the dialplan", px_channel_name(ch),
		 name);
	st->hungup = true;
	lua_pushlightuserdata(L, &hangup_mark);
	return lua_error(L);
}

/* __index of app: app.dial and app["Dial"] are functions that run Dial.
 * Functions of applications that exist are kept in the table. */
static int app_index(lua_State *L)
{
	if (lua_type(L, 2) != LUA_TSTRING) {
		lua_pushnil(L);
		return 1;
	}
	lua_pushvalue(L, 2);
	lua_pushcclosure(L, app_call, 1);
	if (px_app_exists(lua_tostring(L, 2))) {
		lua_pushvalue(L, 2);
		lua_pushvalue(L, -2);
		lua_rawset(L, 1);
	}
	return 1;
}

/* Names read through the channel but not stored in its variables. */
static bool is_builtin(const char *name)
{
	return !strcmp(name, "CHANNEL") || !strcmp(name, "UNIQUEID") || !strcmp(name, "CONTEXT") ||
	       !strcmp(name, "EXTEN") || !strncasecmp(name, "CALLERID(", 9);
}

static void push_callerid(lua_State *L, px_channel *ch, const char *name)
{
	const char *field = name + 9;
	size_t len = strlen(field);
	char num[256], cname[256];

	if (len == 0 || field[len - 1] != ')')
		luaL_error(L, "channel[\"%s\"]: missing ')'", name);
	len--;
	px_channel_get_caller(ch, num, sizeof(num), cname, sizeof(cname));
	if ((len == 3 && !strncasecmp(field, "num", 3)) ||
	    (len == 6 && !strncasecmp(field, "number", 6)))
		lua_pushstring(L, num);
	else if (len == 4 && !strncasecmp(field, "name", 4))
		lua_pushstring(L, cname);
	else if (len == 3 && !strncasecmp(field, "all", 3))
		lua_pushfstring(L, "\"%s\" <%s>", cname, num);
	else
		luaL_error(L, "channel[\"%s\"]: CALLERID knows num, name and all", name);
}

static void push_builtin(lua_State *L, px_channel *ch, const char *name)
{
	char context[256], exten[256];

	if (!strcmp(name, "CHANNEL")) {
		lua_pushstring(L, px_channel_name(ch));
	} else if (!strcmp(name, "UNIQUEID")) {
		lua_pushstring(L, px_channel_uniqueid(ch));
	} else if (!strcmp(name, "CONTEXT") || !strcmp(name, "EXTEN")) {
		px_channel_get_dialplan(ch, context, sizeof(context), exten, sizeof(exten));
		lua_pushstring(L, name[0] == 'C' ? context : exten);
	} else {
		push_callerid(L, ch, name);
	}
}

/* Push a channel variable's value, or nil when it is not set. The core
 * copies into a buffer without telling the length, so a value that fills
 * the buffer is read again with a larger one. */
static void push_variable(lua_State *L, px_channel *ch, const char *name)
{
	for (size_t size = 256;; size *= 4) {
		luaL_Buffer b;
		char *buf = luaL_buffinitsize(L, &b, size);
		size_t len;

		if (px_channel_var_get(ch, name, buf, size) < 0) {
			luaL_pushresultsize(&b, 0);
			lua_pop(L, 1);
			lua_pushnil(L);
			return;
		}
		len = strlen(buf);
		if (len + 1 < size || size >= VAR_MAX) {
			luaL_pushresultsize(&b, len);
			return;
		}
		luaL_pushresultsize(&b, 0);
		lua_pop(L, 1);
	}
}

static const char *var_name(lua_State *L, const char *method)
{
	const char *name;

	if (lua_type(L, 1) != LUA_TTABLE)
		luaL_error(L, "%s: call it as channel.NAME:%s()", method, method);
	lua_getfield(L, 1, "name");
	name = lua_tostring(L, -1);
	if (!name || !name[0])
		luaL_error(L, "%s: a channel variable needs a name", method);
	if (strchr(name, '(') && strncasecmp(name, "CALLERID(", 9) != 0)
		luaL_error(L, "channel[\"%s\"]: dialplan functions are not supported yet", name);
	return name;
}

/* channel.NAME:get() */
static int var_get(lua_State *L)
{
	const char *name = var_name(L, "get");
	px_channel *ch = need_channel(L, "channel.", name);

	if (is_builtin(name))
		push_builtin(L, ch, name);
	else
		push_variable(L, ch, name);
	return 1;
}

/* Set (or with nil, remove) variable name from the value at index vi. */
static void set_variable(lua_State *L, const char *name, int vi)
{
	px_channel *ch = need_channel(L, "channel.", name);
	luaL_Buffer b;

	if (is_builtin(name))
		luaL_error(L, "channel.%s is read-only", name);
	if (lua_isnoneornil(L, vi)) {
		px_channel_var_set(ch, name, NULL);
		return;
	}
	luaL_buffinit(L, &b);
	add_text(L, &b, vi, name, 1);
	luaL_pushresult(&b);
	px_channel_var_set(ch, name, lua_tostring(L, -1));
}

/* channel.NAME:set(value) */
static int var_set(lua_State *L)
{
	set_variable(L, var_name(L, "set"), 2);
	return 0;
}

/* __index of channel: channel.NAME is an object with get and set. */
static int chan_index(lua_State *L)
{
	luaL_checkstring(L, 2);
	lua_createtable(L, 0, 1);
	lua_pushvalue(L, 2);
	lua_setfield(L, -2, "name");
	luaL_setmetatable(L, VAR_MT);
	return 1;
}

/* __newindex of channel: channel.NAME = value, as in Asterisk. */
static int chan_newindex(lua_State *L)
{
	const char *name = luaL_checkstring(L, 2);

	if (strchr(name, '(') && strncasecmp(name, "CALLERID(", 9) != 0)
		luaL_error(L, "channel[\"%s\"]: dialplan functions are not supported yet", name);
	set_variable(L, name, 3);
	return 0;
}

/* Open the standard libraries and install `app` and `channel` (run
 * protected: any of it may run out of memory). */
static int setup_state(lua_State *L)
{
	static const luaL_Reg var_methods[] = {{"get", var_get}, {"set", var_set}, {NULL, NULL}};

	luaL_openlibs(L);

	lua_newtable(L);
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, app_index);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
	lua_setglobal(L, "app");

	luaL_newmetatable(L, VAR_MT);
	luaL_newlib(L, var_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);

	lua_newtable(L);
	lua_createtable(L, 0, 2);
	lua_pushcfunction(L, chan_index);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, chan_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_setmetatable(L, -2);
	lua_setglobal(L, "channel");
	return 0;
}

/* Message handler: a traceback under the message, except for a hangup. */
static int msgh(lua_State *L)
{
	const char *msg;

	if (lua_touserdata(L, 1) == &hangup_mark)
		return 1;
	msg = lua_tostring(L, 1);
	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			msg = lua_tostring(L, -1);
		else
			msg = lua_pushfstring(L, "(error object is a %s value)",
					      luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* The message of an error as one line ("file:line: message"), without the
 * traceback msgh added; the traceback goes to the debug log. */
static void error_line(lua_State *L, int status, char *out, size_t size)
{
	const char *msg = lua_tostring(L, -1);
	const char *tb;
	size_t len;

	if (status == LUA_ERRMEM) {
		snprintf(out, size, "out of memory");
		return;
	}
	if (!msg) {
		snprintf(out, size, "(error object is a %s value)", luaL_typename(L, -1));
		return;
	}
	tb = strstr(msg, "\nstack traceback:");
	len = tb ? (size_t)(tb - msg) : strlen(msg);
	if (len >= size)
		len = size - 1;
	memcpy(out, msg, len);
	out[len] = '\0';
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	if (tb)
		px_debug(1, "pbx_lua: %s", tb + 1);
}

/* ---------------------------------------------------------------- states */

static void state_close(struct lstate *st)
{
	if (!st)
		return;
	lua_close(st->L);
	free(st);
}

static void states_close(struct lstate *list)
{
	while (list) {
		struct lstate *next = list->next;
		state_close(list);
		list = next;
	}
}

/* A fresh Lua state with the API installed, not yet running the file. */
static struct lstate *state_alloc(struct generation *g, px_err *err)
{
	struct lstate *st = calloc(1, sizeof(*st));
	int rc;

	if (!st) {
		px_err_set(err, "out of memory");
		return NULL;
	}
	st->gen = g;
	st->L = luaL_newstate();
	if (!st->L) {
		free(st);
		px_err_set(err, "out of memory");
		return NULL;
	}
	*(struct lstate **)lua_getextraspace(st->L) = st;
	lua_pushcfunction(st->L, setup_state);
	rc = lua_pcall(st->L, 0, 0, 0);
	if (rc != LUA_OK) {
		char line[PX_ERR_MAX];
		error_line(st->L, rc, line, sizeof(line));
		px_err_set(err, "cannot set up a Lua state: %s", line);
		state_close(st);
		return NULL;
	}
	return st;
}

/* Run the chunk on top of the stack (the file) in st; err gets the first
 * line of the message on failure. */
static int state_run_chunk(struct lstate *st, px_err *err)
{
	lua_State *L = st->L;
	int rc;

	lua_pushcfunction(L, msgh);
	lua_insert(L, -2);
	rc = lua_pcall(L, 0, 0, -2);
	if (rc != LUA_OK) {
		char line[PX_ERR_MAX];
		error_line(L, rc, line, sizeof(line));
		px_err_set(err, "%s", line);
	}
	lua_settop(L, 0);
	return rc == LUA_OK ? 0 : -1;
}

static int chunk_name(const struct generation *g, char *out, size_t size)
{
	return snprintf(out, size, "@%s", g->path);
}

/* A new state of generation g: load its compiled chunk and run it once. */
static struct lstate *state_new(struct generation *g, px_err *err)
{
	struct lstate *st = state_alloc(g, err);
	char name[4200];
	int rc;

	if (!st)
		return NULL;
	chunk_name(g, name, sizeof(name));
	rc = luaL_loadbufferx(st->L, g->chunk, g->chunk_len, name, "b");
	if (rc != LUA_OK) {
		error_line(st->L, rc, err->msg, sizeof(err->msg));
		state_close(st);
		return NULL;
	}
	if (state_run_chunk(st, err) < 0) {
		state_close(st);
		return NULL;
	}
	pthread_mutex_lock(&gen_lock);
	g->created++;
	pthread_mutex_unlock(&gen_lock);
	return st;
}

/* ---------------------------------------------------------------- generations */

static void context_free(struct context *c)
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

static void gen_free(struct generation *g)
{
	if (!g)
		return;
	states_close(g->idle);
	for (size_t i = 0; i < g->nctxs; i++)
		context_free(&g->ctxs[i]);
	free(g->ctxs);
	free(g->chunk);
	free(g->path);
	free(g);
}

/* The current generation with a reference, or NULL. */
static struct generation *gen_get(void)
{
	struct generation *g;

	pthread_mutex_lock(&gen_lock);
	g = current;
	if (g)
		g->refs++;
	pthread_mutex_unlock(&gen_lock);
	return g;
}

static void gen_put(struct generation *g)
{
	bool last;

	if (!g)
		return;
	pthread_mutex_lock(&gen_lock);
	last = --g->refs == 0;
	pthread_mutex_unlock(&gen_lock);
	if (last)
		gen_free(g);
}

/* Make g current (NULL: none). The old generation's idle states are closed
 * now; states of calls still running on it are closed when they finish. */
static void gen_install(struct generation *g)
{
	struct generation *old;
	struct lstate *idle = NULL;

	pthread_mutex_lock(&gen_lock);
	if (g) {
		g->id = ++generation_serial;
		g->loaded = time(NULL);
	}
	old = current;
	current = g;
	if (old) {
		idle = old->idle;
		old->idle = NULL;
		old->nidle = 0;
	}
	pthread_mutex_unlock(&gen_lock);
	states_close(idle);
	gen_put(old);
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
	struct generation *g = ud;

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
	return pxlua_ext_cmp(((const struct ext *)a)->key, ((const struct ext *)b)->key);
}

static int context_compare(const void *a, const void *b)
{
	return strcmp(((const struct context *)a)->name, ((const struct context *)b)->name);
}

static long context_index(const struct generation *g, const char *name)
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

/* Read context c from the table at index t (raw access only). */
static void extract_context(lua_State *L, struct generation *g, struct context *c, int t)
{
	size_t cap = table_count(L, t);

	c->exts = calloc_or_raise(L, cap, sizeof(*c->exts));
	for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
		struct ext *e;
		lua_Debug ar;
		const char *why;
		char key[64];
		const char *k;

		if (lua_type(L, -2) == LUA_TSTRING && !strcasecmp(lua_tostring(L, -2), "include")) {
			size_t n;
			if (!lua_istable(L, -1))
				luaL_error(
					L,
					"%s: extensions.%s.include must be a list of context names",
					g->path, c->name);
			n = lua_rawlen(L, -1);
			c->includes = calloc_or_raise(L, n, sizeof(*c->includes));
			c->incl_idx = calloc_or_raise(L, n, sizeof(*c->incl_idx));
			for (size_t i = 1; i <= n; i++) {
				if (lua_rawgeti(L, -1, (lua_Integer)i) != LUA_TSTRING)
					luaL_error(L,
						   "%s: extensions.%s.include[%d] is a %s, not a "
						   "context name",
						   g->path, c->name, (int)i, luaL_typename(L, -1));
				c->includes[c->nincludes++] = dup_or_raise(L, lua_tostring(L, -1));
				lua_pop(L, 1);
			}
			continue;
		}
		if (lua_type(L, -2) == LUA_TSTRING) {
			k = lua_tostring(L, -2);
		} else if (lua_isinteger(L, -2)) {
			snprintf(key, sizeof(key), "%lld", (long long)lua_tointeger(L, -2));
			k = key;
		} else {
			lua_pushvalue(L, -2);
			luaL_error(
				L,
				"%s: extensions.%s has a key that is a %s; extensions are strings",
				g->path, c->name, luaL_typename(L, -1));
			return;
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
		if (!strcmp(c->exts[i - 1].key, c->exts[i].key))
			luaL_error(L, "%s: extensions.%s: extension %s is defined twice", g->path,
				   c->name, c->exts[i].key);
}

/* Build the index of generation g (light userdata at 1) from the global
 * `extensions` of the state that ran the file. Run protected. */
static int extract_index(lua_State *L)
{
	struct generation *g = lua_touserdata(L, 1);
	size_t n;

	if (lua_getglobal(L, "extensions") != LUA_TTABLE)
		return luaL_error(L,
				  "%s: the file must define a global table 'extensions' "
				  "(its contexts); it is %s",
				  g->path, lua_isnil(L, -1) ? "not defined" : luaL_typename(L, -1));
	n = table_count(L, 2);
	g->ctxs = calloc_or_raise(L, n, sizeof(*g->ctxs));
	for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
		struct context *c;

		if (lua_type(L, -2) != LUA_TSTRING) {
			lua_pushvalue(L, -2);
			return luaL_error(
				L,
				"%s: extensions has a key that is a %s; context names are "
				"strings",
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
		struct context *c = &g->ctxs[i];
		for (size_t j = 0; j < c->nincludes; j++)
			c->incl_idx[j] = context_index(g, c->includes[j]);
	}
	return 0;
}

/* Read, compile and run path in a first state, and index what it defined.
 * On failure err holds "file:line: message" (or "file: message"). */
static int gen_build(const char *path, struct generation **out, px_err *err)
{
	struct generation *g;
	struct lstate *st = NULL;
	char name[4200];
	char *text;
	size_t len;
	int rc;

	text = read_file(path, &len, err);
	if (!text)
		return -1;
	g = calloc(1, sizeof(*g));
	if (!g || !(g->path = strdup(path))) {
		px_err_set(err, "%s: out of memory", path);
		goto fail;
	}
	g->refs = 1;
	st = state_alloc(g, err);
	if (!st)
		goto fail;
	chunk_name(g, name, sizeof(name));
	rc = luaL_loadbufferx(st->L, text, len, name, "t");
	if (rc != LUA_OK) {
		error_line(st->L, rc, err->msg, sizeof(err->msg));
		goto fail;
	}
	if (lua_dump(st->L, dump_writer, g, 0) != 0) {
		px_err_set(err, "%s: out of memory", path);
		goto fail;
	}
	if (state_run_chunk(st, err) < 0)
		goto fail;
	lua_pushcfunction(st->L, extract_index);
	lua_pushlightuserdata(st->L, g);
	rc = lua_pcall(st->L, 1, 0, 0);
	if (rc != LUA_OK) {
		error_line(st->L, rc, err->msg, sizeof(err->msg));
		goto fail;
	}
	lua_settop(st->L, 0);
	for (size_t i = 0; i < g->nctxs; i++) {
		struct context *c = &g->ctxs[i];
		for (size_t j = 0; j < c->nincludes; j++)
			if (c->incl_idx[j] < 0)
				px_log_warning(
					"%s: context '%s' includes '%s', which is not defined",
					path, c->name, c->includes[j]);
	}
	g->idle = st;
	g->nidle = 1;
	g->created = 1;
	free(text);
	*out = g;
	return 0;
fail:
	state_close(st);
	gen_free(g);
	free(text);
	return -1;
}

/* ---------------------------------------------------------------- lookup */

/* Search context ci, then its includes in order, depth first; each context
 * is searched once (seen), so include cycles end. */
static const struct ext *find_in(const struct generation *g, long ci, const char *exten,
				 uint8_t *seen, const struct context **where)
{
	const struct context *c = &g->ctxs[ci];

	if (seen[ci / 8] & (1u << (ci % 8)))
		return NULL;
	seen[ci / 8] |= (uint8_t)(1u << (ci % 8));
	for (size_t i = 0; i < c->nexts; i++) {
		if (pxlua_ext_match(c->exts[i].key, exten)) {
			*where = c;
			return &c->exts[i];
		}
	}
	for (size_t i = 0; i < c->nincludes; i++) {
		const struct ext *e;
		if (c->incl_idx[i] < 0)
			continue;
		e = find_in(g, c->incl_idx[i], exten, seen, where);
		if (e)
			return e;
	}
	return NULL;
}

static const struct ext *find_ext(const struct generation *g, const char *context,
				  const char *exten, const struct context **where)
{
	uint8_t small[64];
	uint8_t *seen = small;
	const struct ext *e;
	long ci = context_index(g, context);

	if (ci < 0 || !exten)
		return NULL;
	if (g->nctxs > sizeof(small) * 8) {
		seen = calloc((g->nctxs + 7) / 8, 1);
		if (!seen)
			return NULL;
	} else {
		memset(small, 0, sizeof(small));
	}
	e = find_in(g, ci, exten, seen, where);
	if (seen != small)
		free(seen);
	return e;
}

/* ---------------------------------------------------------------- the engine */

static bool pbx_lua_exists(const char *context, const char *exten, const char *callerid)
{
	const struct context *where;
	bool found;

	(void)callerid;
	pthread_mutex_lock(&gen_lock);
	found = current && find_ext(current, context, exten, &where);
	pthread_mutex_unlock(&gen_lock);
	return found;
}

/* Look the function up again in the state (the file may have changed its
 * own tables) and call it with (context, extension). Run protected. */
static int call_extension(lua_State *L)
{
	const struct call *c = lua_touserdata(L, 1);

	if (lua_getglobal(L, "extensions") != LUA_TTABLE)
		return luaL_error(L, "the global 'extensions' is no longer a table");
	if (lua_getfield(L, -1, c->ext_context) != LUA_TTABLE)
		return luaL_error(L, "extensions.%s is no longer a table", c->ext_context);
	if (c->ext->int_key)
		lua_geti(L, -1, c->ext->ival);
	else
		lua_getfield(L, -1, c->ext->key);
	if (lua_isnil(L, -1))
		return luaL_error(L, "extensions.%s[\"%s\"] is no longer defined", c->ext_context,
				  c->ext->key);
	lua_pushstring(L, c->context);
	lua_pushstring(L, c->exten);
	lua_call(L, 2, 0);
	return 0;
}

static int pbx_lua_exec(px_channel *ch, const char *context, const char *exten)
{
	struct generation *g;
	const struct context *where = NULL;
	const struct ext *e = NULL;
	struct lstate *st = NULL;
	struct call call;
	px_err err = {""};
	bool keep = true, last;
	int rc, ret = -1;

	px_module_use(self_module);
	pthread_mutex_lock(&gen_lock);
	g = current;
	if (g) {
		g->refs++;
		e = find_ext(g, context, exten, &where);
		if (e && g->idle) {
			st = g->idle;
			g->idle = st->next;
			g->nidle--;
			st->next = NULL;
		}
	}
	pthread_mutex_unlock(&gen_lock);
	if (!g) {
		px_log_error("pbx_lua: %s: no dialplan is loaded", px_channel_name(ch));
		goto out;
	}
	if (!e) {
		px_log_warning("pbx_lua: %s: no extension '%s' in context '%s'",
			       px_channel_name(ch), exten, context);
		goto release;
	}
	if (!st) {
		st = state_new(g, &err);
		if (!st) {
			px_log_error("pbx_lua: %s: cannot prepare a Lua state: %s",
				     px_channel_name(ch), err.msg);
			goto release;
		}
	}
	px_debug(1, "pbx_lua: %s: running extensions.%s[\"%s\"] for %s@%s (generation %u)",
		 px_channel_name(ch), where->name, e->key, exten, context, g->id);
	call = (struct call){
		.ext = e, .ext_context = where->name, .context = context, .exten = exten};
	st->ch = ch;
	st->hungup = false;
	lua_pushcfunction(st->L, msgh);
	lua_pushcfunction(st->L, call_extension);
	lua_pushlightuserdata(st->L, &call);
	rc = lua_pcall(st->L, 1, 0, 1);
	if (rc == LUA_OK) {
		ret = 0;
	} else if (lua_touserdata(st->L, -1) == &hangup_mark) {
		ret = 0;
	} else {
		char line[PX_ERR_MAX];
		error_line(st->L, rc, line, sizeof(line));
		px_log_error("pbx_lua: %s: %s", px_channel_name(ch), line);
		keep = false; /* a function that failed half-way may have left globals half-set */
	}
	lua_settop(st->L, 0);
	st->ch = NULL;
release:
	pthread_mutex_lock(&gen_lock);
	if (st && keep && g == current && g->nidle < POOL_MAX) {
		st->next = g->idle;
		g->idle = st;
		g->nidle++;
		st = NULL;
	}
	last = --g->refs == 0;
	pthread_mutex_unlock(&gen_lock);
	state_close(st);
	if (last)
		gen_free(g);
out:
	px_module_unuse(self_module);
	return ret;
}

static const struct px_dialplan_engine pbx_lua_engine = {
	.name = "lua",
	.exists = pbx_lua_exists,
	.exec = pbx_lua_exec,
};

/* ---------------------------------------------------------------- load and reload */

static void dialplan_path(char *out, size_t size)
{
	const char *dir = px_core_config_dir();

	if (dir)
		snprintf(out, size, "%s/%s", dir, DIALPLAN_FILE);
	else
		snprintf(out, size, "%s", DIALPLAN_FILE);
}

/* Build a new generation from the file and make it current; on failure the
 * running one stays and err says why. */
static int dialplan_reload(px_err *err)
{
	struct generation *g;
	char path[4096];
	int rc;

	pthread_mutex_lock(&reload_lock);
	if (!running) {
		pthread_mutex_unlock(&reload_lock);
		return px_err_set(err, "pbx_lua is being unloaded");
	}
	dialplan_path(path, sizeof(path));
	rc = gen_build(path, &g, err);
	if (rc == 0) {
		gen_install(g);
		px_verbose(1, "pbx_lua: loaded %s: %zu context%s, %zu extension%s (generation %u)",
			   path, g->nctxs, g->nctxs == 1 ? "" : "s", g->nexts,
			   g->nexts == 1 ? "" : "s", g->id);
	}
	pthread_mutex_unlock(&reload_lock);
	return rc;
}

/* ---------------------------------------------------------------- console */

static void show_context(px_cli *cli, const struct context *c)
{
	px_cli_printf(cli, "[ Context '%s' created by 'pbx_lua' ]\n", c->name);
	for (size_t i = 0; i < c->nexts; i++) {
		char quoted[128];
		snprintf(quoted, sizeof(quoted), "'%s'", c->exts[i].key);
		px_cli_printf(cli, "  %-20s => function  [%s]\n", quoted, c->exts[i].defined);
	}
	for (size_t i = 0; i < c->nincludes; i++)
		px_cli_printf(cli, "  Include =>            '%s'%s\n", c->includes[i],
			      c->incl_idx[i] < 0 ? "  (not defined)" : "");
	px_cli_printf(cli, "\n");
}

static enum px_cli_status cmd_show(px_cli *cli, int argc, char **argv)
{
	struct generation *g;
	size_t shown = 0, exts = 0;
	unsigned long created;
	size_t idle, idle_bytes = 0;
	char when[64];
	struct tm tm;

	if (argc > 3)
		return PX_CLI_SHOWUSAGE;
	g = gen_get();
	if (!g) {
		px_cli_printf(cli, "No dialplan is loaded.\n");
		return PX_CLI_FAILURE;
	}
	for (size_t i = 0; i < g->nctxs; i++) {
		if (argc == 3 && strcmp(g->ctxs[i].name, argv[2]) != 0)
			continue;
		show_context(cli, &g->ctxs[i]);
		shown++;
		exts += g->ctxs[i].nexts;
	}
	if (argc == 3 && !shown) {
		px_cli_printf(cli, "There is no context '%s' in %s.\n", argv[2], g->path);
		gen_put(g);
		return PX_CLI_FAILURE;
	}
	/* Idle states belong to nobody while gen_lock is held. */
	pthread_mutex_lock(&gen_lock);
	created = g->created;
	idle = g->nidle;
	for (struct lstate *st = g->idle; st; st = st->next)
		idle_bytes += (size_t)lua_gc(st->L, LUA_GCCOUNT) * 1024 +
			      (size_t)lua_gc(st->L, LUA_GCCOUNTB);
	pthread_mutex_unlock(&gen_lock);
	localtime_r(&g->loaded, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	px_cli_printf(cli, "-= %zu extension%s (%zu context%s) =-\n", exts, exts == 1 ? "" : "s",
		      shown, shown == 1 ? "" : "s");
	px_cli_printf(cli, "-= %s, generation %u, loaded %s =-\n", g->path, g->id, when);
	px_cli_printf(cli, "-= %lu Lua state%s created, %zu idle using %zu KiB =-\n", created,
		      created == 1 ? "" : "s", idle, (idle_bytes + 1023) / 1024);
	gen_put(g);
	return PX_CLI_SUCCESS;
}

static void complete_show(px_cli_completion *c, int argc, char **argv, int pos)
{
	struct generation *g;

	(void)argc;
	(void)argv;
	if (pos != 2)
		return;
	g = gen_get();
	if (!g)
		return;
	for (size_t i = 0; i < g->nctxs; i++)
		px_cli_complete_add(c, g->ctxs[i].name);
	gen_put(g);
}

static enum px_cli_status cmd_reload(px_cli *cli, int argc, char **argv)
{
	struct generation *g;
	px_err err = {""};

	(void)argv;
	if (argc != 2)
		return PX_CLI_SHOWUSAGE;
	if (dialplan_reload(&err) < 0) {
		px_log_error("%s; the running dialplan is kept", err.msg);
		px_cli_printf(cli, "Dialplan not reloaded: %s\nThe running dialplan is kept.\n",
			      err.msg);
		return PX_CLI_FAILURE;
	}
	g = gen_get();
	if (g) {
		px_cli_printf(cli,
			      "Dialplan reloaded from %s: %zu contexts, %zu extensions "
			      "(generation %u).\n",
			      g->path, g->nctxs, g->nexts, g->id);
		gen_put(g);
	}
	return PX_CLI_SUCCESS;
}

static const struct px_cli_command pbx_lua_commands[] = {
	{"dialplan show", "Shows the Lua dialplan",
	 "Usage: dialplan show [context]\n"
	 "       Shows the contexts of extensions.lua with their extensions, in the\n"
	 "       order they are tried, and their includes; or one context only.",
	 cmd_show, complete_show, PX_ROLE_MONITOR},
	{"dialplan reload", "Reloads extensions.lua",
	 "Usage: dialplan reload\n"
	 "       Reads extensions.lua again. New calls use the new dialplan; calls\n"
	 "       in progress finish on the one they started with. A file with an\n"
	 "       error is refused and the running dialplan is kept.",
	 cmd_reload, NULL, PX_ROLE_ADMIN},
};

#define NCOMMANDS (sizeof(pbx_lua_commands) / sizeof(pbx_lua_commands[0]))

/* Start or stop accepting (re)loads; stopping drops the current dialplan. A
 * "dialplan reload" that runs while the module unloads cannot bring it back. */
static void set_running(bool on)
{
	pthread_mutex_lock(&reload_lock);
	running = on;
	if (!on)
		gen_install(NULL);
	pthread_mutex_unlock(&reload_lock);
}

static int pbx_lua_load(px_module *self)
{
	px_err err = {""};

	self_module = self;
	set_running(true);
	if (dialplan_reload(&err) < 0) {
		px_log_error("%s", err.msg);
		set_running(false);
		return -1;
	}
	if (px_dialplan_register(self, &pbx_lua_engine, &err) < 0) {
		px_log_error("pbx_lua: %s", err.msg);
		set_running(false);
		return -1;
	}
	if (px_cli_register(self, pbx_lua_commands, NCOMMANDS, &err) < 0) {
		px_log_error("pbx_lua: %s", err.msg);
		px_dialplan_unregister(&pbx_lua_engine);
		set_running(false);
		return -1;
	}
	return 0;
}

static int pbx_lua_unload(px_module *self)
{
	(void)self;
	px_cli_unregister(pbx_lua_commands, NCOMMANDS);
	px_dialplan_unregister(&pbx_lua_engine);
	/* Calls still running (a forced unload) hold their generation until
	 * they finish; the loader waits for them before unmapping us. */
	set_running(false);
	return 0;
}

static int pbx_lua_reload(px_module *self)
{
	px_err err = {""};

	(void)self;
	if (dialplan_reload(&err) < 0) {
		px_log_error("%s; the running dialplan is kept", err.msg);
		return -1;
	}
	return 0;
}

PX_MODULE(.name = "pbx_lua", .description = "Lua dialplan engine (extensions.lua)",
	  .kind = PX_MODULE_DIALPLAN, .load = pbx_lua_load, .unload = pbx_lua_unload,
	  .reload = pbx_lua_reload);
