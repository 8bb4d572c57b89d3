/*
 * The media engine seen from the core: started after the settings and
 * before the modules, stopped after the modules at shutdown.
 *
 * rtp.conf, section [general]:
 *   rtpstart = 10000   first UDP port for RTP (even)
 *   rtpend = 20000     last UDP port
 *   workers = 0        media worker threads; 0: one per core
 */
#ifndef PLEXUS_MEDIA_INTERNAL_H
#define PLEXUS_MEDIA_INTERNAL_H

#include <plexus/config.h>
#include <plexus/error.h>
#include <plexus/media.h>

/* rtp_conf may be NULL (defaults). */
int px_media_init(const px_config *rtp_conf, px_err *err);
void px_media_shutdown(void);
/* Sessions open now, for "core show settings" and tests. */
unsigned px_media_session_count(void);

#endif
