/*
 * The module loader: opens module shared objects with libltdl, validates
 * their descriptors, resolves "requires" into a load order (reporting a
 * missing requirement or a cycle in one line that names the modules), loads
 * them, tracks what each one registered, and unloads them in reverse order.
 * One mutex serialises loading and unloading; a module's use count and busy
 * count are atomic so that users never take that mutex.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ltdl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <plexus/event.h>
#include <plexus/log.h>

#include "loader.h"

struct px_module_resource {
	px_module *module;
	const char *what;
	void (*release)(void *obj);
	void *obj;
	struct px_module_resource *next, *prev;
};

struct px_module {
	char name[64];
	lt_dlhandle handle;
	const struct px_module_info *info;
	atomic_int use_count;
	atomic_int busy;
	bool required;
	px_module **deps; /* modules this one took a use on */
	size_t ndeps;
	pthread_mutex_t res_lock;
	struct px_module_resource *resources; /* newest first */
};

#ifdef __SANITIZE_ADDRESS__
/* Every module defines px_module_info and modules are opened with global
 * symbols; ASan would take that for an ODR violation (each module binds to
 * its own descriptor: they are linked -Bsymbolic). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_odr_violation=0";
}
#endif

static pthread_mutex_t loader_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t busy_cond = PTHREAD_COND_INITIALIZER;
static char *module_dir;
static px_module **loaded; /* load order */
static size_t nloaded, loaded_cap;
static bool ltdl_ready;

static const char *const kind_names[PX_MODULE_KINDS] = {"channel",  "registrar",   "codec",
							"dialplan", "application", "resource"};

const char *px_module_kind_name(enum px_module_kind kind)
{
	return (unsigned)kind < PX_MODULE_KINDS ? kind_names[kind] : "unknown";
}

const char *px_module_name(const px_module *m)
{
	return m->name;
}

void px_module_use(px_module *m)
{
	atomic_fetch_add(&m->use_count, 1);
}

void px_module_unuse(px_module *m)
{
	atomic_fetch_sub(&m->use_count, 1);
}

int px_module_use_count(const px_module *m)
{
	return atomic_load(&m->use_count);
}

void px_module_busy_enter(px_module *m)
{
	atomic_fetch_add(&m->busy, 1);
}

void px_module_busy_leave(px_module *m)
{
	if (atomic_fetch_sub(&m->busy, 1) == 1) {
		pthread_mutex_lock(&busy_lock);
		pthread_cond_broadcast(&busy_cond);
		pthread_mutex_unlock(&busy_lock);
	}
}

px_module_resource *px_module_track(px_module *m, const char *what, void (*release)(void *obj),
				    void *obj)
{
	px_module_resource *r;

	if (!m)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->module = m;
	r->what = what;
	r->release = release;
	r->obj = obj;
	pthread_mutex_lock(&m->res_lock);
	r->next = m->resources;
	if (m->resources)
		m->resources->prev = r;
	m->resources = r;
	pthread_mutex_unlock(&m->res_lock);
	return r;
}

void px_module_untrack(px_module_resource *r)
{
	px_module *m;

	if (!r)
		return;
	m = r->module;
	pthread_mutex_lock(&m->res_lock);
	if (r->prev)
		r->prev->next = r->next;
	else
		m->resources = r->next;
	if (r->next)
		r->next->prev = r->prev;
	pthread_mutex_unlock(&m->res_lock);
	free(r);
}

/* Release, newest first, whatever the module still holds in core registries.
 * The registry's release callback must not call px_module_untrack: the
 * resource is already detached when it runs. */
static size_t release_resources(px_module *m)
{
	size_t n = 0;

	for (;;) {
		px_module_resource *r;

		pthread_mutex_lock(&m->res_lock);
		r = m->resources;
		if (r) {
			m->resources = r->next;
			if (m->resources)
				m->resources->prev = NULL;
		}
		pthread_mutex_unlock(&m->res_lock);
		if (!r)
			break;
		px_debug(1, "module %s: releasing %s it left registered", m->name, r->what);
		r->release(r->obj);
		free(r);
		n++;
	}
	return n;
}

static void wait_not_busy(px_module *m)
{
	pthread_mutex_lock(&busy_lock);
	while (atomic_load(&m->busy) > 0)
		pthread_cond_wait(&busy_cond, &busy_lock);
	pthread_mutex_unlock(&busy_lock);
}

int px_loader_init(const char *moduledir, px_err *err)
{
	if (lt_dlinit() != 0)
		return px_err_set(err, "cannot initialise libltdl: %s", lt_dlerror());
	ltdl_ready = true;
	free(module_dir);
	module_dir = strdup(moduledir);
	if (!module_dir)
		return px_err_set(err, "out of memory");
	return 0;
}

const char *px_loader_dir(void)
{
	return module_dir;
}

/* "res_db.so" and "res_db" name the same module. */
static void module_basename(const char *name, char *out, size_t size)
{
	const char *slash = strrchr(name, '/');
	size_t len;

	if (slash)
		name = slash + 1;
	len = strlen(name);
	if (len > 3 && !strcmp(name + len - 3, ".so"))
		len -= 3;
	if (len >= size)
		len = size - 1;
	memcpy(out, name, len);
	out[len] = '\0';
}

static px_module *find_loaded(const char *name)
{
	for (size_t i = 0; i < nloaded; i++)
		if (!strcmp(loaded[i]->name, name))
			return loaded[i];
	return NULL;
}

bool px_loader_is_loaded(const char *name)
{
	char base[64];
	bool found;

	module_basename(name, base, sizeof(base));
	pthread_mutex_lock(&loader_lock);
	found = find_loaded(base) != NULL;
	pthread_mutex_unlock(&loader_lock);
	return found;
}

static void module_free(px_module *m)
{
	if (!m)
		return;
	if (m->handle)
		lt_dlclose(m->handle);
	free(m->deps);
	pthread_mutex_destroy(&m->res_lock);
	free(m);
}

/* Open the shared object and check its descriptor; nothing of it runs yet. */
static px_module *module_open(const char *name, px_err *err)
{
	char path[4096];
	lt_dladvise advise;
	px_module *m;
	const struct px_module_info *info;

	m = calloc(1, sizeof(*m));
	if (!m) {
		px_err_set(err, "%s: out of memory", name);
		return NULL;
	}
	snprintf(m->name, sizeof(m->name), "%s", name);
	pthread_mutex_init(&m->res_lock, NULL);
	snprintf(path, sizeof(path), "%s/%s.so", module_dir, name);
	/* Global symbols: a module may call functions of a module it requires. */
	lt_dladvise_init(&advise);
	lt_dladvise_global(&advise);
	m->handle = lt_dlopenadvise(path, advise);
	lt_dladvise_destroy(&advise);
	if (!m->handle) {
		/* libltdl reports "file not found" for every failure; the dynamic
		 * linker says what is really wrong (an undefined symbol ...). */
		const char *why = lt_dlerror();
		void *probe = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!probe)
			why = dlerror();
		else
			dlclose(probe);
		px_err_set(err, "%s: cannot open %s: %s", name, path, why);
		goto fail;
	}
	info = lt_dlsym(m->handle, "px_module_info");
	if (!info) {
		px_err_set(err, "%s: %s has no px_module_info descriptor (not a Plexus module?)",
			   name, path);
		goto fail;
	}
	if (info->abi_version != PX_MODULE_ABI_VERSION) {
		px_err_set(err, "%s: built for module ABI %u, this plexusd has ABI %u; rebuild it",
			   name, info->abi_version, PX_MODULE_ABI_VERSION);
		goto fail;
	}
	if (info->info_size != sizeof(struct px_module_info)) {
		px_err_set(err,
			   "%s: descriptor size %u does not match this plexusd (%zu); rebuild it",
			   name, info->info_size, sizeof(struct px_module_info));
		goto fail;
	}
	if (!info->name || strcmp(info->name, name) != 0) {
		px_err_set(err, "%s: descriptor names the module '%s', not its file name", name,
			   info->name ? info->name : "(null)");
		goto fail;
	}
	if (!info->load || !info->unload) {
		px_err_set(err, "%s: descriptor lacks a load or unload function", name);
		goto fail;
	}
	if ((unsigned)info->kind >= PX_MODULE_KINDS) {
		px_err_set(err, "%s: unknown module kind %d", name, (int)info->kind);
		goto fail;
	}
	m->info = info;
	return m;
fail:
	module_free(m);
	return NULL;
}

static int append_loaded(px_module *m)
{
	if (nloaded == loaded_cap) {
		size_t ncap = loaded_cap ? loaded_cap * 2 : 16;
		px_module **n = realloc(loaded, ncap * sizeof(*n));
		if (!n)
			return -1;
		loaded = n;
		loaded_cap = ncap;
	}
	loaded[nloaded++] = m;
	return 0;
}

static size_t count_requires(const struct px_module_info *info)
{
	size_t n = 0;

	while (info->requires && info->requires[n])
		n++;
	return n;
}

/* Run the module's load() once its requirements are loaded; on success it
 * joins the loaded list. On failure m is freed. Caller holds loader_lock. */
static int module_start(px_module *m, px_err *err)
{
	size_t nreq = count_requires(m->info);

	m->deps = calloc(nreq ? nreq : 1, sizeof(*m->deps));
	if (!m->deps) {
		px_err_set(err, "%s: out of memory", m->name);
		module_free(m);
		return -1;
	}
	for (size_t i = 0; i < nreq; i++) {
		px_module *dep = find_loaded(m->info->requires[i]);
		if (!dep) {
			px_err_set(err, "%s: requires %s, which is not loaded", m->name,
				   m->info->requires[i]);
			goto fail;
		}
		px_module_use(dep);
		m->deps[m->ndeps++] = dep;
	}
	if (append_loaded(m) < 0) {
		px_err_set(err, "%s: out of memory", m->name);
		goto fail;
	}
	if (m->info->load(m) != 0) {
		nloaded--;
		release_resources(m);
		px_err_set(err, "%s: load failed (see the messages above); not loaded", m->name);
		goto fail;
	}
	px_verbose(1, "Loaded %s => (%s)", m->name,
		   m->info->description ? m->info->description : "");
	PX_EVENT_EMIT(PX_EV_MODULE_LOADED, NULL, NULL, PX_EVS("module", m->name),
		      PX_EVS("description", m->info->description),
		      PX_EVS("kind", px_module_kind_name(m->info->kind)));
	return 0;
fail:
	for (size_t i = 0; i < m->ndeps; i++)
		px_module_unuse(m->deps[i]);
	module_free(m);
	return -1;
}

int px_loader_load(const char *name, px_err *err)
{
	char base[64];
	px_module *m;
	int rc;

	module_basename(name, base, sizeof(base));
	pthread_mutex_lock(&loader_lock);
	if (find_loaded(base)) {
		pthread_mutex_unlock(&loader_lock);
		return px_err_set(err, "%s: already loaded", base);
	}
	m = module_open(base, err);
	rc = m ? module_start(m, err) : -1;
	pthread_mutex_unlock(&loader_lock);
	return rc;
}

/* Caller holds loader_lock. */
static int module_stop(px_module *m, bool force, px_err *err)
{
	/* Running commands, applications and dialplans count as users too. */
	int users = px_module_use_count(m) + atomic_load(&m->busy);
	size_t idx;

	if (users > 0 && !force)
		return px_err_set(err, "%s: in use (use count %d); use -f to force", m->name,
				  users);
	if (m->info->unload(m) != 0) {
		if (!force)
			return px_err_set(err, "%s: refused to unload", m->name);
		px_log_warning("module %s refused to unload; forced", m->name);
	}
	if (users > 0)
		px_log_warning("module %s unloaded by force with use count %d", m->name, users);
	release_resources(m);
	wait_not_busy(m);
	for (idx = 0; idx < nloaded && loaded[idx] != m; idx++)
		;
	if (idx < nloaded) {
		memmove(&loaded[idx], &loaded[idx + 1], (nloaded - idx - 1) * sizeof(*loaded));
		nloaded--;
	}
	for (size_t i = 0; i < m->ndeps; i++)
		if (m->deps[i])
			px_module_unuse(m->deps[i]);
	/* A forced unload can leave modules that required this one: they
	 * must not touch it any more. */
	for (size_t k = 0; k < nloaded; k++)
		for (size_t i = 0; i < loaded[k]->ndeps; i++)
			if (loaded[k]->deps[i] == m)
				loaded[k]->deps[i] = NULL;
	px_verbose(1, "Unloaded %s", m->name);
	PX_EVENT_EMIT(PX_EV_MODULE_UNLOADED, NULL, NULL, PX_EVS("module", m->name),
		      PX_EVI("forced", users > 0));
	module_free(m);
	return 0;
}

int px_loader_unload(const char *name, bool force, px_err *err)
{
	char base[64];
	px_module *m;
	int rc;

	module_basename(name, base, sizeof(base));
	pthread_mutex_lock(&loader_lock);
	m = find_loaded(base);
	rc = m ? module_stop(m, force, err) : px_err_set(err, "%s: not loaded", base);
	pthread_mutex_unlock(&loader_lock);
	return rc;
}

int px_loader_reload(const char *name, px_err *err)
{
	char base[64];
	px_module *m;
	int rc;

	module_basename(name, base, sizeof(base));
	pthread_mutex_lock(&loader_lock);
	m = find_loaded(base);
	if (!m)
		rc = px_err_set(err, "%s: not loaded", base);
	else if (!m->info->reload)
		rc = px_err_set(err, "%s: does not support reloading", base);
	else if (m->info->reload(m) != 0)
		rc = px_err_set(err, "%s: reload failed; it keeps its running configuration", base);
	else
		rc = 0;
	if (m && m->info->reload)
		PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVS("what", base),
			      PX_EVS("status", rc ? "failed" : "ok"));
	pthread_mutex_unlock(&loader_lock);
	return rc;
}

void px_loader_reload_all(void)
{
	pthread_mutex_lock(&loader_lock);
	for (size_t i = 0; i < nloaded; i++) {
		px_module *m = loaded[i];
		int rc = 0;
		if (m->info->reload && (rc = m->info->reload(m)) != 0)
			px_log_warning(
				"module %s: reload failed; it keeps its running configuration",
				m->name);
		if (m->info->reload)
			PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVS("what", m->name),
				      PX_EVS("status", rc ? "failed" : "ok"));
	}
	pthread_mutex_unlock(&loader_lock);
}

size_t px_loader_list(struct px_module_status *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&loader_lock);
	n = nloaded;
	for (size_t i = 0; i < nloaded && i < max; i++) {
		px_module *m = loaded[i];
		snprintf(out[i].name, sizeof(out[i].name), "%s", m->name);
		snprintf(out[i].description, sizeof(out[i].description), "%s",
			 m->info->description ? m->info->description : "");
		out[i].kind = m->info->kind;
		out[i].use_count = px_module_use_count(m);
		out[i].required = m->required;
	}
	pthread_mutex_unlock(&loader_lock);
	return n;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Module names (without .so) present in the module directory, sorted. */
static char **scan_module_dir(void)
{
	DIR *d = opendir(module_dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;

	if (!d)
		return calloc(1, sizeof(char *));
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char base[64];
		if (len <= 3 || strcmp(e->d_name + len - 3, ".so") != 0)
			continue;
		if (n + 2 > cap) {
			size_t ncap = cap ? cap * 2 : 32;
			char **nn = realloc(names, ncap * sizeof(*nn));
			if (!nn)
				break;
			names = nn;
			cap = ncap;
		}
		module_basename(e->d_name, base, sizeof(base));
		names[n] = strdup(base);
		if (names[n])
			n++;
	}
	closedir(d);
	if (!names)
		return calloc(1, sizeof(char *));
	names[n] = NULL;
	qsort(names, n, sizeof(*names), compare_names);
	return names;
}

char **px_loader_available(void)
{
	return scan_module_dir();
}

/* ---- load_all: the plan of what to load, ordered by requirements ---- */

enum plan_state { PLAN_NEW, PLAN_VISITING, PLAN_ORDERED, PLAN_FAILED };

struct plan_entry {
	char name[64];
	bool required;
	px_module *module; /* opened, not started */
	enum plan_state state;
	char why[PX_ERR_MAX]; /* reason it is not loaded */
};

struct plan {
	struct plan_entry *e;
	size_t n, cap;
	size_t *order; /* indices in load order */
	size_t norder;
};

static struct plan_entry *plan_find(struct plan *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->e[i].name, name))
			return &p->e[i];
	return NULL;
}

static struct plan_entry *plan_add(struct plan *p, const char *name)
{
	char base[64];
	struct plan_entry *e;

	module_basename(name, base, sizeof(base));
	e = plan_find(p, base);
	if (e)
		return e;
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 32;
		struct plan_entry *ne = realloc(p->e, ncap * sizeof(*ne));
		if (!ne)
			return NULL;
		p->e = ne;
		p->cap = ncap;
	}
	e = &p->e[p->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", base);
	return e;
}

static void plan_remove(struct plan *p, const char *name)
{
	char base[64];
	struct plan_entry *e;

	module_basename(name, base, sizeof(base));
	e = plan_find(p, base);
	if (e) {
		size_t idx = (size_t)(e - p->e);
		memmove(e, e + 1, (p->n - idx - 1) * sizeof(*e));
		p->n--;
	}
}

static void plan_fail(struct plan_entry *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void plan_fail(struct plan_entry *e, const char *fmt, ...)
{
	va_list ap;

	e->state = PLAN_FAILED;
	va_start(ap, fmt);
	vsnprintf(e->why, sizeof(e->why), fmt, ap);
	va_end(ap);
}

/* Depth-first ordering. stack holds the path being visited, for naming a
 * cycle. Returns 0 when e is ordered, -1 when it cannot be loaded. */
static int plan_visit(struct plan *p, struct plan_entry *e, size_t *stack, size_t depth)
{
	const char *const *req;

	if (e->state == PLAN_ORDERED)
		return 0;
	if (e->state == PLAN_FAILED)
		return -1;
	if (e->state == PLAN_VISITING) {
		/* A cycle: from where e appears on the stack back to e. */
		char path[PX_ERR_MAX] = "";
		size_t start = 0, used = 0;
		while (start < depth && &p->e[stack[start]] != e)
			start++;
		for (size_t i = start; i < depth; i++)
			used += (size_t)snprintf(path + used,
						 used < sizeof(path) ? sizeof(path) - used : 0,
						 "%s -> ", p->e[stack[i]].name);
		if (used < sizeof(path))
			snprintf(path + used, sizeof(path) - used, "%s", e->name);
		for (size_t i = start; i < depth; i++)
			plan_fail(&p->e[stack[i]], "dependency cycle: %s", path);
		return -1;
	}
	e->state = PLAN_VISITING;
	stack[depth] = (size_t)(e - p->e);
	req = e->module->info->requires;
	for (size_t i = 0; req && req[i]; i++) {
		struct plan_entry *dep;
		if (find_loaded(req[i]))
			continue;
		dep = plan_find(p, req[i]);
		if (!dep) {
			plan_fail(e, "requires %s, which is not available", req[i]);
			return -1;
		}
		if (plan_visit(p, dep, stack, depth + 1) < 0) {
			if (e->state != PLAN_FAILED) /* not already named in a cycle */
				plan_fail(e, "requires %s, which cannot be loaded", dep->name);
			return -1;
		}
	}
	if (e->state == PLAN_FAILED) /* failed as part of a cycle found deeper */
		return -1;
	e->state = PLAN_ORDERED;
	p->order[p->norder++] = (size_t)(e - p->e);
	return 0;
}

static int plan_from_config(struct plan *p, const px_config *conf, px_err *err)
{
	const px_config_section *s = conf ? px_config_find(conf, "modules") : NULL;
	const px_config_var *v;
	bool autoload = true;

	if (s && (v = px_config_var_find(s, "autoload")) &&
	    px_config_var_bool(v, &autoload, err) < 0)
		return -1;
	if (autoload) {
		char **names = scan_module_dir();
		for (size_t i = 0; names && names[i]; i++)
			if (!plan_add(p, names[i]))
				return px_err_set(err, "out of memory");
		px_config_list_free(names);
	}
	for (v = s ? px_config_vars(s) : NULL; v; v = v->next) {
		struct plan_entry *e;
		if (!strcasecmp(v->name, "load") || !strcasecmp(v->name, "require")) {
			if (!(e = plan_add(p, v->value)))
				return px_err_set(err, "out of memory");
			if (!strcasecmp(v->name, "require"))
				e->required = true;
		} else if (strcasecmp(v->name, "noload") && strcasecmp(v->name, "autoload")) {
			return px_err_set(err, "%s:%d: unknown option '%s' in [modules]", v->file,
					  v->line, v->name);
		}
	}
	for (v = s ? px_config_vars(s) : NULL; v; v = v->next) {
		if (strcasecmp(v->name, "noload"))
			continue;
		struct plan_entry *e = plan_find(p, v->value);
		char base[64];
		module_basename(v->value, base, sizeof(base));
		if (e && e->required)
			return px_err_set(err, "%s:%d: module %s is both required and noload",
					  v->file, v->line, base);
		plan_remove(p, base);
	}
	return 0;
}

int px_loader_load_all(const px_config *conf, px_err *err)
{
	struct plan p = {0};
	size_t *stack = NULL;
	int rc = 0;
	bool required_failed = false;

	pthread_mutex_lock(&loader_lock);
	if (plan_from_config(&p, conf, err) < 0) {
		rc = -1;
		goto out;
	}
	p.order = calloc(p.n + 1, sizeof(*p.order));
	stack = calloc(p.n + 1, sizeof(*stack));
	if (!p.order || !stack) {
		rc = px_err_set(err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p.n; i++) {
		struct plan_entry *e = &p.e[i];
		px_err oerr = {""};
		if (find_loaded(e->name)) {
			e->state = PLAN_ORDERED; /* already there: nothing to do */
			continue;
		}
		e->module = module_open(e->name, &oerr);
		if (!e->module)
			plan_fail(e, "%s",
				  strchr(oerr.msg, ' ') ? strchr(oerr.msg, ' ') + 1 : oerr.msg);
	}
	for (size_t i = 0; i < p.n; i++)
		if (p.e[i].module)
			plan_visit(&p, &p.e[i], stack, 0);
	for (size_t k = 0; k < p.norder; k++) {
		struct plan_entry *e = &p.e[p.order[k]];
		const char *const *req = e->module->info->requires;
		px_err lerr = {""};
		bool deps_ok = true;
		for (size_t i = 0; req && req[i]; i++) {
			if (!find_loaded(req[i])) {
				plan_fail(e, "requires %s, which failed to load", req[i]);
				deps_ok = false;
				break;
			}
		}
		if (!deps_ok) {
			module_free(e->module);
			e->module = NULL;
			continue;
		}
		px_module *m = e->module;
		e->module = NULL; /* module_start owns it now */
		m->required = e->required;
		if (module_start(m, &lerr) < 0)
			plan_fail(e, "%s",
				  strchr(lerr.msg, ' ') ? strchr(lerr.msg, ' ') + 1 : lerr.msg);
	}
	for (size_t i = 0; i < p.n; i++) {
		struct plan_entry *e = &p.e[i];
		if (e->state != PLAN_FAILED)
			continue;
		if (e->module) { /* opened but never started */
			module_free(e->module);
			e->module = NULL;
		}
		if (e->required) {
			px_log_error("Required module %s not loaded: %s", e->name, e->why);
			if (!required_failed)
				px_err_set(err, "required module %s not loaded: %.400s", e->name,
					   e->why);
			required_failed = true;
		} else {
			px_log_warning("Module %s not loaded: %s", e->name, e->why);
		}
	}
	if (required_failed)
		rc = -1;
	px_verbose(1, "%zu modules loaded", nloaded);
out:
	for (size_t i = 0; i < p.n; i++)
		module_free(p.e[i].module);
	free(p.e);
	free(p.order);
	free(stack);
	pthread_mutex_unlock(&loader_lock);
	return rc;
}

void px_loader_shutdown(void)
{
	pthread_mutex_lock(&loader_lock);
	while (nloaded) {
		px_module *m = loaded[nloaded - 1];
		px_err err = {""};
		if (module_stop(m, true, &err) < 0) {
			px_log_error("%s", err.msg);
			break;
		}
	}
	free(loaded);
	loaded = NULL;
	nloaded = loaded_cap = 0;
	pthread_mutex_unlock(&loader_lock);
	if (ltdl_ready)
		lt_dlexit();
	ltdl_ready = false;
	free(module_dir);
	module_dir = NULL;
}
