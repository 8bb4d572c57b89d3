/*
 * The Lua side of pbx_lua: what an extension function can reach. The API
 * of Asterisk's pbx_lua (app.<Name>(...), channel.VAR:get()/:set()/.value,
 * channel.VAR = v, dialplan functions as channel["CALLERID(num)"] and
 * channel.CALLERID("name"), check_hangup, autoservice_*), our own API
 * (plexus.dial, plexus.channel, plexus.log, plexus.db), and the sandbox
 * around both: the libraries lua.conf allows, text-only chunk loading,
 * pcall and xpcall that cannot swallow the unwinds pbx_lua raises, the
 * instruction budget (a count hook) and the memory ceiling (the state's
 * allocator, charging the call that runs), the per-call globals, and the
 * state lock: taking it for a call (which points the state's globals at
 * the call's) and giving it back around everything that may block.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>
#include <lualib.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/func.h>
#include <plexus/log.h>

#include "pbx_lua.h"

#define VAR_MT    "plexus.channel.var" /* metatable of channel.NAME objects */
#define VALUE_MAX (1024 * 1024)        /* longest variable value read back */

/* The error value of every control unwind; the state says why. */
static char control_mark;

struct pxlua_state *pxlua_state_of(lua_State *L)
{
	return *(struct pxlua_state **)lua_getextraspace(L);
}

struct pxlua_call *pxlua_call_of(lua_State *L)
{
	struct pxlua_state *st = pxlua_state_of(L);

	return st ? st->running : NULL;
}

int pxlua_unwind(lua_State *L, enum pxlua_stop why)
{
	struct pxlua_call *c = pxlua_call_of(L);

	if (c && c->stop == PXLUA_STOP_NONE)
		c->stop = why;
	lua_pushlightuserdata(L, &control_mark);
	return lua_error(L);
}

static bool stopping(lua_State *L)
{
	struct pxlua_call *c = pxlua_call_of(L);

	return c && c->stop != PXLUA_STOP_NONE;
}

/* ---------------------------------------------------------------- the state lock */

/* Point the state's globals (_G's metatable) at the table env_ref; at the
 * file's globals when that is base_ref (no call: what code then sets goes
 * to a table nobody reads). Raises nothing: the keys are metamethod names,
 * interned for the state's life, and both always hold a table, so setting
 * them allocates nothing. */
static void globals_point(struct pxlua_state *st, int env_ref, unsigned serial)
{
	lua_State *L = st->L;

	lua_rawgeti(L, LUA_REGISTRYINDEX, st->gmt_ref);
	lua_pushliteral(L, "__index");
	lua_rawgeti(L, LUA_REGISTRYINDEX, env_ref);
	lua_rawset(L, -3);
	lua_pushliteral(L, "__newindex");
	lua_rawgeti(L, LUA_REGISTRYINDEX, env_ref == st->base_ref ? st->sink_ref : env_ref);
	lua_rawset(L, -3);
	lua_pop(L, 1);
	st->globals_of = serial;
}

/* _G itself (1) to the call's globals (2): what rawset(_G, ...) put there. */
static int move_raw_globals(lua_State *L)
{
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, 2);
		lua_pushvalue(L, -1);
		lua_pushnil(L);
		lua_rawset(L, 1);
	}
	return 0;
}

/* What rawset put in _G itself would be seen by the next call to take the
 * lock: move it to c's globals (drop: throw it away). Usually _G is empty
 * and this is one lua_next. */
static void globals_sweep(struct pxlua_call *c, bool drop)
{
	lua_State *L = c->st->L;

	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
	lua_pushnil(L);
	if (!lua_next(L, -2)) {
		lua_pop(L, 1);
		return;
	}
	lua_pop(L, 2);
	if (!drop) {
		lua_pushcfunction(L, move_raw_globals);
		lua_pushvalue(L, -2);
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->env_ref);
		if (lua_pcall(L, 2, 0, 0) == LUA_OK) {
			lua_pop(L, 1);
			return;
		}
		lua_pop(L, 1); /* out of memory: what is left goes */
	}
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_pushnil(L);
		lua_rawset(L, -4);
	}
	lua_pop(L, 1);
}

static void state_lock(struct pxlua_call *c)
{
	struct pxlua_state *st = c->st;

	pthread_mutex_lock(&st->lock);
	st->running = c;
	if (c->env_ref != LUA_NOREF && st->globals_of != c->serial)
		globals_point(st, c->env_ref, c->serial);
}

static void state_unlock(struct pxlua_call *c)
{
	if (c->env_ref != LUA_NOREF)
		globals_sweep(c, false);
	c->st->running = NULL;
	pthread_mutex_unlock(&c->st->lock);
}

/* The run of the file keeps the lock: calls waiting for the state must not
 * see it half made. No call at all: a finalizer run by lua_close. */
void pxlua_lock(struct pxlua_call *c)
{
	if (c && !c->loading)
		state_lock(c);
}

void pxlua_unlock(struct pxlua_call *c)
{
	if (c && !c->loading)
		state_unlock(c);
}

/* Make the coroutine and the globals table of c (light userdata at 1). */
static int call_begin(lua_State *L)
{
	struct pxlua_call *c = lua_touserdata(L, 1);
	struct pxlua_state *st = c->st;
	lua_State *co = lua_newthread(L);

	c->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	c->co = co;
	lua_newtable(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, st->pcmt_ref);
	lua_setmetatable(L, -2);
	c->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

int pxlua_call_begin(struct pxlua_call *c)
{
	struct pxlua_state *st = c->st;
	lua_State *L = st->L;
	int rc;

	c->co_ref = c->env_ref = LUA_NOREF;
	c->co = NULL;
	if (++st->call_serial == 0)
		++st->call_serial; /* 0 is the file's own globals */
	c->serial = st->call_serial;
	lua_pushcfunction(L, call_begin);
	lua_pushlightuserdata(L, c);
	rc = lua_pcall(L, 1, 0, 0);
	if (rc != LUA_OK) {
		lua_pop(L, 1);
		pxlua_call_end(c);
		return -1;
	}
	globals_point(st, c->env_ref, c->serial);
	return 0;
}

void pxlua_call_end(struct pxlua_call *c)
{
	struct pxlua_state *st = c->st;

	if (c->env_ref != LUA_NOREF) {
		globals_sweep(c, true);
		globals_point(st, st->base_ref, 0); /* lets the table go */
		luaL_unref(st->L, LUA_REGISTRYINDEX, c->env_ref);
	}
	luaL_unref(st->L, LUA_REGISTRYINDEX, c->co_ref);
	c->env_ref = c->co_ref = LUA_NOREF;
	c->co = NULL;
}

/* ---------------------------------------------------------------- limits */

/* Only the holder of the state lock allocates, so the bytes are charged to
 * the call that runs. Its charge counts what it allocated minus what was
 * freed while it ran: garbage a call leaves when it blocks may be freed in
 * another call's turn and credited to that one; the ceiling is a guard
 * against runaways, not an exact account. A call over its ceiling is
 * refused once, which makes Lua collect all garbage of the state (credited
 * to it) and try again; refused a second time, it is stopped. */
void *pxlua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct pxlua_state *st = ud;
	struct pxlua_call *c = st->running;
	size_t old = ptr ? osize : 0;
	size_t used = __atomic_load_n(&st->mem_used, __ATOMIC_RELAXED);
	void *n;

	if (nsize == 0) {
		free(ptr);
		__atomic_store_n(&st->mem_used, used - old, __ATOMIC_RELAXED);
		if (c)
			c->mem_charge -= (long long)old;
		return NULL;
	}
	if (c && c->mem_limited && nsize > old &&
	    c->mem_charge + (long long)(nsize - old) > c->mem_limit) {
		if (c->refused && c->stop == PXLUA_STOP_NONE)
			c->stop = PXLUA_STOP_MEMORY;
		c->refused = true;
		return NULL;
	}
	n = realloc(ptr, nsize);
	if (n) {
		__atomic_store_n(&st->mem_used, used - old + nsize, __ATOMIC_RELAXED);
		if (c) {
			c->mem_charge += (long long)nsize - (long long)old;
			c->refused = false;
		}
	}
	return n;
}

/* Where the running Lua code is, as "file:line", into st->where. */
static void note_where(lua_State *L, struct pxlua_call *c)
{
	lua_Debug ar;

	c->where[0] = '\0';
	for (int level = 0; lua_getstack(L, level, &ar); level++) {
		if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
			snprintf(c->where, sizeof(c->where), "%s:%d", ar.short_src, ar.currentline);
			return;
		}
	}
}

/* Every PXLUA_HOOK_TICK instructions: spend the budget, and raise again an
 * unwind that Lua code caught (coroutine.resume does). */
void pxlua_count_hook(lua_State *L, lua_Debug *ar)
{
	struct pxlua_call *c = pxlua_call_of(L);

	(void)ar;
	if (!c)
		return;
	if (c->stop == PXLUA_STOP_NONE && c->ticks_left >= 0 && --c->ticks_left < 0) {
		note_where(L, c);
		c->stop = PXLUA_STOP_BUDGET;
	}
	if (c->stop == PXLUA_STOP_MEMORY && !c->where[0])
		note_where(L, c);
	if (c->stop != PXLUA_STOP_NONE) {
		lua_pushlightuserdata(L, &control_mark);
		lua_error(L);
	}
}

/* The budget and the ceiling belong to the call (the hook, set once on
 * the state's main thread and inherited by every coroutine, finds the call
 * through the state). */
void pxlua_limits_start(struct pxlua_call *c)
{
	const struct pxlua_settings *set = &c->st->gen->set;

	c->stop = PXLUA_STOP_NONE;
	c->where[0] = '\0';
	c->refused = false;
	c->ticks_left = set->instruction_limit > 0
				? (set->instruction_limit + PXLUA_HOOK_TICK - 1) / PXLUA_HOOK_TICK
				: -1;
	c->mem_limited = set->memory_limit_kib > 0;
	c->mem_limit = c->mem_charge + set->memory_limit_kib * 1024;
}

void pxlua_limits_stop(struct pxlua_call *c)
{
	c->mem_limited = false;
	c->ticks_left = -1;
}

/* ---------------------------------------------------------------- errors */

int pxlua_msgh(lua_State *L)
{
	const char *msg;

	if (lua_touserdata(L, 1) == &control_mark)
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

void pxlua_error_line(lua_State *L, int status, char *out, size_t size, char *tb, size_t tbsize)
{
	const char *msg = lua_tostring(L, -1);
	const char *trace;
	size_t len;

	if (tb && tbsize)
		tb[0] = '\0';
	if (status == LUA_ERRMEM) {
		snprintf(out, size, "out of memory");
		return;
	}
	if (!msg) {
		snprintf(out, size, "(error object is a %s value)", luaL_typename(L, -1));
		return;
	}
	trace = strstr(msg, "\nstack traceback:");
	len = trace ? (size_t)(trace - msg) : strlen(msg);
	if (len >= size)
		len = size - 1;
	memcpy(out, msg, len);
	out[len] = '\0';
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	if (trace && tb && tbsize) {
		/* "a <- b <- c", without the C frames that say nothing. */
		size_t used = 0;
		const char *p = strchr(trace + 1, '\n');
		while (p && used + 1 < tbsize) {
			const char *s = p + 1, *e = strchr(s, '\n');
			size_t n = e ? (size_t)(e - s) : strlen(s);
			while (n && (*s == '\t' || *s == ' '))
				s++, n--;
			p = e;
			if (!n || !strncmp(s, "[C]:", 4))
				continue;
			used += (size_t)snprintf(tb + used, tbsize - used, "%s%.*s",
						 used ? " <- " : "", (int)n, s);
		}
		if (used >= tbsize)
			tb[tbsize - 1] = '\0';
	}
}

/* ---------------------------------------------------------------- helpers */

static px_channel *need_channel(lua_State *L, const char *what, const char *name)
{
	struct pxlua_call *c = pxlua_call_of(L);

	if (!c || !c->ch)
		luaL_error(L, "%s%s: only inside an extension function running on a channel", what,
			   name);
	return c->ch;
}

/* A copy in C memory of a string argument, for use without the state
 * lock; raises when memory runs out. Free it before raising anything. */
static char *dup_arg(lua_State *L, const char *s)
{
	char *copy = strdup(s ? s : "");

	if (!copy)
		luaL_error(L, "out of memory");
	return copy;
}

static int push_string(lua_State *L)
{
	lua_pushlstring(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
	return 1;
}

/* Push buf[0..len) and free buf, also when pushing raises. */
static void push_freed(lua_State *L, char *buf, size_t len)
{
	int rc;

	lua_pushcfunction(L, push_string);
	lua_pushlightuserdata(L, buf);
	lua_pushinteger(L, (lua_Integer)len);
	rc = lua_pcall(L, 2, 1, 0);
	free(buf);
	if (rc != LUA_OK)
		lua_error(L);
}

/* px_func_read and px_func_write without the state lock (a dialplan
 * function may read a database, or wait); expr and value in C memory. */
static int func_read_unlocked(lua_State *L, px_channel *ch, const char *expr, char *buf,
			      size_t size, px_err *err)
{
	struct pxlua_call *c = pxlua_call_of(L);
	int rc;

	pxlua_unlock(c);
	rc = px_func_read(ch, expr, buf, size, err);
	pxlua_lock(c);
	return rc;
}

static int func_write_unlocked(lua_State *L, px_channel *ch, const char *expr, const char *value,
			       px_err *err)
{
	struct pxlua_call *c = pxlua_call_of(L);
	int rc;

	pxlua_unlock(c);
	rc = px_func_write(ch, expr, value, err);
	pxlua_lock(c);
	return rc;
}

/* Append the value at index i as application data: strings and numbers as
 * Lua writes them, booleans as true/false, nil as nothing. */
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

/* Join the values at first..last with ',' and push the result. */
static const char *push_joined(lua_State *L, int first, int last, const char *what)
{
	luaL_Buffer b;

	luaL_buffinit(L, &b);
	for (int i = first; i <= last; i++) {
		if (i > first)
			luaL_addchar(&b, ',');
		add_text(L, &b, i, what, i - first + 1);
	}
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

/* Run application name with data on the call's channel, as pbx_lua does:
 * -1 from it unwinds the function (the call is over); a move of the
 * channel's dialplan position (Goto) unwinds it to jump there. */
static void run_app(lua_State *L, const char *name, const char *data)
{
	struct pxlua_call *c = pxlua_call_of(L);
	px_channel *ch = need_channel(L, "app.", name);
	char ctx[PXLUA_POS_MAX], ext[PXLUA_POS_MAX];
	char *app, *args;
	px_err err = {""};
	bool exists = true;
	int rc;

	if (!c->in_h && px_channel_is_hungup(ch))
		pxlua_unwind(L, PXLUA_STOP_HANGUP);
	c->jumped = false;
	app = dup_arg(L, name);
	args = strdup(data);
	if (!args) {
		free(app);
		luaL_error(L, "out of memory");
	}
	/* An application may run for the whole call (Dial): other calls of
	 * the state run meanwhile. */
	pxlua_unlock(c);
	rc = px_app_exec(ch, app, args, &err);
	if (rc < 0 && err.msg[0])
		exists = px_app_exists(app);
	pxlua_lock(c);
	free(app);
	free(args);
	if (rc < 0 && err.msg[0]) {
		if (!exists)
			luaL_error(L, "no such application '%s'", name);
		luaL_error(L, "app.%s: %s", name, err.msg);
	}
	if (rc < 0) {
		px_debug(1, "pbx_lua: %s: %s returned -1; leaving the extension",
			 px_channel_name(ch), name);
		pxlua_unwind(L, PXLUA_STOP_HANGUP);
	}
	if (c->in_h)
		return;
	px_channel_get_dialplan(ch, ctx, sizeof(ctx), ext, sizeof(ext));
	if (c->jumped || strcmp(ctx, c->context) || strcmp(ext, c->exten))
		pxlua_unwind(L, PXLUA_STOP_GOTO);
}

/* ---------------------------------------------------------------- app */

static int app_call(lua_State *L)
{
	const char *name = lua_tostring(L, lua_upvalueindex(1));
	const char *data = push_joined(L, 1, lua_gettop(L), name);

	run_app(L, name, data);
	return 0;
}

/* __index of app: app.dial and app["Dial"] are functions that run Dial
 * (found case-insensitively when called). Functions of applications that
 * exist are kept in the table. */
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

/* ---------------------------------------------------------------- channel */

/* Push a function's value (name is "NAME(args)"), or raise its error. The
 * function runs without the state lock, into C memory. */
static void push_function(lua_State *L, px_channel *ch, const char *name)
{
	char *expr = dup_arg(L, name), *buf = NULL;
	px_err err = {""};
	size_t len = 0;
	int rc = -1;

	for (size_t size = 1024;; size *= 4) {
		free(buf);
		buf = malloc(size);
		if (!buf) {
			px_err_set(&err, "out of memory");
			rc = -1;
			break;
		}
		buf[0] = '\0';
		rc = func_read_unlocked(L, ch, expr, buf, size, &err);
		len = strlen(buf);
		if (rc < 0 || len + 1 < size || size >= VALUE_MAX)
			break;
	}
	free(expr);
	if (rc < 0) {
		free(buf);
		luaL_error(L, "channel[\"%s\"]: %s", name, err.msg);
		return;
	}
	push_freed(L, buf, len);
}

/* Push a variable (the channel's, else a global one) or nil. The core
 * copies into a buffer without telling the length, so a value that fills
 * the buffer is read again with a larger one. */
static void push_variable(lua_State *L, px_channel *ch, const char *name)
{
	for (size_t size = 256;; size *= 4) {
		luaL_Buffer b;
		char *buf = luaL_buffinitsize(L, &b, size);
		size_t len;

		if ((!ch || px_channel_var_get(ch, name, buf, size) < 0) &&
		    px_global_get(name, buf, size) < 0) {
			luaL_pushresultsize(&b, 0);
			lua_pop(L, 1);
			lua_pushnil(L);
			return;
		}
		len = strlen(buf);
		if (len + 1 < size || size >= VALUE_MAX) {
			luaL_pushresultsize(&b, len);
			return;
		}
		luaL_pushresultsize(&b, 0);
		lua_pop(L, 1);
	}
}

static void read_value(lua_State *L, const char *name)
{
	px_channel *ch = need_channel(L, "channel.", name);

	if (strchr(name, '('))
		push_function(L, ch, name);
	else
		push_variable(L, ch, name);
}

/* Set (or with nil, remove) variable or function name from the value at vi. */
static void write_value(lua_State *L, const char *name, int vi)
{
	px_channel *ch = need_channel(L, "channel.", name);
	luaL_Buffer b;
	const char *value = NULL;

	if (!lua_isnoneornil(L, vi)) {
		luaL_buffinit(L, &b);
		add_text(L, &b, vi, name, 1);
		luaL_pushresult(&b);
		value = lua_tostring(L, -1);
	}
	if (strchr(name, '(')) {
		px_err err = {""};
		char *expr = dup_arg(L, name), *copy = strdup(value ? value : "");
		int rc = -1;

		if (copy)
			rc = func_write_unlocked(L, ch, expr, copy, &err);
		else
			px_err_set(&err, "out of memory");
		free(expr);
		free(copy);
		if (rc < 0)
			luaL_error(L, "channel[\"%s\"]: %s", name, err.msg);
		return;
	}
	if (px_channel_var_is_builtin(name))
		luaL_error(L, "channel.%s is read-only", name);
	px_channel_var_set(ch, name, value);
}

static const char *var_name(lua_State *L, const char *method)
{
	const char *name;

	if (!lua_istable(L, 1) || !luaL_getmetafield(L, 1, "__name"))
		luaL_error(L, "%s: call it as channel.NAME:%s()", method, method);
	lua_pop(L, 1);
	lua_rawgeti(L, 1, 1);
	name = lua_tostring(L, -1);
	if (!name || !name[0])
		luaL_error(L, "%s: a channel variable needs a name", method);
	return name;
}

/* channel.NAME:get() */
static int var_get(lua_State *L)
{
	read_value(L, var_name(L, "get"));
	return 1;
}

/* channel.NAME:set(value) */
static int var_set(lua_State *L)
{
	write_value(L, var_name(L, "set"), 2);
	return 0;
}

static void push_var_object(lua_State *L, const char *name)
{
	lua_createtable(L, 1, 0);
	lua_pushstring(L, name);
	lua_rawseti(L, -2, 1);
	luaL_setmetatable(L, VAR_MT);
}

/* channel.NAME.get, .set and .value */
static int var_index(lua_State *L)
{
	const char *key = luaL_checkstring(L, 2);

	if (!strcmp(key, "get"))
		lua_pushcfunction(L, var_get);
	else if (!strcmp(key, "set"))
		lua_pushcfunction(L, var_set);
	else if (!strcmp(key, "value")) {
		lua_settop(L, 1);
		return var_get(L);
	} else
		return luaL_error(L, "channel.%s.%s: a channel variable has get, set and value",
				  var_name(L, "get"), key);
	return 1;
}

/* channel.NAME.value = v */
static int var_newindex(lua_State *L)
{
	const char *key = luaL_checkstring(L, 2);

	if (strcmp(key, "value") != 0)
		return luaL_error(L, "channel.%s.%s cannot be set; only .value", var_name(L, "set"),
				  key);
	write_value(L, var_name(L, "set"), 3);
	return 0;
}

/* channel.CALLERID("name"): the object of the function CALLERID(name). */
static int var_call(lua_State *L)
{
	int n = lua_gettop(L);
	const char *name = var_name(L, "call");
	const char *args;

	if (strchr(name, '('))
		return luaL_error(L, "channel[\"%s\"] is not a function name to call", name);
	args = push_joined(L, 2, n, name);
	lua_pushfstring(L, "%s(%s)", name, args);
	push_var_object(L, lua_tostring(L, -1));
	return 1;
}

static int var_tostring(lua_State *L)
{
	lua_pushfstring(L, "channel.%s", var_name(L, "tostring"));
	return 1;
}

/* __index of channel: channel.NAME is an object with get, set and value. */
static int chan_index(lua_State *L)
{
	push_var_object(L, luaL_checkstring(L, 2));
	return 1;
}

/* __newindex of channel: channel.NAME = value, as in Asterisk. */
static int chan_newindex(lua_State *L)
{
	write_value(L, luaL_checkstring(L, 2), 3);
	return 0;
}

/* ---------------------------------------------------------------- pbx_lua globals */

static int l_check_hangup(lua_State *L)
{
	struct pxlua_call *c = pxlua_call_of(L);

	lua_pushboolean(L, c && c->ch && px_channel_is_hungup(c->ch));
	return 1;
}

/* Media never waits for the dialplan here (media workers run on their
 * own), so autoservice has nothing to do; the calls keep their meaning. */
static int l_autoservice_start(lua_State *L)
{
	need_channel(L, "autoservice_start", "");
	pxlua_call_of(L)->autoservice = true;
	return 0;
}

static int l_autoservice_stop(lua_State *L)
{
	need_channel(L, "autoservice_stop", "");
	pxlua_call_of(L)->autoservice = false;
	return 0;
}

static int l_autoservice_status(lua_State *L)
{
	struct pxlua_call *c = pxlua_call_of(L);

	lua_pushboolean(L, c && c->autoservice);
	return 1;
}

/* ---------------------------------------------------------------- plexus.* */

static void get_into(lua_State *L, px_channel *ch, const char *name, const char *field, bool num)
{
	char buf[256];

	if (px_channel_var_get(ch, name, buf, sizeof(buf)) == 0 && buf[0]) {
		if (num)
			lua_pushinteger(L, strtoll(buf, NULL, 10));
		else
			lua_pushstring(L, buf);
		lua_setfield(L, -2, field);
	}
}

/* plexus.dial{ "SIP/1001", "SIP/1002", timeout = 20, options = "", caller_id = "" } */
static int l_dial(lua_State *L)
{
	px_channel *ch = need_channel(L, "plexus.", "dial");
	luaL_Buffer b;
	lua_Integer n;
	const char *data;

	if (lua_type(L, 1) == LUA_TSTRING) {
		lua_createtable(L, 1, 0);
		lua_pushvalue(L, 1);
		lua_rawseti(L, -2, 1);
		lua_replace(L, 1);
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	n = (lua_Integer)lua_rawlen(L, 1);
	if (n < 1)
		return luaL_error(
			L, "plexus.dial: give at least one target: plexus.dial{\"SIP/1001\"}");
	luaL_buffinit(L, &b);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
			return luaL_error(L, "plexus.dial: target %d is a %s, not a string", (int)i,
					  luaL_typename(L, -1));
		if (i > 1)
			luaL_addchar(&b, '&');
		luaL_addvalue(&b);
	}
	luaL_addchar(&b, ',');
	if (lua_getfield(L, 1, "timeout") != LUA_TNIL) {
		if (!lua_isnumber(L, -1))
			return luaL_error(L, "plexus.dial: timeout must be a number of seconds");
		luaL_addvalue(&b);
	} else {
		lua_pop(L, 1);
	}
	luaL_addchar(&b, ',');
	if (lua_getfield(L, 1, "options") != LUA_TNIL)
		luaL_addvalue(&b);
	else
		lua_pop(L, 1);
	luaL_pushresult(&b);
	data = lua_tostring(L, -1);
	if (lua_getfield(L, 1, "caller_id") != LUA_TNIL) {
		px_err err = {""};
		char *cid = dup_arg(L, luaL_checkstring(L, -1));
		int rc = func_write_unlocked(L, ch, "CALLERID(all)", cid, &err);

		free(cid);
		if (rc < 0)
			return luaL_error(L, "plexus.dial: caller_id: %s", err.msg);
	}
	lua_pop(L, 1);
	run_app(L, "Dial", data);
	lua_createtable(L, 0, 5);
	get_into(L, ch, "DIALSTATUS", "status", false);
	get_into(L, ch, "DIALEDTIME", "dialed_time", true);
	get_into(L, ch, "DIALEDPEERNAME", "peer", false);
	lua_pushinteger(L, px_channel_hangup_cause(ch));
	lua_setfield(L, -2, "cause");
	return 1;
}

/* plexus.dial_trunk_group{ "trunkA", "trunkB", number = "+15551234567",
 * timeout = 30, options = "", caller_id = "" }: Dial through the trunks in
 * turn (SIP/trunkA/number&SIP/trunkB/number), failing over on a route's
 * failure. Returns what plexus.dial returns. */
static int l_dial_trunk_group(lua_State *L)
{
	const char *number, *tech = "SIP";
	lua_Integer n;

	luaL_checktype(L, 1, LUA_TTABLE);
	n = (lua_Integer)lua_rawlen(L, 1);
	if (n < 1)
		return luaL_error(L,
				  "plexus.dial_trunk_group: give at least one trunk: "
				  "plexus.dial_trunk_group{\"trunkA\", number = \"+15551234567\"}");
	if (lua_getfield(L, 1, "number") != LUA_TSTRING && !lua_isnumber(L, -1))
		return luaL_error(L, "plexus.dial_trunk_group: number = \"...\" is missing");
	number = lua_tostring(L, -1);
	if (!number[0] || strpbrk(number, "&,/ "))
		return luaL_error(L, "plexus.dial_trunk_group: '%s' is not a number", number);
	if (lua_getfield(L, 1, "tech") == LUA_TSTRING)
		tech = lua_tostring(L, -1);
	lua_createtable(L, (int)n, 3);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
			return luaL_error(L,
					  "plexus.dial_trunk_group: trunk %d is a %s, not a name",
					  (int)i, luaL_typename(L, -1));
		if (strpbrk(lua_tostring(L, -1), "&,/ ") || !lua_tostring(L, -1)[0])
			return luaL_error(L, "plexus.dial_trunk_group: '%s' is not a trunk name",
					  lua_tostring(L, -1));
		lua_pushfstring(L, "%s/%s/%s", tech, lua_tostring(L, -1), number);
		lua_rawseti(L, -3, i);
		lua_pop(L, 1);
	}
	static const char *const keep[] = {"timeout", "options", "caller_id"};
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		lua_getfield(L, 1, keep[i]);
		lua_setfield(L, -2, keep[i]);
	}
	lua_replace(L, 1);
	lua_settop(L, 1);
	return l_dial(L);
}

/* plexus.e164(number, { country = "1", national_prefix = "1",
 * international_prefix = "011" }): "+15551234567", or nil and why. Spaces,
 * dashes, dots and brackets are dropped; "+" or the international prefix
 * keep the country given; the national (trunk) prefix, or no prefix at
 * all, means the number is in the given country. */
static int l_e164(lua_State *L)
{
	const char *in = luaL_checkstring(L, 1), *country = NULL, *nat = "", *intl = "00";
	char digits[64];
	size_t n = 0;
	bool plus = false;

	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		if (lua_getfield(L, 2, "country") != LUA_TNIL)
			country = luaL_checkstring(L, -1);
		if (lua_getfield(L, 2, "national_prefix") != LUA_TNIL)
			nat = luaL_checkstring(L, -1);
		if (lua_getfield(L, 2, "international_prefix") != LUA_TNIL)
			intl = luaL_checkstring(L, -1);
	}
	for (const char *p = in; *p; p++) {
		if (*p == '+' && n == 0 && !plus) {
			plus = true;
		} else if (*p >= '0' && *p <= '9') {
			if (n + 1 >= sizeof(digits))
				goto bad;
			digits[n++] = *p;
		} else if (!strchr(" -.()", *p)) {
			goto bad;
		}
	}
	digits[n] = '\0';
	if (n == 0)
		goto bad;
	if (plus) {
		lua_pushfstring(L, "+%s", digits);
		return 1;
	}
	if (intl[0] && !strncmp(digits, intl, strlen(intl)) && n > strlen(intl)) {
		lua_pushfstring(L, "+%s", digits + strlen(intl));
		return 1;
	}
	if (!country || !country[0] || strspn(country, "0123456789") != strlen(country)) {
		lua_pushnil(L);
		lua_pushfstring(L, "'%s' is national; give country = \"NN\"", in);
		return 2;
	}
	if (nat[0] && !strncmp(digits, nat, strlen(nat)) && n > strlen(nat)) {
		lua_pushfstring(L, "+%s%s", country, digits + strlen(nat));
		return 1;
	}
	lua_pushfstring(L, "+%s%s", country, digits);
	return 1;
bad:
	lua_pushnil(L);
	lua_pushfstring(L, "'%s' is not a phone number", in);
	return 2;
}

/* Methods of plexus.channel work with '.' and ':' alike. */
static int self_offset(lua_State *L)
{
	return lua_istable(L, 1) && lua_rawequal(L, 1, lua_upvalueindex(1)) ? 1 : 0;
}

static int ch_name(lua_State *L)
{
	lua_pushstring(L, px_channel_name(need_channel(L, "plexus.channel.", "name")));
	return 1;
}

static int ch_uniqueid(lua_State *L)
{
	lua_pushstring(L, px_channel_uniqueid(need_channel(L, "plexus.channel.", "uniqueid")));
	return 1;
}

static int ch_get(lua_State *L)
{
	read_value(L, luaL_checkstring(L, 1 + self_offset(L)));
	return 1;
}

static int ch_set(lua_State *L)
{
	int o = self_offset(L);

	write_value(L, luaL_checkstring(L, 1 + o), 2 + o);
	return 0;
}

static int ch_caller(lua_State *L)
{
	char num[256], name[256];

	px_channel_get_caller(need_channel(L, "plexus.channel.", "caller"), num, sizeof(num), name,
			      sizeof(name));
	lua_pushstring(L, num);
	lua_pushstring(L, name);
	return 2;
}

static int ch_set_caller(lua_State *L)
{
	px_channel *ch = need_channel(L, "plexus.channel.", "set_caller");
	int o = self_offset(L);

	px_channel_set_caller(ch, luaL_optstring(L, 1 + o, NULL), luaL_optstring(L, 2 + o, NULL));
	return 0;
}

static int ch_state(lua_State *L)
{
	lua_pushstring(L, px_channel_state_name(
				  px_channel_state(need_channel(L, "plexus.channel.", "state"))));
	return 1;
}

static int ch_answer(lua_State *L)
{
	px_channel *ch = need_channel(L, "plexus.channel.", "answer");
	struct pxlua_call *c = pxlua_call_of(L);
	int rc;

	pxlua_unlock(c); /* the technology may wait for the answer to go out */
	rc = px_channel_answer(ch);
	pxlua_lock(c);
	if (rc != 0)
		pxlua_unwind(L, PXLUA_STOP_HANGUP);
	return 0;
}

static int ch_hangup(lua_State *L)
{
	px_channel *ch = need_channel(L, "plexus.channel.", "hangup");
	lua_Integer cause = luaL_optinteger(L, 1 + self_offset(L), PX_CAUSE_NORMAL_CLEARING);

	if (cause < 1 || cause > 127)
		return luaL_error(L, "plexus.channel.hangup: cause %d is not a Q.850 cause (1-127)",
				  (int)cause);
	struct pxlua_call *c = pxlua_call_of(L);

	pxlua_unlock(c); /* the technology's hangup may wait */
	px_channel_hangup(ch, (int)cause);
	pxlua_lock(c);
	if (!c->in_h)
		pxlua_unwind(L, PXLUA_STOP_HANGUP);
	return 0;
}

static int ch_is_hungup(lua_State *L)
{
	lua_pushboolean(L, px_channel_is_hungup(need_channel(L, "plexus.channel.", "is_hungup")));
	return 1;
}

/* Log the arguments joined by spaces, after the caller's file:line. */
static int log_message(lua_State *L, int level)
{
	int n = lua_gettop(L);
	luaL_Buffer b;
	const char *msg;

	luaL_buffinit(L, &b);
	luaL_where(L, 1);
	luaL_addvalue(&b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, ' ');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	msg = lua_tostring(L, -1);
	switch (level) {
	case PX_LOG_ERROR:
		px_log_error("%s", msg);
		break;
	case PX_LOG_WARNING:
		px_log_warning("%s", msg);
		break;
	case PX_LOG_NOTICE:
		px_log_notice("%s", msg);
		break;
	case PX_LOG_VERBOSE:
		px_verbose(1, "%s", msg);
		break;
	default:
		px_debug(1, "%s", msg);
		break;
	}
	return 0;
}

/* plexus.log.LEVEL(...) */
static int log_at(lua_State *L)
{
	return log_message(L, (int)lua_tointeger(L, lua_upvalueindex(1)));
}

/* DB through the DB functions of res_db. */
static const char *db_key(lua_State *L, const char *what)
{
	const char *family = luaL_checkstring(L, 1), *key = luaL_checkstring(L, 2);

	if (!family[0] || strchr(family, '/') || !key[0])
		luaL_error(L, "plexus.db.%s: family (without '/') and key must not be empty", what);
	return lua_pushfstring(L, "%s/%s", family, key);
}

static void db_read(lua_State *L, const char *fn, const char *fk, char *buf, size_t size)
{
	struct pxlua_call *c = pxlua_call_of(L);
	char expr[2048];
	px_err err = {""};

	snprintf(expr, sizeof(expr), "%s(%s)", fn, fk);
	if (func_read_unlocked(L, c ? c->ch : NULL, expr, buf, size, &err) < 0)
		luaL_error(L, "plexus.db: %s%s", err.msg,
			   px_func_exists(fn) ? "" : " (is res_db loaded?)");
}

static int db_get(lua_State *L)
{
	const char *fk = db_key(L, "get");
	char buf[8192];

	db_read(L, "DB_EXISTS", fk, buf, sizeof(buf));
	if (strcmp(buf, "1") != 0) {
		lua_pushnil(L);
		return 1;
	}
	db_read(L, "DB", fk, buf, sizeof(buf));
	lua_pushstring(L, buf);
	return 1;
}

static int db_exists(lua_State *L)
{
	char buf[8];

	db_read(L, "DB_EXISTS", db_key(L, "exists"), buf, sizeof(buf));
	lua_pushboolean(L, !strcmp(buf, "1"));
	return 1;
}

static int db_put(lua_State *L)
{
	struct pxlua_call *c = pxlua_call_of(L);
	const char *fk = db_key(L, "put");
	char *value = dup_arg(L, luaL_checkstring(L, 3));
	char expr[2048];
	px_err err = {""};
	int rc;

	snprintf(expr, sizeof(expr), "DB(%s)", fk);
	rc = func_write_unlocked(L, c ? c->ch : NULL, expr, value, &err);
	free(value);
	if (rc < 0)
		return luaL_error(L, "plexus.db: %s%s", err.msg,
				  px_func_exists("DB") ? "" : " (is res_db loaded?)");
	lua_pushboolean(L, 1);
	return 1;
}

static int db_del(lua_State *L)
{
	const char *fk = db_key(L, "del");
	char buf[8192];

	db_read(L, "DB_EXISTS", fk, buf, sizeof(buf));
	if (strcmp(buf, "1") != 0) {
		lua_pushboolean(L, 0);
		return 1;
	}
	db_read(L, "DB_DELETE", fk, buf, sizeof(buf));
	lua_pushboolean(L, 1);
	return 1;
}

static void install_plexus(lua_State *L)
{
	static const luaL_Reg channel_methods[] = {
		{"name", ch_name},     {"uniqueid", ch_uniqueid},
		{"get", ch_get},       {"set", ch_set},
		{"caller", ch_caller}, {"set_caller", ch_set_caller},
		{"state", ch_state},   {"answer", ch_answer},
		{"hangup", ch_hangup}, {"is_hungup", ch_is_hungup},
		{NULL, NULL}};
	static const luaL_Reg db_funcs[] = {{"get", db_get},
					    {"put", db_put},
					    {"del", db_del},
					    {"exists", db_exists},
					    {NULL, NULL}};
	static const struct {
		const char *name;
		int level;
	} levels[] = {{"error", PX_LOG_ERROR},     {"warning", PX_LOG_WARNING},
		      {"notice", PX_LOG_NOTICE},   {"info", PX_LOG_VERBOSE},
		      {"verbose", PX_LOG_VERBOSE}, {"debug", PX_LOG_DEBUG}};

	lua_createtable(L, 0, 4);
	lua_pushcfunction(L, l_dial);
	lua_setfield(L, -2, "dial");
	lua_pushcfunction(L, l_dial_trunk_group);
	lua_setfield(L, -2, "dial_trunk_group");
	lua_pushcfunction(L, l_e164);
	lua_setfield(L, -2, "e164");

	lua_createtable(L, 0, 10);
	lua_pushvalue(L, -1);
	luaL_setfuncs(L, channel_methods, 1); /* the table itself as upvalue: ':' calls */
	lua_setfield(L, -2, "channel");

	lua_createtable(L, 0, 6);
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		lua_pushinteger(L, levels[i].level);
		lua_pushcclosure(L, log_at, 1);
		lua_setfield(L, -2, levels[i].name);
	}
	lua_setfield(L, -2, "log");

	luaL_newlib(L, db_funcs);
	lua_setfield(L, -2, "db");
	lua_setglobal(L, "plexus");
}

/* ---------------------------------------------------------------- the sandbox */

/* pcall and xpcall let the unwinds of pbx_lua through. */
static int pcall_done(lua_State *L, int status, lua_KContext extra)
{
	if (status != LUA_OK && status != LUA_YIELD) {
		if (stopping(L))
			return lua_error(L);
		lua_pushboolean(L, 0);
		lua_pushvalue(L, -2);
		return 2;
	}
	return lua_gettop(L) - (int)extra;
}

static int sb_pcall(lua_State *L)
{
	luaL_checkany(L, 1);
	lua_pushboolean(L, 1);
	lua_insert(L, 1);
	return pcall_done(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, pcall_done), 0);
}

/* The message handler given to xpcall, wrapped: unwinds pass untouched. */
static int xpcall_handler(lua_State *L)
{
	if (stopping(L))
		return 1;
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

static int sb_xpcall(lua_State *L)
{
	int n = lua_gettop(L);

	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushboolean(L, 1);
	lua_pushvalue(L, 1);
	lua_rotate(L, 3, 2); /* f, msgh, true, f, args... */
	lua_pushvalue(L, 2);
	lua_pushcclosure(L, xpcall_handler, 1);
	lua_replace(L, 2);
	return pcall_done(L, lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, pcall_done), 2);
}

/* load(chunk [, name [, mode [, env]]]) with mode forced to text. */
static int sb_load(lua_State *L)
{
	int n = lua_gettop(L), base;

	if (n < 2)
		lua_settop(L, 2);
	base = lua_gettop(L);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_pushliteral(L, "t");
	if (n >= 4)
		lua_pushvalue(L, 4);
	lua_call(L, n >= 4 ? 4 : 3, LUA_MULTRET);
	return lua_gettop(L) - base;
}

static int sb_loadfile(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int n = lua_gettop(L);

	if (luaL_loadfilex(L, path, "t") != LUA_OK) {
		lua_pushnil(L);
		lua_insert(L, -2);
		return 2;
	}
	if (n >= 3) {
		lua_pushvalue(L, 3);
		if (!lua_setupvalue(L, -2, 1))
			lua_pop(L, 1);
	}
	return 1;
}

static int sb_dofile(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);

	lua_settop(L, 1);
	if (luaL_loadfilex(L, path, "t") != LUA_OK)
		return lua_error(L);
	lua_call(L, 0, LUA_MULTRET);
	return lua_gettop(L) - 1;
}

/* The searcher of Lua modules on package.path, text chunks only. */
static int sb_searcher(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *file;

	lua_getglobal(L, "package");
	lua_getfield(L, -1, "searchpath");
	lua_pushstring(L, name);
	lua_getfield(L, -3, "path");
	lua_call(L, 2, 2);
	if (lua_isnil(L, -2))
		return 1; /* the message of searchpath */
	lua_pop(L, 1);
	file = lua_tostring(L, -1);
	if (luaL_loadfilex(L, file, "t") != LUA_OK)
		return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file,
				  lua_tostring(L, -1));
	lua_pushstring(L, file);
	return 2;
}

static int sb_collectgarbage(lua_State *L)
{
	static const char *const allowed[] = {"collect", "count", "step", "isrunning", NULL};
	const char *opt = luaL_optstring(L, 1, "collect");

	for (int i = 0; allowed[i]; i++) {
		if (!strcmp(opt, allowed[i])) {
			lua_pushvalue(L, lua_upvalueindex(1));
			lua_insert(L, 1);
			lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
			return lua_gettop(L);
		}
	}
	return luaL_error(L, "collectgarbage('%s') is not available in the dialplan", opt);
}

/* os.execute (allow_os) without the state lock: a command may take long. */
static int sb_execute(lua_State *L)
{
	const char *cmd = luaL_optstring(L, 1, NULL);
	struct pxlua_call *c = pxlua_call_of(L);
	char *copy = cmd ? dup_arg(L, cmd) : NULL;
	int stat;

	pxlua_unlock(c);
	stat = system(copy);
	pxlua_lock(c);
	free(copy);
	if (cmd)
		return luaL_execresult(L, stat);
	lua_pushboolean(L, stat);
	return 1;
}

/* print goes to the log (verbose 1) with the caller's place. */
static int sb_print(lua_State *L)
{
	return log_message(L, PX_LOG_VERBOSE);
}

static void remove_fields(lua_State *L, const char *lib, const char *const *names)
{
	if (lua_getglobal(L, lib) == LUA_TTABLE)
		for (int i = 0; names[i]; i++) {
			lua_pushnil(L);
			lua_setfield(L, -2, names[i]);
		}
	lua_pop(L, 1);
}

static void sandbox(lua_State *L, const struct pxlua_settings *set, const char *dir)
{
	static const char *const os_unsafe[] = {"execute", "remove",    "rename",
						"tmpname", "setlocale", NULL};
	static const char *const os_exit[] = {"exit", NULL};

	/* debug: only what error messages need. */
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	lua_getglobal(L, "debug");
	lua_createtable(L, 0, 1);
	lua_getfield(L, -2, "traceback");
	lua_setfield(L, -2, "traceback");
	lua_pushvalue(L, -1);
	lua_setglobal(L, "debug");
	lua_setfield(L, -3, "debug");
	lua_pop(L, 2);

	remove_fields(L, "os", os_exit);
	if (!set->allow_os) {
		remove_fields(L, "os", os_unsafe);
	} else if (lua_getglobal(L, "os") == LUA_TTABLE) {
		lua_pushcfunction(L, sb_execute);
		lua_setfield(L, -2, "execute");
		lua_pop(L, 1);
	} else {
		lua_pop(L, 1);
	}
	if (!set->allow_io) {
		lua_pushnil(L);
		lua_setglobal(L, "io");
		luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
		lua_pushnil(L);
		lua_setfield(L, -2, "io");
		lua_pop(L, 1);
	}
	if (set->allow_loadfile) {
		lua_register(L, "loadfile", sb_loadfile);
		lua_register(L, "dofile", sb_dofile);
	} else {
		lua_pushnil(L);
		lua_setglobal(L, "loadfile");
		lua_pushnil(L);
		lua_setglobal(L, "dofile");
	}
	lua_getglobal(L, "load");
	lua_pushcclosure(L, sb_load, 1);
	lua_setglobal(L, "load");
	lua_register(L, "pcall", sb_pcall);
	lua_register(L, "xpcall", sb_xpcall);
	lua_register(L, "print", sb_print);
	lua_getglobal(L, "collectgarbage");
	lua_pushcclosure(L, sb_collectgarbage, 1);
	lua_setglobal(L, "collectgarbage");

	lua_getglobal(L, "package");
	if (set->lua_path)
		lua_pushstring(L, set->lua_path);
	else
		lua_pushfstring(L, "%s/?.lua;%s/lua/?.lua", dir, dir);
	lua_setfield(L, -2, "path");
	if (!set->allow_c_modules) {
		lua_pushliteral(L, "");
		lua_setfield(L, -2, "cpath");
		lua_pushnil(L);
		lua_setfield(L, -2, "loadlib");
		lua_getfield(L, -1, "searchers");
		lua_createtable(L, 2, 0);
		lua_rawgeti(L, -2, 1); /* the preload searcher */
		lua_rawseti(L, -2, 1);
		lua_pushcfunction(L, sb_searcher);
		lua_rawseti(L, -2, 2);
		lua_setfield(L, -3, "searchers");
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* ---------------------------------------------------------------- per-call globals */

/* The file's globals move to a table of their own (base); _G stays empty
 * with a metatable that the state lock points at the running call's
 * globals (a table whose metatable's __index is base): a global a call
 * sets lands in its table, one it reads comes from its table or base.
 * Doing it on _G rather than on the file's _ENV upvalue keeps it true for
 * everything that reaches the globals: chunks of require and load, C code
 * (lua_getglobal), _G.x. */
int pxlua_freeze_globals(lua_State *L)
{
	struct pxlua_state *st = pxlua_state_of(L);

	lua_pushglobaltable(L);
	int g = lua_gettop(L);

	lua_newtable(L); /* base */
	int base = lua_gettop(L);
	for (lua_pushnil(L); lua_next(L, g);) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, base);
	}
	for (lua_pushnil(L); lua_next(L, base); lua_pop(L, 1)) {
		lua_pushvalue(L, -2);
		lua_pushnil(L);
		lua_rawset(L, g);
	}
	lua_pushvalue(L, base);
	st->base_ref = luaL_ref(L, LUA_REGISTRYINDEX);

	lua_createtable(L, 0, 1); /* metatable of per-call tables */
	lua_pushvalue(L, base);
	lua_setfield(L, -2, "__index");
	st->pcmt_ref = luaL_ref(L, LUA_REGISTRYINDEX);

	lua_createtable(L, 0, 2); /* metatable of _G: both keys exist from now on */
	lua_pushvalue(L, base);
	lua_setfield(L, -2, "__index");
	lua_newtable(L);
	lua_pushvalue(L, -1);
	st->sink_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_setfield(L, -2, "__newindex");
	lua_pushvalue(L, -1);
	st->gmt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_setmetatable(L, g);
	lua_settop(L, 0);
	globals_point(st, st->base_ref, 0);
	return 0;
}

/* ---------------------------------------------------------------- set-up */

int pxlua_setup_state(lua_State *L)
{
	static const luaL_Reg var_meta[] = {{"__index", var_index},
					    {"__newindex", var_newindex},
					    {"__call", var_call},
					    {"__tostring", var_tostring},
					    {NULL, NULL}};
	struct pxlua_state *st = pxlua_state_of(L);

	luaL_openlibs(L);
	sandbox(L, &st->gen->set, st->gen->dir);

	lua_newtable(L);
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, app_index);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
	lua_setglobal(L, "app");

	luaL_newmetatable(L, VAR_MT);
	luaL_setfuncs(L, var_meta, 0);
	lua_pop(L, 1);

	lua_newtable(L);
	lua_createtable(L, 0, 2);
	lua_pushcfunction(L, chan_index);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, chan_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_setmetatable(L, -2);
	lua_setglobal(L, "channel");

	lua_register(L, "check_hangup", l_check_hangup);
	lua_register(L, "autoservice_start", l_autoservice_start);
	lua_register(L, "autoservice_stop", l_autoservice_stop);
	lua_register(L, "autoservice_status", l_autoservice_status);
	install_plexus(L);
	return 0;
}
