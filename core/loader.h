/*
 * The module loader (core side). It reads modules.conf, opens shared objects
 * with libltdl, checks their descriptors, orders them by their requirements
 * and loads them; it unloads them in reverse order at shutdown, and loads,
 * unloads and reloads single modules on request from the console.
 *
 * modules.conf, section [modules]:
 *   autoload = yes|no   load every .so in the module directory
 *   load = NAME         load this one (also when autoload = no)
 *   noload = NAME       never load this one
 *   require = NAME      load it, and refuse to start if it fails
 * NAME may be written with or without ".so".
 */
#ifndef PLEXUS_LOADER_H
#define PLEXUS_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include <plexus/config.h>
#include <plexus/error.h>
#include <plexus/module.h>

/* Set up libltdl and the search path (a directory). */
int px_loader_init(const char *moduledir, px_err *err);
/* Unload everything still loaded (reverse order, forced) and shut libltdl. */
void px_loader_shutdown(void);
const char *px_loader_dir(void);

/* Load what modules.conf (its [modules] section; NULL: autoload all) asks
 * for. Problems with single modules are logged one line each and skipped.
 * Returns 0, or -1 when a module marked "require" could not be loaded (err
 * names it): the daemon must then stop with exit status 2. */
int px_loader_load_all(const px_config *modules_conf, px_err *err);

/* Load one module (and nothing else) by name; its requirements must be
 * loaded already. */
int px_loader_load(const char *name, px_err *err);
/* Unload one module. Refused while in use unless force. */
int px_loader_unload(const char *name, bool force, px_err *err);
/* Call the module's reload (or report that it has none). */
int px_loader_reload(const char *name, px_err *err);
/* Reload every loaded module that has a reload callback, in load order. */
void px_loader_reload_all(void);

/* A snapshot of one loaded module, for "module show". */
struct px_module_status {
	char name[64];
	char description[128];
	enum px_module_kind kind;
	int use_count;
	bool required;
};
/* Fill up to max entries in load order; returns how many modules are loaded. */
size_t px_loader_list(struct px_module_status *out, size_t max);
bool px_loader_is_loaded(const char *name);
/* Names of .so files in the module directory, for completion of "module
 * load"; NULL-terminated, release with px_config_list_free. */
char **px_loader_available(void);

/* Commands of a module are "busy" while running; unload waits for them to
 * finish after unregistering them, before the code is unmapped. */
void px_module_busy_enter(px_module *m);
void px_module_busy_leave(px_module *m);

#endif
