/*
 * What the files of pbx_lua share: the settings read from lua.conf, a
 * generation (one load of extensions.lua: its compiled chunk, the index of
 * contexts, extensions, includes and hints that answers lookups in C, and
 * its shared Lua states), a shared Lua state with its state lock, a call
 * running on one (its coroutine, its globals, its channel and its limits),
 * and the functions each file offers the others. Everything here is private
 * to the module (hidden symbols).
 */
#ifndef PLEXUS_PBX_LUA_H
#define PLEXUS_PBX_LUA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <lua.h>

#include <plexus/channel.h>
#include <plexus/cli.h>
#include <plexus/error.h>

#include "pbx_lua_pattern.h"

#define PXLUA_POS_MAX 80 /* longest context or extension name followed */

/* lua.conf [general]; each generation keeps the settings it was loaded with. */
struct pxlua_settings {
	long long instruction_limit; /* per run of the dialplan on a call; 0: none */
	long long memory_limit_kib;  /* growth of a state during a call; 0: none */
	long long max_jumps;         /* Goto and i/t jumps per call */
	bool allow_io;               /* the io library */
	bool allow_os;               /* os.execute, os.remove, os.rename, os.tmpname ... */
	bool allow_loadfile;         /* loadfile and dofile (text chunks only) */
	bool allow_c_modules;        /* require of C modules, package.loadlib */
	char *lua_path;              /* package.path for require; NULL: the default */
};

struct pxlua_ext {
	char *key;        /* "1000", "_1XXX": the key as text */
	bool int_key;     /* written as an integer key: [1000] = ... */
	lua_Integer ival; /* the integer then */
	char *defined;    /* where its function is defined: "extensions.lua:12" */
};

struct pxlua_context {
	char *name;
	struct pxlua_ext *exts; /* in order of precedence */
	size_t nexts;
	char **includes; /* names, in the order written */
	long *incl_idx;  /* their index in the generation's contexts, -1 if none */
	size_t nincludes;
};

struct pxlua_hint {
	char *context, *exten, *device;
};

struct pxlua_state;

/* One load of extensions.lua. Immutable once installed, except for its list
 * of states and counters, which the generation lock guards. */
struct pxlua_gen {
	unsigned id; /* 1 for the first load, one more per reload */
	int refs;    /* current pointer, each call and each reader */
	char *path;  /* the file it was compiled from */
	char *dir;   /* its directory */
	char *chunk; /* the compiled file (lua_dump, with line info) */
	size_t chunk_len, chunk_cap;
	struct pxlua_settings set;
	struct pxlua_context *ctxs; /* sorted by name */
	size_t nctxs;
	size_t nexts; /* extensions in all contexts */
	struct pxlua_hint *hints;
	size_t nhints;
	time_t loaded;
	struct pxlua_state *states; /* open states, newest first */
	unsigned long created;      /* states made for this generation */
};

/* Why the running Lua code is being unwound. */
enum pxlua_stop {
	PXLUA_STOP_NONE,
	PXLUA_STOP_HANGUP, /* an application returned -1, or the channel hung up */
	PXLUA_STOP_GOTO,   /* the channel's dialplan position moved */
	PXLUA_STOP_BUDGET, /* the instruction budget ran out */
	PXLUA_STOP_MEMORY, /* the memory ceiling was reached */
};

/* One call running on a shared state: a coroutine of the state, a table of
 * its own globals, its channel and its limits. Owned by the session thread
 * that runs the call; its Lua values are touched only under the state lock.
 * The run of the file when a state is made is a call too (no coroutine, no
 * globals of its own, no channel), so that its limits work the same way. */
struct pxlua_call {
	struct pxlua_state *st;
	lua_State *co;   /* its coroutine; NULL for the run of the file */
	int co_ref;      /* the coroutine's anchor in the registry */
	int env_ref;     /* its globals table in the registry; LUA_NOREF: none */
	unsigned serial; /* which call the state's globals point at */
	px_channel *ch;  /* the channel of the call, NULL while the file runs */
	bool in_h;       /* running the h extension: the channel has hung up */
	bool jumped;     /* Goto ran on this call's channel */
	bool autoservice;
	bool refused; /* the allocator refused it once since its last allocation */
	bool loading; /* the run of the file: holds the state lock throughout */
	enum pxlua_stop stop;
	char where[160]; /* file:line where a budget or memory stop happened */
	char context[PXLUA_POS_MAX], exten[PXLUA_POS_MAX]; /* running extension */
	long long ticks_left; /* budget in hook ticks; < 0: no budget */
	long long mem_charge; /* bytes it allocated minus bytes freed while it ran */
	long long mem_limit;  /* ceiling of mem_charge; only when mem_limited */
	bool mem_limited;
};

/* A Lua state shared by up to CALLS_PER_STATE (pbx_lua.c) calls of a generation,
 * reached from Lua through the extra space of each of its threads (which
 * lua_newthread copies from the main thread). Lua code of a call runs only
 * while its session thread holds lock, as in Lua's own lua_lock model; a C
 * function of the API that may block lets go of the lock around the
 * blocking part and touches no Lua value meanwhile. */
struct pxlua_state {
	lua_State *L; /* NULL until made, and when making it failed */
	struct pxlua_gen *gen;
	pthread_mutex_t lock;       /* the state lock */
	struct pxlua_call *running; /* the call holding lock, or NULL */
	unsigned call_serial;       /* last serial given to a call (under lock) */
	unsigned globals_of;        /* serial of the call _G now leads to (under lock) */
	int gmt_ref, base_ref, pcmt_ref, sink_ref; /* registry: _G's metatable, the
						    * file's globals, the metatable of
						    * per-call tables, and where globals
						    * set by no call go */
	size_t mem_used;   /* bytes allocated by the state (atomic, relaxed) */
	size_t mem_loaded; /* mem_used once the file ran (atomic, relaxed) */
	/* Under the generation lock: */
	unsigned serial;          /* its number in the generation, from 1 */
	size_t ncalls;            /* calls on it, and calls waiting for it to be made */
	bool listed;              /* in the generation's list */
	struct pxlua_state *next; /* in the generation's list */
};

#define PXLUA_HOOK_TICK 1000 /* instructions between two calls of the count hook */

/* The call running on this thread (set by exec), for the applications of
 * pbx_lua_apps.c. */
PXLUA_HIDDEN extern __thread struct pxlua_call *pxlua_running;

/* pbx_lua_api.c */
/* Open the libraries the settings allow and install the API. Run protected. */
PXLUA_HIDDEN int pxlua_setup_state(lua_State *L);
/* Message handler adding a traceback (not for control unwinds). */
PXLUA_HIDDEN int pxlua_msgh(lua_State *L);
/* The shared state of L (any of its threads), and the call holding its lock
 * (NULL when none does: while the state is closed). */
PXLUA_HIDDEN struct pxlua_state *pxlua_state_of(lua_State *L);
PXLUA_HIDDEN struct pxlua_call *pxlua_call_of(lua_State *L);
/* Take and give back the state lock for call c; take switches the state's
 * globals to c's. Neither raises an error. */
PXLUA_HIDDEN void pxlua_lock(struct pxlua_call *c);
PXLUA_HIDDEN void pxlua_unlock(struct pxlua_call *c);
/* Raise the control unwind for why (never returns). */
PXLUA_HIDDEN int pxlua_unwind(lua_State *L, enum pxlua_stop why);
/* Install or reset the instruction budget and memory ceiling for a run. */
PXLUA_HIDDEN void pxlua_limits_start(struct pxlua_call *c);
PXLUA_HIDDEN void pxlua_limits_stop(struct pxlua_call *c);
PXLUA_HIDDEN void *pxlua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* The count hook of the budget, set on each state's main thread. */
PXLUA_HIDDEN void pxlua_count_hook(lua_State *L, lua_Debug *ar);
/* After the file ran: move its globals behind a per-call table, so what a
 * call sets as a global is seen by that call only. Run protected. */
PXLUA_HIDDEN int pxlua_freeze_globals(lua_State *L);
/* With the state lock held by c: make c's coroutine and globals table, and
 * drop them. begin fails (-1) only when memory runs out. */
PXLUA_HIDDEN int pxlua_call_begin(struct pxlua_call *c);
PXLUA_HIDDEN void pxlua_call_end(struct pxlua_call *c);
/* The message at the top of the stack as one line "file:line: message"
 * and, in tb (may be NULL), the traceback joined on one line. */
PXLUA_HIDDEN void pxlua_error_line(lua_State *L, int status, char *out, size_t size, char *tb,
				   size_t tbsize);

/* pbx_lua_apps.c: Goto, GotoIf, Set, NoOp, Verbose, Log. */
PXLUA_HIDDEN int pxlua_apps_register(px_module *self, px_err *err);
PXLUA_HIDDEN void pxlua_apps_unregister(void);

/* pbx_lua_gen.c */
PXLUA_HIDDEN int pxlua_gen_build(const char *path, const struct pxlua_settings *set,
				 struct pxlua_gen **out, px_err *err);
PXLUA_HIDDEN void pxlua_gen_free(struct pxlua_gen *g);
/* A state of g, not yet made, its lock initialised. */
PXLUA_HIDDEN struct pxlua_state *pxlua_state_alloc(struct pxlua_gen *g);
/* Make st's Lua state and run the file in it (the caller holds st's lock
 * or is its only user). */
PXLUA_HIDDEN int pxlua_state_make(struct pxlua_state *st, px_err *err);
PXLUA_HIDDEN void pxlua_state_close(struct pxlua_state *st);
PXLUA_HIDDEN void pxlua_states_close(struct pxlua_state *list);
PXLUA_HIDDEN long pxlua_context_index(const struct pxlua_gen *g, const char *name);
/* The entry that matches exten in context (own extensions first, then the
 * includes, depth first, each context once); *where gets its context. */
PXLUA_HIDDEN const struct pxlua_ext *pxlua_find(const struct pxlua_gen *g, const char *context,
						const char *exten,
						const struct pxlua_context **where);
/* Asterisk's canmatch (mode PXLUA_CANMATCH) or matchmore over the same search. */
PXLUA_HIDDEN bool pxlua_close(const struct pxlua_gen *g, const char *context, const char *exten,
			      enum pxlua_match mode);
/* Write the search for exten@context to cli, step by step ("dialplan locate"). */
PXLUA_HIDDEN void pxlua_locate(px_cli *cli, const struct pxlua_gen *g, const char *context,
			       const char *exten);
PXLUA_HIDDEN void pxlua_settings_free(struct pxlua_settings *set);
PXLUA_HIDDEN int pxlua_settings_copy(struct pxlua_settings *to, const struct pxlua_settings *from);

#endif
