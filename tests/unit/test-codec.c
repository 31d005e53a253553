/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>

#include "codec.h"
#include "message.h"
#include "sha256.h"
#include "test-util.h"

static void test_roundtrip(void) {
        Writer w;
        Reader r;

        writer_init(&w);
        writer_put_u8(&w, 0xab);
        writer_put_u16(&w, 0xbeef);
        writer_put_u32(&w, 0xdeadbeef);
        writer_put_u64(&w, UINT64_C(0x0102030405060708));
        writer_put_bool(&w, true);
        writer_put_string(&w, "hello");
        writer_put_string(&w, NULL);
        CHECK_EQ_INT(writer_error(&w), 0);
        /* Big-endian on the wire whatever the host is. */
        CHECK_EQ_INT(w.data[1], 0xbe);
        CHECK_EQ_INT(w.data[3], 0xde);
        CHECK_EQ_INT(w.data[7], 0x01);

        reader_init(&r, w.data, w.size);
        CHECK_EQ_INT(reader_get_u8(&r), 0xab);
        CHECK_EQ_INT(reader_get_u16(&r), 0xbeef);
        CHECK_EQ_INT(reader_get_u32(&r), 0xdeadbeef);
        CHECK(reader_get_u64(&r) == UINT64_C(0x0102030405060708));
        CHECK(reader_get_bool(&r));
        CHECK_STREQ(reader_get_string(&r), "hello");
        CHECK_STREQ(reader_get_string(&r), "");
        CHECK_EQ_INT(reader_finish(&r), 0);
        writer_done(&w);
}

static void test_truncation_everywhere(void) {
        Writer w;

        writer_init(&w);
        writer_put_u32(&w, 7);
        writer_put_string(&w, "abcdef");
        writer_put_u64(&w, 9);
        /* Every strict prefix must fail cleanly, never read past the end. */
        for (size_t n = 0; n < w.size; n++) {
                Reader r;
                reader_init(&r, w.data, n);
                (void) reader_get_u32(&r);
                (void) reader_get_string(&r);
                (void) reader_get_u64(&r);
                CHECK(reader_error(&r) < 0);
        }
        writer_done(&w);
}

static void test_bad_strings(void) {
        static const uint8_t no_nul[] = { 0, 0, 0, 3, 'a', 'b', 'c' };
        static const uint8_t inner_nul[] = { 0, 0, 0, 3, 'a', 0, 0 };
        static const uint8_t zero_len[] = { 0, 0, 0, 0 };
        static const uint8_t huge[] = { 0x7f, 0xff, 0xff, 0xff, 'a', 0 };
        const uint8_t *cases[] = { no_nul, inner_nul, zero_len, huge };
        size_t sizes[] = { sizeof(no_nul), sizeof(inner_nul), sizeof(zero_len), sizeof(huge) };

        for (size_t i = 0; i < 4; i++) {
                Reader r;
                reader_init(&r, cases[i], sizes[i]);
                CHECK(reader_get_string(&r) == NULL);
                CHECK(reader_error(&r) < 0);
        }
        /* A bool is 0 or 1, nothing else. */
        uint8_t two = 2;
        Reader r;
        reader_init(&r, &two, 1);
        (void) reader_get_bool(&r);
        CHECK(reader_error(&r) < 0);
}

static void test_trailing_bytes(void) {
        uint8_t buf[5] = { 0, 0, 0, 1, 0xff };
        Reader r;
        reader_init(&r, buf, sizeof(buf));
        CHECK_EQ_INT(reader_get_u32(&r), 1);
        CHECK_EQ_INT(reader_error(&r), 0);
        CHECK_EQ_INT(reader_finish(&r), -EBADMSG);
}

static void test_message_header(void) {
        MessageHeader h;
        Writer w;
        Reader p;

        writer_init(&w);
        message_begin(&w, MESSAGE_PROPOSAL, 3, UINT64_C(0x300000001), 42);
        writer_put_u32(&w, 1234);
        CHECK_EQ_INT(message_end(&w), 0);
        CHECK_EQ_INT(w.size, FERRY_MESSAGE_HEADER_SIZE + 4);

        CHECK_EQ_INT(message_parse(w.data, w.size, &h, &p), 0);
        CHECK_EQ_INT(h.type, MESSAGE_PROPOSAL);
        CHECK_EQ_INT(h.sender, 3);
        CHECK(h.epoch == UINT64_C(0x300000001));
        CHECK_EQ_INT(h.seq, 42);
        CHECK_EQ_INT(reader_get_u32(&p), 1234);
        CHECK_EQ_INT(reader_finish(&p), 0);

        /* Every truncation is refused. */
        for (size_t n = 0; n < w.size; n++)
                CHECK_EQ_INT(message_parse(w.data, n, &h, &p), -EBADMSG);

        /* Bad magic, unknown type, length mismatch, newer version. */
        w.data[0] ^= 0xff;
        CHECK_EQ_INT(message_parse(w.data, w.size, &h, &p), -EBADMSG);
        w.data[0] ^= 0xff;
        w.data[7] = 99;
        CHECK_EQ_INT(message_parse(w.data, w.size, &h, &p), -EBADMSG);
        w.data[7] = MESSAGE_PROPOSAL;
        w.data[31] = 5;
        CHECK_EQ_INT(message_parse(w.data, w.size, &h, &p), -EBADMSG);
        w.data[31] = 4;
        w.data[5] = FERRY_PROTOCOL_VERSION + 1;
        CHECK_EQ_INT(message_parse(w.data, w.size, &h, &p), -EPROTONOSUPPORT);
        writer_done(&w);
}

static void test_sha256_vectors(void) {
        char out[65];
        /* FIPS 180-2 examples. */
        sha256_hex("", 0, out);
        CHECK_STREQ(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        sha256_hex("abc", 3, out);
        CHECK_STREQ(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        sha256_hex(two_blocks, strlen(two_blocks), out);
        CHECK_STREQ(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

        /* Feeding in odd pieces gives the same digest. */
        Sha256 s;
        uint8_t d1[32], d2[32];
        static uint8_t big[1000];
        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (uint8_t) (i * 7);
        sha256_init(&s);
        sha256_update(&s, big, sizeof(big));
        sha256_final(&s, d1);
        sha256_init(&s);
        for (size_t i = 0; i < sizeof(big); i += 13)
                sha256_update(&s, big + i, i + 13 > sizeof(big) ? sizeof(big) - i : 13);
        sha256_final(&s, d2);
        CHECK(memcmp(d1, d2, 32) == 0);
}

int main(void) {
        static const TestCase tests[] = {
                { "roundtrip", test_roundtrip },
                { "truncation everywhere", test_truncation_everywhere },
                { "bad strings", test_bad_strings },
                { "trailing bytes", test_trailing_bytes },
                { "message header", test_message_header },
                { "sha256 vectors", test_sha256_vectors },
        };
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
