/*
 * A minimal LwM2M 1.0 client over DTLS 1.2 with a pre-shared key, built on Mbed TLS 2.x: the test
 * peer that proves the server talks to devices on Mbed TLS 2.x (whose first ClientHello record
 * says {254, 0}). Our own code, for test/interop/mbedtls-client.test.ts; nothing else uses it.
 *
 * It handshakes with one chosen PSK suite, registers (POST /rd), answers Reads of the Device object
 * (/3/0 and its resources, TLV or text/plain), and de-registers (DELETE of the registration) when a
 * line "deregister" arrives on stdin, stdin ends, or SIGTERM/SIGINT comes; then it exits 0.
 *
 *   mbedtls-lwm2m-client -h HOST -p PORT -n ENDPOINT -i PSK_IDENTITY -k PSK_HEX -c SUITE [-l LIFETIME]
 *     SUITE: an IANA name, e.g. TLS_PSK_WITH_AES_128_CCM_8
 *
 * What it prints on stdout, one line per event (the test parses them):
 *   HANDSHAKE ok suite=<name>
 *   REGISTER <code> location=<path>
 *   REQUEST <method> <path> -> <code>
 *   DEREGISTER <code>
 *   ERROR <what>                        (then it exits 1)
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/timing.h>
#include <mbedtls/version.h>

/* CoAP (RFC 7252) numbers we use. */
enum { COAP_CON = 0, COAP_NON = 1, COAP_ACK = 2, COAP_RST = 3 };
enum { OPT_LOCATION_PATH = 8, OPT_URI_PATH = 11, OPT_CONTENT_FORMAT = 12, OPT_URI_QUERY = 15, OPT_ACCEPT = 17 };
enum { FORMAT_TEXT = 0, FORMAT_LINK = 40, FORMAT_TLV = 11542 };
#define CODE(class, detail) ((uint8_t)(((class) << 5) | (detail)))
#define MAX_MESSAGE 1024
#define MAX_SEGMENTS 8
/* RFC 7252 §4.8 ACK_TIMEOUT and MAX_RETRANSMIT (without the random factor: this is a test peer). */
#define ACK_TIMEOUT_MS 2000
#define MAX_RETRANSMIT 4

/* One CoAP message as parsed: pointers into the datagram. */
struct coap_message {
    uint8_t type, code;
    uint16_t mid;
    uint8_t token[8];
    size_t token_length;
    char path[64];            /* Uri-Path as "/3/0/0" */
    size_t segments;          /* how many Uri-Path options */
    char location[64];        /* Location-Path as "/rd/abc" */
    int accept;               /* -1 when absent */
    const uint8_t *payload;
    size_t payload_length;
};

/* A message under construction: options must be added in increasing number order. */
struct coap_builder {
    uint8_t data[MAX_MESSAGE];
    size_t length;
    unsigned last_option;
};

/* The responses we sent to the last confirmable requests, resent when a request is repeated. */
struct sent_response {
    int used;
    uint16_t mid;
    size_t length;
    uint8_t data[MAX_MESSAGE];
};
#define RESPONSE_CACHE 8

static mbedtls_net_context net;
static mbedtls_ssl_context ssl;
static mbedtls_ssl_config conf;
static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static mbedtls_timing_delay_context timer;
static volatile sig_atomic_t stop_requested = 0;
static uint16_t next_mid;
static struct sent_response cache[RESPONSE_CACHE];
static unsigned cache_next;

static void fail(const char *format, ...) {
    va_list args;
    va_start(args, format);
    printf("ERROR ");
    vprintf(format, args);
    printf("\n");
    va_end(args);
    exit(1);
}

static void fail_tls(const char *what, int ret) {
    char text[128];
    mbedtls_strerror(ret, text, sizeof text);
    fail("%s: -0x%04x %s", what, (unsigned)-ret, text);
}

static void on_signal(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- CoAP encoding ---------------------------------------------------------------------------- */

static void put_byte(struct coap_builder *b, uint8_t byte) {
    if (b->length >= MAX_MESSAGE) fail("message too long");
    b->data[b->length++] = byte;
}

static void put_header(struct coap_builder *b, uint8_t type, uint8_t code, uint16_t mid, const uint8_t *token,
                       size_t token_length) {
    b->length = 0;
    b->last_option = 0;
    put_byte(b, (uint8_t)(0x40 | (type << 4) | token_length));
    put_byte(b, code);
    put_byte(b, (uint8_t)(mid >> 8));
    put_byte(b, (uint8_t)mid);
    for (size_t i = 0; i < token_length; i++) put_byte(b, token[i]);
}

/* An option's delta or length as a nibble, with its extended bytes written by put_extended. */
static unsigned nibble(size_t value) { return value < 13 ? (unsigned)value : value < 269 ? 13 : 14; }

static void put_extended(struct coap_builder *b, size_t value) {
    if (value >= 269) {
        put_byte(b, (uint8_t)((value - 269) >> 8));
        put_byte(b, (uint8_t)(value - 269));
    } else if (value >= 13) {
        put_byte(b, (uint8_t)(value - 13));
    }
}

static void put_option(struct coap_builder *b, unsigned number, const void *value, size_t length) {
    size_t delta = number - b->last_option;
    b->last_option = number;
    put_byte(b, (uint8_t)((nibble(delta) << 4) | nibble(length)));
    put_extended(b, delta);
    put_extended(b, length);
    for (size_t i = 0; i < length; i++) put_byte(b, ((const uint8_t *)value)[i]);
}

static void put_uint_option(struct coap_builder *b, unsigned number, unsigned value) {
    uint8_t bytes[2] = {(uint8_t)(value >> 8), (uint8_t)value};
    if (value == 0) put_option(b, number, bytes, 0);
    else if (value < 256) put_option(b, number, bytes + 1, 1);
    else put_option(b, number, bytes, 2);
}

static void put_payload(struct coap_builder *b, const void *payload, size_t length) {
    if (length == 0) return;
    put_byte(b, 0xff);
    for (size_t i = 0; i < length; i++) put_byte(b, ((const uint8_t *)payload)[i]);
}

/* ---- CoAP parsing ----------------------------------------------------------------------------- */

/* Reads an extended option delta or length; -1 when the message ends or the nibble is reserved. */
static long read_extended(unsigned value, const uint8_t **at, const uint8_t *end) {
    if (value < 13) return (long)value;
    if (value == 13) {
        if (*at >= end) return -1;
        return 13 + *(*at)++;
    }
    if (value == 14) {
        if (end - *at < 2) return -1;
        long extended = 269 + ((*at)[0] << 8) + (*at)[1];
        *at += 2;
        return extended;
    }
    return -1;
}

static void append_segment(char *path, size_t size, const uint8_t *value, size_t length) {
    size_t used = strlen(path);
    if (used + 1 + length >= size) return;
    path[used] = '/';
    memcpy(path + used + 1, value, length);
    path[used + 1 + length] = '\0';
}

static int parse_message(const uint8_t *data, size_t length, struct coap_message *m) {
    memset(m, 0, sizeof *m);
    m->accept = -1;
    if (length < 4 || (data[0] >> 6) != 1) return -1;
    m->type = (data[0] >> 4) & 3;
    m->token_length = data[0] & 0x0f;
    m->code = data[1];
    m->mid = (uint16_t)((data[2] << 8) | data[3]);
    if (m->token_length > 8 || length < 4 + m->token_length) return -1;
    memcpy(m->token, data + 4, m->token_length);
    const uint8_t *at = data + 4 + m->token_length, *end = data + length;
    unsigned number = 0;
    while (at < end && *at != 0xff) {
        unsigned head = *at++;
        long delta = read_extended(head >> 4, &at, end);
        long option_length = read_extended(head & 0x0f, &at, end);
        if (delta < 0 || option_length < 0 || end - at < option_length) return -1;
        number += (unsigned)delta;
        if (number == OPT_URI_PATH) {
            append_segment(m->path, sizeof m->path, at, (size_t)option_length);
            m->segments++;
        } else if (number == OPT_LOCATION_PATH) {
            append_segment(m->location, sizeof m->location, at, (size_t)option_length);
        } else if (number == OPT_ACCEPT) {
            m->accept = 0;
            for (long i = 0; i < option_length; i++) m->accept = (m->accept << 8) | at[i];
        }
        at += option_length;
    }
    if (at < end) {
        m->payload = at + 1;
        m->payload_length = (size_t)(end - at - 1);
        if (m->payload_length == 0) return -1; /* a payload marker with nothing after it */
    }
    return 0;
}

static void format_code(uint8_t code, char out[8]) { snprintf(out, 8, "%u.%02u", code >> 5, code & 31); }

/* ---- DTLS ------------------------------------------------------------------------------------- */

static void send_datagram(const uint8_t *data, size_t length) {
    int ret;
    while ((ret = mbedtls_ssl_write(&ssl, data, length)) < 0) {
        if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE) fail_tls("ssl_write", ret);
    }
}

/* One decrypted datagram, waiting at most wait_ms for it: its length, 0 when none came. */
static size_t receive_datagram(uint8_t *buffer, size_t size, int wait_ms) {
    struct pollfd socket_fd = {.fd = net.fd, .events = POLLIN};
    for (;;) {
        int ret = mbedtls_ssl_read(&ssl, buffer, size);
        if (ret > 0) return (size_t)ret;
        if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) fail("the server closed the session");
        if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE) fail_tls("ssl_read", ret);
        /* Nothing decrypted yet (or a record that was not application data): wait for the socket. */
        if (wait_ms <= 0 || stop_requested) return 0;
        long long started = now_ms();
        if (poll(&socket_fd, 1, wait_ms) <= 0) return 0;
        wait_ms -= (int)(now_ms() - started);
    }
}

static void handshake(const char *host, const char *port, const char *suite_name, const char *identity,
                      const char *key_hex) {
    /* Mbed TLS names suites with dashes: TLS-PSK-WITH-AES-128-CCM-8. */
    char dashed[96];
    snprintf(dashed, sizeof dashed, "%s", suite_name);
    for (char *c = dashed; *c; c++)
        if (*c == '_') *c = '-';
    static int suites[2];
    suites[0] = mbedtls_ssl_get_ciphersuite_id(dashed);
    if (suites[0] == 0) fail("unknown or disabled suite %s", suite_name);

    unsigned char key[64];
    size_t key_length = strlen(key_hex) / 2;
    if (key_length == 0 || key_length > sizeof key || strlen(key_hex) % 2 != 0) fail("bad key %s", key_hex);
    for (size_t i = 0; i < key_length; i++) {
        unsigned byte;
        if (sscanf(key_hex + 2 * i, "%2x", &byte) != 1) fail("bad key %s", key_hex);
        key[i] = (unsigned char)byte;
    }

    int ret;
    const char *personalisation = "lwm2m-test-client";
    if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, (const unsigned char *)personalisation,
                                     strlen(personalisation))) != 0)
        fail_tls("ctr_drbg_seed", ret);
    if ((ret = mbedtls_net_connect(&net, host, port, MBEDTLS_NET_PROTO_UDP)) != 0) fail_tls("net_connect", ret);
    if ((ret = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_DATAGRAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
        fail_tls("ssl_config_defaults", ret);
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ssl_conf_ciphersuites(&conf, suites);
    /*
     * The widest version range an application can ask for, as LwM2M stacks on Mbed TLS 2.x do: the
     * ClientHello body then offers DTLS 1.2 while its record says the lowest version, SSL 3.0, which
     * Mbed TLS 2.x writes for a datagram as {254, 0}. (With the default minimum it is {254, 255}.)
     */
    mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_0);
    if ((ret = mbedtls_ssl_conf_psk(&conf, key, key_length, (const unsigned char *)identity, strlen(identity))) != 0)
        fail_tls("ssl_conf_psk", ret);
    /* Retransmission of our flights: 1 s doubling up to 16 s (RFC 6347 §4.2.4.1), by the timer callbacks. */
    mbedtls_ssl_conf_handshake_timeout(&conf, 1000, 16000);
    mbedtls_ssl_conf_read_timeout(&conf, 1000);
    if ((ret = mbedtls_ssl_setup(&ssl, &conf)) != 0) fail_tls("ssl_setup", ret);
    mbedtls_ssl_set_timer_cb(&ssl, &timer, mbedtls_timing_set_delay, mbedtls_timing_get_delay);
    mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, mbedtls_net_recv, mbedtls_net_recv_timeout);

    do {
        ret = mbedtls_ssl_handshake(&ssl);
        if (stop_requested) fail("stopped during the handshake");
    } while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
    if (ret != 0) fail_tls("handshake", ret);
    /* From here on the socket is polled: reads must not block. */
    mbedtls_net_set_nonblock(&net);
    mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, mbedtls_net_recv, NULL);
    printf("HANDSHAKE ok suite=%s\n", mbedtls_ssl_get_ciphersuite(&ssl));
}

/* ---- Serving the server's requests ------------------------------------------------------------ */

/* A Device object resource (/3/0/id) as text, or NULL when we do not have it. */
static const char *device_resource(unsigned id) {
    switch (id) {
    case 0: return "Mbed TLS test peer";                 /* Manufacturer */
    case 1: return "lwm2m-client.c";                     /* Model Number */
    case 2: return "0001";                               /* Serial Number */
    case 3: return MBEDTLS_VERSION_STRING_FULL;          /* Firmware Version */
    case 16: return "U";                                 /* Supported Binding and Modes */
    default: return NULL;
    }
}

/* One single-instance resource as an OMA TLV entry (id under 256, value under 256 bytes). */
static size_t put_tlv_resource(uint8_t *out, unsigned id, const char *text) {
    size_t length = strlen(text);
    size_t at = 0;
    if (length < 8) {
        out[at++] = (uint8_t)(0xc0 | length);
    } else {
        out[at++] = 0xc8;
    }
    out[at++] = (uint8_t)id;
    if (length >= 8) out[at++] = (uint8_t)length;
    memcpy(out + at, text, length);
    return at + length;
}

/* The answer to a GET: code, format and payload. */
static uint8_t answer_read(const struct coap_message *request, int *format, uint8_t *payload, size_t *length) {
    static const unsigned ids[] = {0, 1, 2, 3, 16};
    unsigned object = 0, instance = 0, resource = 0;
    int parts = sscanf(request->path, "/%u/%u/%u", &object, &instance, &resource);
    *length = 0;
    if (object != 3 || instance != 0 || parts < 2 || (size_t)parts != request->segments) return CODE(4, 4);
    if (parts == 2) {
        if (request->accept != -1 && request->accept != FORMAT_TLV) return CODE(4, 6);
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
            *length += put_tlv_resource(payload + *length, ids[i], device_resource(ids[i]));
        *format = FORMAT_TLV;
        return CODE(2, 5);
    }
    const char *text = device_resource(resource);
    if (text == NULL) return CODE(4, 4);
    if (request->accept == FORMAT_TLV) {
        *length = put_tlv_resource(payload, resource, text);
        *format = FORMAT_TLV;
    } else if (request->accept == -1 || request->accept == FORMAT_TEXT) {
        *length = strlen(text);
        memcpy(payload, text, *length);
        *format = FORMAT_TEXT;
    } else {
        return CODE(4, 6);
    }
    return CODE(2, 5);
}

/* Answers a request from the server (piggybacked on the ACK of a CON); a repeated CON gets the same answer. */
static void serve(const struct coap_message *request) {
    if (request->type == COAP_CON) {
        for (unsigned i = 0; i < RESPONSE_CACHE; i++) {
            if (cache[i].used && cache[i].mid == request->mid) {
                send_datagram(cache[i].data, cache[i].length);
                return;
            }
        }
    }
    if (request->code == 0) { /* a CoAP ping: RST (RFC 7252 §4.3) */
        struct coap_builder reset;
        put_header(&reset, COAP_RST, 0, request->mid, NULL, 0);
        send_datagram(reset.data, reset.length);
        return;
    }
    uint8_t payload[512];
    size_t length = 0;
    int format = -1;
    uint8_t code = request->code == CODE(0, 1) ? answer_read(request, &format, payload, &length) : CODE(4, 5);
    struct coap_builder response;
    uint8_t type = request->type == COAP_CON ? COAP_ACK : COAP_NON;
    put_header(&response, type, code, type == COAP_ACK ? request->mid : next_mid++, request->token,
               request->token_length);
    if (format >= 0) put_uint_option(&response, OPT_CONTENT_FORMAT, (unsigned)format);
    put_payload(&response, payload, length);
    send_datagram(response.data, response.length);
    if (request->type == COAP_CON) {
        struct sent_response *slot = &cache[cache_next++ % RESPONSE_CACHE];
        slot->used = 1;
        slot->mid = request->mid;
        slot->length = response.length;
        memcpy(slot->data, response.data, response.length);
    }
    static const char *methods[] = {"EMPTY", "GET", "POST", "PUT", "DELETE"};
    char text[8];
    format_code(code, text);
    printf("REQUEST %s %s -> %s\n", request->code <= 4 ? methods[request->code] : "?", request->path, text);
}

/* ---- Our requests ----------------------------------------------------------------------------- */

/*
 * Sends a confirmable request and waits for its response: piggybacked on the ACK, or separate after
 * an empty ACK. Retransmits with exponential back-off; the server's requests meanwhile are served.
 * Returns 0 with the response in *response (its payload points into `storage`), -1 on timeout.
 */
static int exchange(struct coap_builder *request, struct coap_message *response, uint8_t *storage) {
    uint16_t mid = (uint16_t)((request->data[2] << 8) | request->data[3]);
    size_t token_length = request->data[0] & 0x0f;
    const uint8_t *token = request->data + 4;
    int timeout = ACK_TIMEOUT_MS, retransmissions = 0, acknowledged = 0;
    long long deadline = now_ms() + timeout;
    send_datagram(request->data, request->length);
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            if (acknowledged || retransmissions == MAX_RETRANSMIT) return -1;
            retransmissions++;
            timeout *= 2;
            deadline = now_ms() + timeout;
            send_datagram(request->data, request->length);
            continue;
        }
        size_t length = receive_datagram(storage, MAX_MESSAGE, (int)left);
        if (length == 0) continue;
        struct coap_message m;
        if (parse_message(storage, length, &m) != 0) continue;
        int ours = m.token_length == token_length && memcmp(m.token, token, token_length) == 0;
        if ((m.type == COAP_ACK || m.type == COAP_RST) && m.mid == mid) {
            if (m.type == COAP_RST) return -1;
            if (m.code == 0) { /* empty ACK: the response comes separately, no more retransmissions */
                acknowledged = 1;
                deadline = now_ms() + 30000;
                continue;
            }
            *response = m;
            return 0;
        }
        if ((m.type == COAP_CON || m.type == COAP_NON) && m.code >= CODE(2, 0) && ours) {
            if (m.type == COAP_CON) {
                struct coap_builder ack;
                put_header(&ack, COAP_ACK, 0, m.mid, NULL, 0);
                send_datagram(ack.data, ack.length);
            }
            *response = m;
            return 0;
        }
        if ((m.type == COAP_CON || m.type == COAP_NON) && m.code < CODE(2, 0)) serve(&m);
    }
}

static void new_request(struct coap_builder *b, uint8_t code) {
    uint8_t token[4];
    mbedtls_ctr_drbg_random(&drbg, token, sizeof token);
    put_header(b, COAP_CON, code, next_mid++, token, sizeof token);
}

/* POST /rd?ep=..&lt=..&lwm2m=1.0&b=U with our objects; the location is copied to `location`. */
static void register_client(const char *endpoint, const char *lifetime, char *location, size_t size) {
    static const char links[] = "</1/0>,</3/0>";
    char query[128];
    struct coap_builder request;
    new_request(&request, CODE(0, 2));
    put_option(&request, OPT_URI_PATH, "rd", 2);
    put_uint_option(&request, OPT_CONTENT_FORMAT, FORMAT_LINK);
    snprintf(query, sizeof query, "ep=%s", endpoint);
    put_option(&request, OPT_URI_QUERY, query, strlen(query));
    snprintf(query, sizeof query, "lt=%s", lifetime);
    put_option(&request, OPT_URI_QUERY, query, strlen(query));
    put_option(&request, OPT_URI_QUERY, "lwm2m=1.0", 9);
    put_option(&request, OPT_URI_QUERY, "b=U", 3);
    put_payload(&request, links, strlen(links));

    uint8_t storage[MAX_MESSAGE];
    struct coap_message response;
    if (exchange(&request, &response, storage) != 0) fail("no answer to Register");
    char code[8];
    format_code(response.code, code);
    printf("REGISTER %s location=%s\n", code, response.location);
    if (response.code != CODE(2, 1) || response.location[0] == '\0') fail("registration refused");
    snprintf(location, size, "%s", response.location);
}

/* DELETE of the registration; prints the answer. */
static int deregister(const char *location) {
    struct coap_builder request;
    new_request(&request, CODE(0, 4));
    char copy[64];
    snprintf(copy, sizeof copy, "%s", location);
    for (char *segment = strtok(copy, "/"); segment != NULL; segment = strtok(NULL, "/"))
        put_option(&request, OPT_URI_PATH, segment, strlen(segment));
    uint8_t storage[MAX_MESSAGE];
    struct coap_message response;
    if (exchange(&request, &response, storage) != 0) {
        printf("DEREGISTER timeout\n");
        return 1;
    }
    char code[8];
    format_code(response.code, code);
    printf("DEREGISTER %s\n", code);
    return response.code == CODE(2, 2) ? 0 : 1;
}

/* Serves the server's requests until stdin says "deregister" (or ends) or a signal comes. */
static void serve_until_stopped(void) {
    char line[128];
    size_t line_length = 0;
    struct pollfd fds[2] = {{.fd = net.fd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
    while (!stop_requested) {
        uint8_t storage[MAX_MESSAGE];
        size_t length;
        while ((length = receive_datagram(storage, sizeof storage, 0)) > 0) {
            struct coap_message m;
            if (parse_message(storage, length, &m) == 0 && (m.type == COAP_CON || m.type == COAP_NON) &&
                m.code < CODE(2, 0))
                serve(&m);
        }
        /* A bounded wait: a signal arriving just before poll() is still noticed. */
        if (poll(fds, 2, 500) < 0 && errno != EINTR) fail("poll: %s", strerror(errno));
        if (fds[1].revents & (POLLIN | POLLHUP)) {
            char c;
            ssize_t got = read(STDIN_FILENO, &c, 1);
            if (got <= 0) return; /* stdin ended: the test is gone or done */
            if (c != '\n') {
                if (line_length < sizeof line - 1) line[line_length++] = c;
                continue;
            }
            line[line_length] = '\0';
            line_length = 0;
            if (strcmp(line, "deregister") == 0) return;
        }
    }
}

int main(int argc, char **argv) {
    const char *host = NULL, *port = NULL, *endpoint = NULL, *identity = NULL, *key = NULL, *suite = NULL;
    const char *lifetime = "300";
    int option;
    while ((option = getopt(argc, argv, "h:p:n:i:k:c:l:")) != -1) {
        switch (option) {
        case 'h': host = optarg; break;
        case 'p': port = optarg; break;
        case 'n': endpoint = optarg; break;
        case 'i': identity = optarg; break;
        case 'k': key = optarg; break;
        case 'c': suite = optarg; break;
        case 'l': lifetime = optarg; break;
        default: fail("usage: %s -h HOST -p PORT -n ENDPOINT -i IDENTITY -k PSK_HEX -c SUITE [-l LIFETIME]", argv[0]);
        }
    }
    if (!host || !port || !endpoint || !identity || !key || !suite)
        fail("usage: %s -h HOST -p PORT -n ENDPOINT -i IDENTITY -k PSK_HEX -c SUITE [-l LIFETIME]", argv[0]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction action = {.sa_handler = on_signal};
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);

    mbedtls_net_init(&net);
    mbedtls_ssl_init(&ssl);
    mbedtls_ssl_config_init(&conf);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    handshake(host, port, suite, identity, key);
    mbedtls_ctr_drbg_random(&drbg, (unsigned char *)&next_mid, sizeof next_mid);

    char location[64];
    register_client(endpoint, lifetime, location, sizeof location);
    serve_until_stopped();
    stop_requested = 0; /* the DELETE's own waits must not be cut short */
    int status = deregister(location);
    mbedtls_ssl_close_notify(&ssl);

    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    mbedtls_net_free(&net);
    return status;
}
