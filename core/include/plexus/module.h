/*
 * The module contract. A module is a shared object that exports one
 * descriptor, px_module_info, declared with PX_MODULE(). The loader checks
 * its ABI version, orders modules by what they require, calls load() and,
 * in reverse order at shutdown, unload(). Everything a module registers
 * through a core API (console commands; channel techs, codecs, applications
 * later) is recorded against it and released when it unloads, even if its
 * unload() forgot. A module is "in use" while its use count is above zero
 * (another module requires it, a channel of its tech exists ...), and the
 * loader refuses to unload it then unless forced.
 */
#ifndef PLEXUS_MODULE_H
#define PLEXUS_MODULE_H

#include <stddef.h>
#include <stdint.h>

/* Raised whenever struct px_module_info or any px_ API changes incompatibly. */
#define PX_MODULE_ABI_VERSION 1

enum px_module_kind {
	PX_MODULE_CHANNEL,
	PX_MODULE_REGISTRAR,
	PX_MODULE_CODEC,
	PX_MODULE_DIALPLAN,
	PX_MODULE_APPLICATION,
	PX_MODULE_RESOURCE,
	PX_MODULE_KINDS
};

typedef struct px_module px_module;

struct px_module_info {
	uint32_t abi_version;    /* PX_MODULE_ABI_VERSION at build time */
	uint32_t info_size;      /* sizeof(struct px_module_info) at build time */
	const char *name;        /* "res_db"; must match the file name */
	const char *description; /* one line for "module show" */
	enum px_module_kind kind;
	const char *const *requires;    /* NULL-terminated module names, or NULL */
	int (*load)(px_module *self);   /* 0, or -1 after logging why and undoing */
	int (*unload)(px_module *self); /* 0, or -1 to refuse (only when not forced) */
	int (*reload)(px_module *self); /* re-read configuration; NULL if none */
	void *reserved[4];              /* room to grow without an ABI bump */
};

#define PX_MODULE_REQUIRES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Declare the module's descriptor: PX_MODULE(.name = "res_db", ...). */
#define PX_MODULE(...)                                                                             \
	__attribute__((visibility("default")))                                                     \
	const struct px_module_info px_module_info = {.abi_version = PX_MODULE_ABI_VERSION,        \
						      .info_size = sizeof(struct px_module_info),  \
						      __VA_ARGS__}

const char *px_module_name(const px_module *m);
const char *px_module_kind_name(enum px_module_kind kind);

/* Use count: unload is refused while it is above zero (unless forced). */
void px_module_use(px_module *m);
void px_module_unuse(px_module *m);
int px_module_use_count(const px_module *m);

/*
 * Resources a module holds through core registries. A registry calls
 * px_module_track when it accepts something owned by a module, and
 * px_module_untrack when that thing is unregistered normally. What is still
 * tracked when the module's unload() returns is released by calling
 * release(obj), newest first.
 */
typedef struct px_module_resource px_module_resource;
px_module_resource *px_module_track(px_module *m, const char *what, void (*release)(void *obj),
				    void *obj);
void px_module_untrack(px_module_resource *r);

#endif
