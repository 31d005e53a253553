/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "message.h"

#include <errno.h>

void message_begin(Writer *w, MessageType type, uint32_t sender, uint64_t epoch, uint64_t seq) {
        writer_put_u32(w, FERRY_MESSAGE_MAGIC);
        writer_put_u16(w, FERRY_PROTOCOL_VERSION);
        writer_put_u16(w, (uint16_t) type);
        writer_put_u32(w, sender);
        writer_put_u64(w, epoch);
        writer_put_u64(w, seq);
        writer_put_u32(w, 0);   /* patched by message_end() */
}

int message_end(Writer *w) {
        if (writer_error(w) < 0)
                return -ENOMEM;
        if (w->size < FERRY_MESSAGE_HEADER_SIZE || w->size > FERRY_MESSAGE_MAX)
                return -EMSGSIZE;
        writer_patch_u32(w, FERRY_MESSAGE_HEADER_SIZE - 4, (uint32_t) (w->size - FERRY_MESSAGE_HEADER_SIZE));
        return 0;
}

int message_parse(const void *buf, size_t n, MessageHeader *ret, Reader *payload) {
        MessageHeader h;
        Reader r;

        if (n < FERRY_MESSAGE_HEADER_SIZE || n > FERRY_MESSAGE_MAX)
                return -EBADMSG;
        reader_init(&r, buf, n);
        h.magic = reader_get_u32(&r);
        h.version = reader_get_u16(&r);
        h.type = reader_get_u16(&r);
        h.sender = reader_get_u32(&r);
        h.epoch = reader_get_u64(&r);
        h.seq = reader_get_u64(&r);
        h.length = reader_get_u32(&r);
        if (reader_error(&r) < 0 || h.magic != FERRY_MESSAGE_MAGIC)
                return -EBADMSG;
        if (h.version == 0)
                return -EBADMSG;
        if (h.version > FERRY_PROTOCOL_VERSION)
                return -EPROTONOSUPPORT;
        if (h.type == 0 || h.type >= _MESSAGE_TYPE_MAX)
                return -EBADMSG;
        if (h.length != r.left)
                return -EBADMSG;
        *ret = h;
        *payload = r;
        return 0;
}

const char *message_type_to_string(uint16_t type) {
        switch (type) {
        case MESSAGE_SYNC_START: return "sync-start";
        case MESSAGE_SYNC_SUMMARY: return "sync-summary";
        case MESSAGE_SYNC_STATE: return "sync-state";
        case MESSAGE_PROPOSAL: return "proposal";
        case MESSAGE_ACK: return "ack";
        default: return "unknown";
        }
}
