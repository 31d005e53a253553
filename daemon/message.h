/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The frame every ferryd CPG message starts with.
 *
 *   u32 magic            "FRY1"
 *   u16 protocol version FERRY_PROTOCOL_VERSION of the sender
 *   u16 type             MessageType
 *   u32 sender           node id the sender claims; must equal CPG's
 *   u64 epoch            sync epoch the message belongs to
 *   u64 seq              sender-local sequence number (proposals)
 *   u32 payload length   bytes following the header
 *
 * All big-endian. Pure code. */

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define FERRY_MESSAGE_MAGIC 0x46525931U       /* "FRY1" */
#define FERRY_PROTOCOL_VERSION 1
#define FERRY_MESSAGE_HEADER_SIZE 32
/* Largest frame we accept: a full state of STATE_NODES_MAX nodes with long
 * CPU flag lists stays well below. */
#define FERRY_MESSAGE_MAX (16U * 1024U * 1024U)

typedef enum MessageType {
        MESSAGE_SYNC_START = 1,         /* designated member opens a sync epoch */
        MESSAGE_SYNC_SUMMARY = 2,       /* every member: commit counter, digest, votes */
        MESSAGE_SYNC_STATE = 3,         /* the chosen member: its full state */
        MESSAGE_PROPOSAL = 4,           /* a command for the state machine */
        MESSAGE_ACK = 5,                /* "I applied proposal (node, seq)" */
        _MESSAGE_TYPE_MAX,
} MessageType;

typedef struct MessageHeader {
        uint32_t magic;
        uint16_t version;
        uint16_t type;
        uint32_t sender;
        uint64_t epoch;
        uint64_t seq;
        uint32_t length;
} MessageHeader;

/* Starts a frame; message_end() fills in the payload length. */
void message_begin(Writer *w, MessageType type, uint32_t sender, uint64_t epoch, uint64_t seq);
int message_end(Writer *w);

/* Validates the header of a received frame of n bytes and positions
 * `payload` on exactly the payload. -EBADMSG for anything malformed,
 * -EPROTONOSUPPORT for a frame of a newer protocol version. */
int message_parse(const void *buf, size_t n, MessageHeader *ret, Reader *payload);

const char *message_type_to_string(uint16_t type);
