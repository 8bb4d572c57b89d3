/*
 * pbx_lua: the Lua 5.4 dialplan engine, in the layout and with the API of
 * Asterisk's pbx_lua. This file owns the module: lua.conf (the sandbox
 * settings), the current generation and its reload (atomic: a file that
 * fails keeps the running one, calls in progress finish on theirs), the
 * Lua states each generation shares among its calls (which state a call
 * runs on, when a state is made and when it is closed), the engine
 * operations the core
 * calls (exists, canmatch, matchmore, exec) and the console commands
 * "dialplan show", "dialplan locate" and "dialplan reload". exec follows a
 * call as Asterisk's PBX loop does with pbx_lua: it runs the extension's
 * function; a Goto jumps to the target's function, an unknown extension to
 * 'i'; falling off the end of the function ends the call; and once the
 * channel has hung up, 'h' runs in the context the call was in.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/cli.h>
#include <plexus/config.h>
#include <plexus/core.h>
#include <plexus/dialplan.h>
#include <plexus/log.h>
#include <plexus/module.h>

#include "pbx_lua.h"

#define DIALPLAN_FILE "extensions.lua"
#define SETTINGS_FILE "lua.conf"
/* Calls sharing one Lua state. Each call costs a state about 2 KiB (its
 * coroutine and globals table) against some 25 KiB for a state; the state
 * lock is held only while Lua code runs (microseconds per call), so even
 * 64 calls on one state rarely wait for each other, and a daemon with
 * hundreds of calls has a handful of states. */
#define CALLS_PER_STATE 64
/* States with no call kept open per generation, ready for the next call;
 * more than this are closed as their last call ends. */
#define IDLE_STATES_MAX 1
/* A state with no call left that has grown this much past its size after
 * loading (after a full collection) is closed rather than kept. */
#define STATE_GROWTH_MAX (1024 * 1024)

__thread struct pxlua_call *pxlua_running;

static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pxlua_gen *current;  /* under gen_lock */
static unsigned generation_serial; /* under gen_lock */
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
static bool running; /* between load and unload; under reload_lock */
static px_module *self_module;

/* ---------------------------------------------------------------- settings */

static const struct px_config_option settings_options[] = {
	{"instruction_limit", PX_CFG_INT, "10000000", 0, 1000000000000LL, NULL,
	 offsetof(struct pxlua_settings, instruction_limit),
	 "Lua instructions one call may run in the dialplan (and the file at load); 0: no limit"},
	{"memory_limit", PX_CFG_INT, "8192", 0, 64LL * 1024 * 1024, NULL,
	 offsetof(struct pxlua_settings, memory_limit_kib),
	 "KiB a Lua state may grow by during one call; 0: no limit"},
	{"max_jumps", PX_CFG_INT, "1000", 1, 1000000, NULL,
	 offsetof(struct pxlua_settings, max_jumps),
	 "Goto, 'i' and 't' jumps one call may make before it is ended"},
	{"allow_io", PX_CFG_BOOL, "no", 0, 0, NULL, offsetof(struct pxlua_settings, allow_io),
	 "the io library (files) in the dialplan"},
	{"allow_os", PX_CFG_BOOL, "no", 0, 0, NULL, offsetof(struct pxlua_settings, allow_os),
	 "os.execute, os.remove, os.rename, os.tmpname, os.setlocale (os.exit never)"},
	{"allow_loadfile", PX_CFG_BOOL, "no", 0, 0, NULL,
	 offsetof(struct pxlua_settings, allow_loadfile), "loadfile and dofile (source text only)"},
	{"allow_c_modules", PX_CFG_BOOL, "no", 0, 0, NULL,
	 offsetof(struct pxlua_settings, allow_c_modules),
	 "require of C modules and package.loadlib"},
	{"lua_path", PX_CFG_STRING, NULL, 0, 0, NULL, offsetof(struct pxlua_settings, lua_path),
	 "package.path for require (default: the configuration directory and its lua/)"},
};

#define NOPTIONS (sizeof(settings_options) / sizeof(settings_options[0]))

/* lua.conf [general], or the defaults when there is no lua.conf. */
static int settings_load(struct pxlua_settings *set, px_err *err)
{
	char path[4096];
	px_config *cfg = NULL;
	const px_config_section *s = NULL;
	const char *dir = px_core_config_dir();
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", SETTINGS_FILE);
	if (access(path, F_OK) == 0) {
		if (px_config_load(path, &cfg, err) < 0)
			return -1;
		for (s = px_config_sections(cfg); s; s = px_config_section_next(s)) {
			if (!px_config_section_is_template(s) &&
			    strcmp(px_config_section_name(s), "general") != 0) {
				px_err_set(err,
					   "%s:%d: unknown section [%s]; lua.conf has [general]",
					   px_config_section_file(s), px_config_section_line(s),
					   px_config_section_name(s));
				px_config_unref(cfg);
				return -1;
			}
		}
		s = px_config_find(cfg, "general");
	}
	memset(set, 0, sizeof(*set));
	rc = px_config_apply(s, settings_options, NOPTIONS, set, err);
	px_config_unref(cfg);
	return rc;
}

/* ---------------------------------------------------------------- generations */

/* The current generation with a reference, or NULL. */
static struct pxlua_gen *gen_get(void)
{
	struct pxlua_gen *g;

	pthread_mutex_lock(&gen_lock);
	g = current;
	if (g)
		g->refs++;
	pthread_mutex_unlock(&gen_lock);
	return g;
}

static void gen_put(struct pxlua_gen *g)
{
	bool last;

	if (!g)
		return;
	pthread_mutex_lock(&gen_lock);
	last = --g->refs == 0;
	pthread_mutex_unlock(&gen_lock);
	if (last)
		pxlua_gen_free(g);
}

static size_t state_mem(struct pxlua_state *st)
{
	return __atomic_load_n(&st->mem_used, __ATOMIC_RELAXED);
}

/* Take st out of g's list. Under gen_lock. */
static void state_unlist(struct pxlua_gen *g, struct pxlua_state *st)
{
	for (struct pxlua_state **p = &g->states; *p; p = &(*p)->next) {
		if (*p == st) {
			*p = st->next;
			break;
		}
	}
	st->next = NULL;
	st->listed = false;
}

/* g's states with no call beyond the first IDLE_STATES_MAX (all of them
 * when g is no longer current), taken out of the list. Under gen_lock. */
static struct pxlua_state *states_take_idle(struct pxlua_gen *g, size_t keep)
{
	struct pxlua_state *out = NULL, **p = &g->states;

	while (*p) {
		struct pxlua_state *st = *p;
		if (st->ncalls == 0 && keep == 0) {
			*p = st->next;
			st->listed = false;
			st->next = out;
			out = st;
			continue;
		}
		if (st->ncalls == 0)
			keep--;
		p = &st->next;
	}
	return out;
}

/* Make g current (NULL: none). The old generation's idle states are closed
 * now; states with calls still running on it are closed when they end. */
static void gen_install(struct pxlua_gen *g)
{
	struct pxlua_gen *old;
	struct pxlua_state *idle = NULL;

	pthread_mutex_lock(&gen_lock);
	if (g) {
		g->id = ++generation_serial;
		g->loaded = time(NULL);
	}
	old = current;
	current = g;
	if (old)
		idle = states_take_idle(old, 0);
	pthread_mutex_unlock(&gen_lock);
	pxlua_states_close(idle);
	gen_put(old);
}

/* A state of g for one more call: the fullest that has room (packing calls
 * lets the states a peak made fall idle and close), or a new one, made
 * here. Calls that pick a state being made wait for its lock. */
static struct pxlua_state *state_enter(struct pxlua_gen *g, px_err *err)
{
	struct pxlua_state *st, *best = NULL;
	int rc;

	pthread_mutex_lock(&gen_lock);
	for (st = g->states; st; st = st->next)
		if (st->ncalls < CALLS_PER_STATE && (!best || st->ncalls > best->ncalls))
			best = st;
	if (best) {
		best->ncalls++;
		pthread_mutex_unlock(&gen_lock);
		return best;
	}
	st = pxlua_state_alloc(g);
	if (!st) {
		pthread_mutex_unlock(&gen_lock);
		px_err_set(err, "out of memory");
		return NULL;
	}
	/* A fresh lock: this never waits. Held until the state is made. */
	pthread_mutex_lock(&st->lock);
	st->serial = (unsigned)++g->created;
	st->ncalls = 1;
	st->listed = true;
	st->next = g->states;
	g->states = st;
	pthread_mutex_unlock(&gen_lock);
	rc = pxlua_state_make(st, err);
	if (rc < 0) {
		pthread_mutex_lock(&gen_lock);
		state_unlist(g, st); /* no new call picks it; those waiting see L == NULL */
		pthread_mutex_unlock(&gen_lock);
	}
	pthread_mutex_unlock(&st->lock);
	return st;
}

/* A call leaves st. The last call out closes it when it failed to be
 * made, when g is no longer current, when g keeps enough idle states, or
 * when it stays too big after a full collection. */
static void state_leave(struct pxlua_gen *g, struct pxlua_state *st)
{
	bool close = false, trim = false;

	pthread_mutex_lock(&gen_lock);
	if (--st->ncalls == 0) {
		size_t idle = 0;
		for (struct pxlua_state *s = g->states; s; s = s->next)
			idle += s->ncalls == 0;
		if (!st->listed || !st->L || g != current || idle > IDLE_STATES_MAX)
			close = true;
		else if (state_mem(st) > st->mem_loaded + STATE_GROWTH_MAX)
			trim = true;
		if (st->listed && (close || trim))
			state_unlist(g, st);
	}
	pthread_mutex_unlock(&gen_lock);
	if (trim) {
		/* Out of the list with no call: nobody else reaches it. */
		pthread_mutex_lock(&st->lock);
		lua_gc(st->L, LUA_GCCOLLECT);
		pthread_mutex_unlock(&st->lock);
		close = state_mem(st) > st->mem_loaded + STATE_GROWTH_MAX;
		pthread_mutex_lock(&gen_lock);
		if (!close && g == current) {
			st->listed = true;
			st->next = g->states;
			g->states = st;
		} else {
			close = true;
		}
		pthread_mutex_unlock(&gen_lock);
	}
	if (close)
		pxlua_state_close(st);
}

/* ---------------------------------------------------------------- the engine */

static bool pbx_lua_exists(const char *context, const char *exten, const char *callerid)
{
	struct pxlua_gen *g = gen_get();
	bool found = g && pxlua_find(g, context, exten, NULL);

	(void)callerid;
	gen_put(g);
	return found;
}

static bool pbx_lua_canmatch(const char *context, const char *exten, const char *callerid)
{
	struct pxlua_gen *g = gen_get();
	bool found = g && pxlua_close(g, context, exten, PXLUA_CANMATCH);

	(void)callerid;
	gen_put(g);
	return found;
}

static bool pbx_lua_matchmore(const char *context, const char *exten, const char *callerid)
{
	struct pxlua_gen *g = gen_get();
	bool found = g && pxlua_close(g, context, exten, PXLUA_MATCHMORE);

	(void)callerid;
	gen_put(g);
	return found;
}

/* What running one extension function came to. */
enum outcome {
	RETURNED, /* it fell off its end */
	HANGUP,   /* an application returned -1 or the channel hung up */
	JUMP,     /* the channel's position moved (Goto) */
	FAILED,   /* a Lua error, the budget or the memory ceiling */
};

/* What exec hands to the protected call of an extension function. */
struct call {
	const struct pxlua_ext *ext;
	const char *ext_context; /* the context that holds ext */
	const char *context;     /* the context asked for: the function's arguments */
	const char *exten;
};

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

/* Run one extension function on the call's coroutine, holding the state
 * lock for as long as Lua code runs (the API gives it back around anything
 * that blocks). */
static enum outcome run_function(struct pxlua_call *c, const struct pxlua_context *where,
				 const struct pxlua_ext *e, const char *context, const char *exten)
{
	px_channel *ch = c->ch;
	lua_State *co = c->co;
	struct call call = {
		.ext = e, .ext_context = where->name, .context = context, .exten = exten};
	const struct pxlua_settings *set = &c->st->gen->set;
	enum outcome out = RETURNED;
	int rc;

	snprintf(c->context, sizeof(c->context), "%s", context);
	snprintf(c->exten, sizeof(c->exten), "%s", exten);
	px_debug(1,
		 "pbx_lua: %s: running extensions.%s[\"%s\"] for %s@%s (generation %u, state %u)",
		 px_channel_name(ch), where->name, e->key, exten, context, c->st->gen->id,
		 c->st->serial);
	c->jumped = false;
	pxlua_lock(c);
	lua_pushcfunction(co, pxlua_msgh);
	lua_pushcfunction(co, call_extension);
	lua_pushlightuserdata(co, &call);
	rc = lua_pcall(co, 1, 0, 1);
	if (rc == LUA_ERRMEM && c->stop == PXLUA_STOP_NONE && c->refused && c->mem_limited)
		c->stop = PXLUA_STOP_MEMORY;
	if (rc != LUA_OK) {
		char line[PX_ERR_MAX], tb[1024];
		switch (c->stop) {
		case PXLUA_STOP_HANGUP:
			out = HANGUP;
			break;
		case PXLUA_STOP_GOTO:
			out = JUMP;
			break;
		case PXLUA_STOP_BUDGET:
			px_log_error("pbx_lua: %s: %s: extension %s@%s ran more than %lld Lua "
				     "instructions (instruction_limit in lua.conf); the call is "
				     "ended",
				     px_channel_name(ch), c->where[0] ? c->where : e->defined,
				     exten, context, set->instruction_limit);
			out = FAILED;
			break;
		case PXLUA_STOP_MEMORY:
			px_log_error("pbx_lua: %s: %s: extension %s@%s grew its Lua state by more "
				     "than %lld KiB (memory_limit in lua.conf); the call is ended",
				     px_channel_name(ch), c->where[0] ? c->where : e->defined,
				     exten, context, set->memory_limit_kib);
			out = FAILED;
			break;
		case PXLUA_STOP_NONE:
			pxlua_error_line(co, rc, line, sizeof(line), tb, sizeof(tb));
			px_log_error("pbx_lua: %s: %s%s%s", px_channel_name(ch), line,
				     tb[0] ? " (traceback: " : "", tb[0] ? tb : "");
			if (tb[0])
				px_log_error("pbx_lua: %s: traceback: %s", px_channel_name(ch), tb);
			out = FAILED;
			break;
		}
	}
	lua_settop(co, 0);
	pxlua_unlock(c);
	c->stop = PXLUA_STOP_NONE;
	return out;
}

/* The cause the caller is told when the dialplan ends by falling off an
 * extension, as Asterisk's autofallthrough derives it from DIALSTATUS. */
static int fallthrough_cause(px_channel *ch)
{
	char status[32];

	if (px_channel_hangup_cause(ch))
		return px_channel_hangup_cause(ch);
	if (px_channel_var_get(ch, "DIALSTATUS", status, sizeof(status)) == 0) {
		if (!strcasecmp(status, "BUSY"))
			return PX_CAUSE_USER_BUSY;
		if (!strcasecmp(status, "CONGESTION") || !strcasecmp(status, "CHANUNAVAIL"))
			return PX_CAUSE_CONGESTION;
	}
	return PX_CAUSE_NORMAL_CLEARING;
}

/* Run 'h' of context (if it has one) on the hung-up channel. */
static void run_h(struct pxlua_call *c, const char *context)
{
	const struct pxlua_context *where;
	const struct pxlua_ext *e = pxlua_find(c->st->gen, context, "h", &where);

	if (!e)
		return;
	px_verbose(3, "%s: running the h extension of context '%s'", px_channel_name(c->ch),
		   context);
	px_channel_set_dialplan(c->ch, context, "h");
	c->in_h = true;
	pxlua_limits_start(c);
	run_function(c, where, e, context, "h");
	pxlua_limits_stop(c);
	c->in_h = false;
}

/* Follow the call from context/exten until it ends or leaves the dialplan.
 * Runs without the state lock, but for the Lua functions. */
static int follow(struct pxlua_call *c, const char *context, const char *exten)
{
	struct pxlua_gen *g = c->st->gen;
	px_channel *ch = c->ch;
	char ctx[PXLUA_POS_MAX], ext[PXLUA_POS_MAX];
	long long jumps = 0;
	int ret = 0;
	bool go_h = false;

	snprintf(ctx, sizeof(ctx), "%s", context);
	snprintf(ext, sizeof(ext), "%s", exten);
	pxlua_limits_start(c);
	for (;;) {
		const struct pxlua_context *where;
		const struct pxlua_ext *e = pxlua_find(g, ctx, ext, &where);
		enum outcome out;

		if (!e) {
			if (strcmp(ext, "i") != 0 && pxlua_find(g, ctx, "i", NULL)) {
				px_verbose(3,
					   "%s: sent to the invalid extension 'i' of %s (%s is "
					   "not there)",
					   px_channel_name(ch), ctx, ext);
				px_channel_var_set(ch, "INVALID_EXTEN", ext);
				snprintf(ext, sizeof(ext), "i");
			} else {
				px_log_warning("pbx_lua: %s: no extension '%s' in context '%s'%s",
					       px_channel_name(ch), ext, ctx,
					       jumps ? "" : ", and no 'i' extension there");
				px_channel_set_hangup_cause(ch,
							    px_channel_hangup_cause(ch)
								    ? px_channel_hangup_cause(ch)
								    : PX_CAUSE_UNALLOCATED);
				px_channel_hangup(ch, PX_CAUSE_UNALLOCATED);
				ret = -1;
				go_h = true;
				break;
			}
		}
		if (e) {
			px_channel_set_dialplan(ch, ctx, ext);
			out = run_function(c, where, e, ctx, ext);
		} else {
			out = JUMP; /* to 'i' */
		}
		if (out == RETURNED) {
			px_verbose(3, "Auto fallthrough, channel '%s' leaves extension %s@%s",
				   px_channel_name(ch), ext, ctx);
			px_channel_hangup(ch, fallthrough_cause(ch));
			go_h = true;
			break;
		}
		if (out == HANGUP) {
			/* Not hung up: the call leaves the dialplan (a redirect). */
			go_h = px_channel_is_hungup(ch);
			break;
		}
		if (out == FAILED) {
			px_channel_hangup(ch, PX_CAUSE_TEMPORARY_FAILURE);
			ret = -1;
			go_h = true;
			break;
		}
		if (++jumps > g->set.max_jumps) {
			px_log_error("pbx_lua: %s: more than %lld jumps (Goto, 'i') in one call "
				     "(max_jumps in lua.conf); the call is ended",
				     px_channel_name(ch), g->set.max_jumps);
			px_channel_hangup(ch, PX_CAUSE_TEMPORARY_FAILURE);
			ret = -1;
			go_h = true;
			break;
		}
		if (e) /* a jump: the channel says where to */
			px_channel_get_dialplan(ch, ctx, sizeof(ctx), ext, sizeof(ext));
	}
	pxlua_limits_stop(c);
	if (go_h && px_channel_is_hungup(ch))
		run_h(c, ctx);
	return ret;
}

/* A call runs as a coroutine of a state it shares with other calls, with
 * globals of its own; the coroutine and the globals are dropped at the
 * end, whatever the end was (an error ends the call, not the state). */
static int pbx_lua_exec(px_channel *ch, const char *context, const char *exten)
{
	struct pxlua_call call = {.co_ref = LUA_NOREF, .env_ref = LUA_NOREF, .ticks_left = -1};
	struct pxlua_call *outer = pxlua_running;
	struct pxlua_state *st;
	struct pxlua_gen *g;
	px_err err = {""};
	int ret = -1;

	px_module_use(self_module);
	g = gen_get();
	if (!g) {
		px_log_error("pbx_lua: %s: no dialplan is loaded", px_channel_name(ch));
		goto out;
	}
	st = state_enter(g, &err);
	if (!st) {
		px_log_error("pbx_lua: %s: cannot prepare a Lua state: %s", px_channel_name(ch),
			     err.msg);
		goto release;
	}
	call.st = st;
	call.ch = ch;
	pxlua_lock(&call);
	if (!st->L) {
		pxlua_unlock(&call);
		px_log_error("pbx_lua: %s: cannot prepare a Lua state%s%s", px_channel_name(ch),
			     err.msg[0] ? ": " : " (making it failed for another call)", err.msg);
		goto leave;
	}
	if (pxlua_call_begin(&call) < 0) {
		pxlua_unlock(&call);
		px_log_error("pbx_lua: %s: cannot start the call in Lua: out of memory",
			     px_channel_name(ch));
		goto leave;
	}
	pxlua_unlock(&call);
	pxlua_running = &call;
	ret = follow(&call, context, exten);
	pxlua_running = outer;
	pxlua_lock(&call);
	pxlua_call_end(&call);
	pxlua_unlock(&call);
leave:
	state_leave(g, st);
release:
	gen_put(g);
out:
	px_module_unuse(self_module);
	return ret;
}

static const struct px_dialplan_engine pbx_lua_engine = {
	.name = "lua",
	.exists = pbx_lua_exists,
	.exec = pbx_lua_exec,
	.canmatch = pbx_lua_canmatch,
	.matchmore = pbx_lua_matchmore,
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

/* Build a new generation from lua.conf and the file and make it current;
 * on failure the running one stays and err says why. */
static int dialplan_reload(px_err *err)
{
	struct pxlua_settings set;
	struct pxlua_gen *g;
	char path[4096];
	int rc;

	pthread_mutex_lock(&reload_lock);
	if (!running) {
		pthread_mutex_unlock(&reload_lock);
		return px_err_set(err, "pbx_lua is being unloaded");
	}
	dialplan_path(path, sizeof(path));
	rc = settings_load(&set, err);
	if (rc == 0) {
		rc = pxlua_gen_build(path, &set, &g, err);
		px_config_options_free(settings_options, NOPTIONS, &set);
	}
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

static void show_context(px_cli *cli, const struct pxlua_gen *g, const struct pxlua_context *c)
{
	px_cli_printf(cli, "[ Context '%s' created by 'pbx_lua' ]\n", c->name);
	for (size_t i = 0; i < g->nhints; i++) {
		char quoted[128];
		if (strcmp(g->hints[i].context, c->name))
			continue;
		snprintf(quoted, sizeof(quoted), "'%s'", g->hints[i].exten);
		px_cli_printf(cli, "  %-20s => hint: %s\n", quoted, g->hints[i].device);
	}
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
	struct pxlua_gen *g;
	size_t shown = 0, exts = 0;
	unsigned long created;
	size_t open = 0, idle = 0, calls = 0, bytes = 0, nlines = 0;
	struct state_line {
		unsigned serial;
		size_t calls, bytes, loaded;
	} lines[16];
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
		show_context(cli, g, &g->ctxs[i]);
		shown++;
		exts += g->ctxs[i].nexts;
	}
	if (argc == 3 && !shown) {
		px_cli_printf(cli, "There is no context '%s' in %s.\n", argv[2], g->path);
		gen_put(g);
		return PX_CLI_FAILURE;
	}
	/* The list is stable under gen_lock; a state's size is read as it is
	 * while its calls run. */
	pthread_mutex_lock(&gen_lock);
	created = g->created;
	for (struct pxlua_state *st = g->states; st; st = st->next) {
		size_t mem = state_mem(st);
		open++;
		idle += st->ncalls == 0;
		calls += st->ncalls;
		bytes += mem;
		if (nlines < sizeof(lines) / sizeof(lines[0]))
			lines[nlines++] = (struct state_line){
				st->serial, st->ncalls, mem,
				__atomic_load_n(&st->mem_loaded, __ATOMIC_RELAXED)};
	}
	pthread_mutex_unlock(&gen_lock);
	localtime_r(&g->loaded, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	px_cli_printf(cli, "-= %zu extension%s (%zu context%s) =-\n", exts, exts == 1 ? "" : "s",
		      shown, shown == 1 ? "" : "s");
	px_cli_printf(cli, "-= %s, generation %u, loaded %s =-\n", g->path, g->id, when);
	px_cli_printf(cli,
		      "-= %lu Lua state%s created; %zu open (%zu idle) using %zu KiB, %zu call%s "
		      "on them (up to %d each) =-\n",
		      created, created == 1 ? "" : "s", open, idle, (bytes + 1023) / 1024, calls,
		      calls == 1 ? "" : "s", CALLS_PER_STATE);
	for (size_t i = 0; i < nlines; i++)
		px_cli_printf(cli, "   state %u: %zu call%s, %zu KiB (%zu KiB after loading)\n",
			      lines[i].serial, lines[i].calls, lines[i].calls == 1 ? "" : "s",
			      (lines[i].bytes + 1023) / 1024, (lines[i].loaded + 1023) / 1024);
	if (open > nlines)
		px_cli_printf(cli, "   ... and %zu more\n", open - nlines);
	px_cli_printf(cli,
		      "-= limits: %lld instructions, %lld KiB per call; io %s, os %s, "
		      "loadfile %s, C modules %s =-\n",
		      g->set.instruction_limit, g->set.memory_limit_kib,
		      g->set.allow_io ? "on" : "off", g->set.allow_os ? "on" : "off",
		      g->set.allow_loadfile ? "on" : "off", g->set.allow_c_modules ? "on" : "off");
	gen_put(g);
	return PX_CLI_SUCCESS;
}

static void complete_contexts(px_cli_completion *c, int argc, char **argv, int pos)
{
	struct pxlua_gen *g;

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

static enum px_cli_status cmd_locate(px_cli *cli, int argc, char **argv)
{
	struct pxlua_gen *g;
	char *at, *arg;

	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	arg = argv[2];
	at = strrchr(arg, '@');
	if (!at || at == arg || !at[1]) {
		px_cli_printf(cli, "Give the extension and context as EXTEN@CONTEXT.\n");
		return PX_CLI_SHOWUSAGE;
	}
	*at = '\0';
	g = gen_get();
	if (!g) {
		px_cli_printf(cli, "No dialplan is loaded.\n");
		return PX_CLI_FAILURE;
	}
	if (pxlua_context_index(g, at + 1) < 0) {
		px_cli_printf(cli, "There is no context '%s' in %s.\n", at + 1, g->path);
		gen_put(g);
		return PX_CLI_FAILURE;
	}
	pxlua_locate(cli, g, at + 1, arg);
	bool found = pxlua_find(g, at + 1, arg, NULL) != NULL;
	gen_put(g);
	return found ? PX_CLI_SUCCESS : PX_CLI_FAILURE;
}

static enum px_cli_status cmd_reload(px_cli *cli, int argc, char **argv)
{
	struct pxlua_gen *g;
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
	 "       Shows the contexts of extensions.lua with their hints, their\n"
	 "       extensions in the order they are tried (with the file:line of each\n"
	 "       function) and their includes; or one context only; then the\n"
	 "       generation, its Lua states (calls on each and memory) and the\n"
	 "       sandbox limits.",
	 cmd_show, complete_contexts, PX_ROLE_MONITOR},
	{"dialplan locate", "Shows which entry an extension reaches, and why",
	 "Usage: dialplan locate <exten>@<context>\n"
	 "       Walks the search for exten in context as a call would: each\n"
	 "       context searched (its own entries, then its includes), each entry\n"
	 "       tried in order and whether it matches, the one that runs, and\n"
	 "       whether more digits could still match (canmatch, matchmore).",
	 cmd_locate, NULL, PX_ROLE_MONITOR},
	{"dialplan reload", "Reloads extensions.lua",
	 "Usage: dialplan reload\n"
	 "       Reads lua.conf and extensions.lua again. New calls use the new\n"
	 "       dialplan; calls in progress finish on the one they started with. A\n"
	 "       file with an error is refused (file:line: message) and the running\n"
	 "       dialplan is kept.",
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
	if (pxlua_apps_register(self, &err) < 0) {
		px_log_error("pbx_lua: %s", err.msg);
		set_running(false);
		return -1;
	}
	if (px_dialplan_register(self, &pbx_lua_engine, &err) < 0) {
		px_log_error("pbx_lua: %s", err.msg);
		pxlua_apps_unregister();
		set_running(false);
		return -1;
	}
	if (px_cli_register(self, pbx_lua_commands, NCOMMANDS, &err) < 0) {
		px_log_error("pbx_lua: %s", err.msg);
		px_dialplan_unregister(&pbx_lua_engine);
		pxlua_apps_unregister();
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
	pxlua_apps_unregister();
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
