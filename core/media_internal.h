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

/*
 * Between media.c and stream.c (terminated media, plexus/stream.h): the
 * few hooks media.c gives stream.c into a session, and the calls it makes
 * into stream.c. Everything marked "locked" runs with the session's worker
 * lock held (px_rtp_lock), which is also what guards stream.c's state.
 */
struct px_term; /* stream.c's state of a session with a source or sink */
struct media_worker;

/* Lock the worker that serves r (a bridge may be moving it). */
struct media_worker *px_rtp_lock(px_rtp *r);
void px_rtp_unlock(struct media_worker *w);
/* Locked: r's terminated media, and setting it. ticking puts r on its
 * worker's packet clock: px_term_tick is called about every 10 ms. */
struct px_term *px_rtp_term(const px_rtp *r);
void px_rtp_set_term(px_rtp *r, struct px_term *t, bool ticking);
/* Locked: what r negotiated. */
const struct px_rtp_codec *px_rtp_codec_locked(const px_rtp *r);
/* Locked: send one packet of r's own stream. pkt holds the payload after
 * 12 bytes left for the header; sequence + 1, timestamp + ts_step, r's
 * SSRC. false when nothing could be sent (no far end yet, sending off,
 * the socket full). */
bool px_rtp_send_own(px_rtp *r, uint8_t *pkt, size_t payload_len, uint32_t ts_step, bool marker);
/* Locked: a packet time passed with nothing sent. */
void px_rtp_skip_own(px_rtp *r, uint32_t ts_step);

/* stream.c, called by media.c with the worker lock held. */
void px_term_tick(px_rtp *r, struct px_term *t, long long now_ns);
/* An audio packet r received (checked as the relay checks it). */
void px_term_receive(px_rtp *r, struct px_term *t, const uint8_t *pkt, size_t offset, size_t plen);
/* stream.c, called by media.c without locks: the state taken off a session
 * that ends, and a codec change (the translation paths are made again). */
void px_term_free(struct px_term *t);
void px_term_codec_changed(px_rtp *r);

#endif
