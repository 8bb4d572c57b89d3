/*
 * chan_sip's module descriptor: load reads sip.conf, starts the SIP thread
 * and registers the "SIP" channel technology, the console commands and the
 * REDIRECTING dialplan function;
 * unload undoes that in reverse; reload re-reads sip.conf and swaps it in
 * only when the whole file is valid.
 */
#include <dlfcn.h>

#include <plexus/channel.h>
#include <plexus/cli.h>
#include <plexus/log.h>
#include <plexus/module.h>

#include "sip.h"

extern px_module *sip_module;
void sip_commands_unregister(void);

/* sofia-sip, and OpenSSL under it, stay mapped for the daemon's lifetime,
 * while chan_sip itself still unloads and loads again: they are not made to
 * be unmapped and mapped again in one process (after a failed load unmapped
 * them, every thread started later died in the sanitizer build). */
static void pin_sip_stack(void)
{
	void *h = dlopen("libsofia-sip-ua.so.0", RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);

	if (h)
		dlclose(h);
	else
		px_log_warning("chan_sip: cannot pin libsofia-sip-ua: %s", dlerror());
}

static int sip_load(px_module *self)
{
	struct sip_config *cfg;
	px_err err = {""};

	sip_module = self;
	pin_sip_stack();
	if (sip_config_load(&cfg, &err) < 0) {
		px_log_error("chan_sip: %s", err.msg);
		return -1;
	}
	if (sip_stack_start(cfg, &err) < 0) {
		px_log_error("chan_sip: %s", err.msg);
		sip_config_unref(cfg);
		return -1;
	}
	if (px_channel_tech_register(self, &sip_tech, &err) < 0 ||
	    sip_commands_register(self, &err) < 0 || sip_trunk_commands_register(self, &err) < 0 ||
	    sip_redirecting_register(self, &err) < 0) {
		px_log_error("chan_sip: %s", err.msg);
		sip_redirecting_unregister();
		sip_trunk_commands_unregister();
		sip_commands_unregister();
		px_channel_tech_unregister(&sip_tech);
		sip_stack_stop();
		return -1;
	}
	return 0;
}

static int sip_unload(px_module *self)
{
	sip_redirecting_unregister();
	sip_trunk_commands_unregister();
	sip_commands_unregister();
	px_channel_tech_unregister(&sip_tech);
	sip_stack_stop();
	sip_flow_forget_all();
	return 0;
}

static int sip_reload(px_module *self)
{
	struct sip_config *cfg;
	px_err err = {""};

	if (sip_config_load(&cfg, &err) < 0) {
		px_log_error("chan_sip: reload: %s; keeping the running configuration", err.msg);
		return -1;
	}
	sip_stack_reconfigure(cfg);
	px_verbose(1, "chan_sip: sip.conf reloaded (%zu endpoints, %zu trunks)", cfg->nendpoints,
		   cfg->ntrunks);
	return 0;
}

PX_MODULE(.name = "chan_sip", .description = "SIP channel driver (sofia-sip)",
	  .kind = PX_MODULE_CHANNEL, .load = sip_load, .unload = sip_unload, .reload = sip_reload);
