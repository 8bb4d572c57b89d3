/*
 * What the switchboard knows about plexusd, kept apart from drawing so that
 * it can be tested alone: the registered contacts and the live channels,
 * rebuilt from the Status and Registrations results (snapshots) and kept
 * up to date by applying events. A snapshot answers with the sequence
 * number of the last event it reflects; events at or below it that arrive
 * afterwards are skipped, so nothing is applied twice or out of order. The
 * channels are grouped into calls (who is talking to whom) for the view.
 */
#ifndef PLEXUS_CONSOLE_SBMODEL_H
#define PLEXUS_CONSOLE_SBMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#define SB_NAME_MAX 96
#define SB_ID_MAX   64

struct sb_reg {
	char endpoint[SB_ID_MAX];
	char contact[256];
	char source[SB_NAME_MAX];
	char user_agent[SB_NAME_MAX];
	time_t expires_at; /* local wall-clock time */
};

struct sb_chan {
	char name[SB_NAME_MAX]; /* SIP/1001-0000002a */
	char uniqueid[SB_ID_MAX];
	char linkedid[SB_ID_MAX];
	char state[16]; /* Down, Ring, Ringing, Up ... */
	char caller_num[SB_ID_MAX], caller_name[SB_ID_MAX];
	char connected_num[SB_ID_MAX], connected_name[SB_ID_MAX];
	char context[SB_ID_MAX], exten[SB_ID_MAX];
	char application[32];
	char peer[SB_NAME_MAX];    /* the channel it is bridged to */
	char dialing[SB_NAME_MAX]; /* the channel its Dial rings, until DialEnd */
	bool hold;                 /* the far end or the operator put it on hold */
	time_t created;
	time_t answered; /* when it went Up; 0 while it has not */
	uint64_t order;  /* creation order, for the order of calls */
};

/* One row of the calls list: party a called (or was bridged to) party b. */
struct sb_call {
	const struct sb_chan *a;
	const struct sb_chan *b; /* NULL while a talks to no other channel */
};

struct sb_model {
	struct sb_reg *regs;
	size_t nregs, capregs;
	struct sb_chan *chans;
	size_t nchans, capchans;
	uint64_t chan_seq, reg_seq; /* the snapshots' seq: older events are skipped */
	uint64_t next_order;
};

/* sb_model_event's answers. */
enum sb_change {
	SB_UNCHANGED = 0,
	SB_CHANGED = 1,
	SB_RESYNC = 2, /* events were lost: ask for Status and Registrations again */
};

void sb_model_init(struct sb_model *m);
void sb_model_free(struct sb_model *m);
/* Forget everything (the connection is gone). */
void sb_model_clear(struct sb_model *m);

/* Replace the channels by a Status result, or the registrations by a
 * Registrations result (the parsed JSON). 0, or -1 when it is not one. */
int sb_model_status(struct sb_model *m, const json_t *result, time_t now);
int sb_model_registrations(struct sb_model *m, const json_t *result, time_t now);
/* Apply one event (the parsed JSON). */
enum sb_change sb_model_event(struct sb_model *m, const json_t *ev, time_t now);

/* Registrations expired by the clock (the registrar tells too, later). */
bool sb_model_expire(struct sb_model *m, time_t now);

/* The calls, oldest first, into rows[0..max-1]; returns how many there
 * are. Rows point into the model: valid until it changes. */
size_t sb_model_calls(const struct sb_model *m, struct sb_call *rows, size_t max);
const struct sb_chan *sb_model_find(const struct sb_model *m, const char *name);

/* "1001" of "SIP/1001-0000002a" into buf. */
const char *sb_chan_party(const struct sb_chan *c, char *buf, size_t size);

#endif
