// SPDX-License-Identifier: GPL-2.0
/*
 * nlb_ws_reader: one WebSocket client in C, so that a bridge's latency can be
 * read without the Node client's own wake-up and parse cost (issue 17). It
 * speaks the same JSON lines as bench/agents/ws_clients.ts (ready, probed,
 * result), so the runner treats it as a client process of one client.
 *
 *   nlb_ws_reader -u ws://127.0.0.1:PORT/PATH -n EXPECT [-t SECONDS] [-i IDLE_MS] [-L]
 *
 * RFC 6455 client side, as much as a bench reader needs: the opening
 * handshake (the Sec-WebSocket-Accept is checked: SHA-1 and base64 below, no
 * library), frames of any length form (7, 16, 64 bits), text and binary,
 * fragmented messages (joined before they are read), ping (answered with a
 * masked pong), close (answered, then the result). Every bench payload
 * (nlb_common.h) found in a message is counted, whatever JSON or binary
 * shape wraps it: the payload is ASCII and reaches a client verbatim.
 *
 * -L records each message's send→receive latency. The receive time is
 * CLOCK_MONOTONIC (the sender's clock) taken when the read() that completed
 * the frame returns, as nlb_sink takes it when recvmmsg returns.
 *
 * A line on stdin (the runner's {"cmd":"report"}) prints the result now.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nlb_common.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define READ_CHUNK 65536

/* ---- SHA-1 (FIPS 180-4), only for the handshake's accept value ---- */

static uint32_t rol32(uint32_t v, int s)
{
	return (v << s) | (v >> (32 - s));
}

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20])
{
	uint32_t h[5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 };
	size_t total = ((len + 8) / 64 + 1) * 64, off, i;
	unsigned char *buf = calloc(1, total);
	uint64_t bits = (uint64_t)len * 8;

	if (!buf)
		exit(1);
	memcpy(buf, msg, len);
	buf[len] = 0x80;
	for (i = 0; i < 8; i++)
		buf[total - 1 - i] = (unsigned char)(bits >> (8 * i));
	for (off = 0; off < total; off += 64) {
		uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];

		for (i = 0; i < 16; i++)
			w[i] = (uint32_t)buf[off + 4 * i] << 24 | (uint32_t)buf[off + 4 * i + 1] << 16 |
			       (uint32_t)buf[off + 4 * i + 2] << 8 | buf[off + 4 * i + 3];
		for (i = 16; i < 80; i++)
			w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
		for (i = 0; i < 80; i++) {
			uint32_t f, k, t;

			if (i < 20) {
				f = (b & c) | (~b & d);
				k = 0x5A827999;
			} else if (i < 40) {
				f = b ^ c ^ d;
				k = 0x6ED9EBA1;
			} else if (i < 60) {
				f = (b & c) | (b & d) | (c & d);
				k = 0x8F1BBCDC;
			} else {
				f = b ^ c ^ d;
				k = 0xCA62C1D6;
			}
			t = rol32(a, 5) + f + e + k + w[i];
			e = d;
			d = c;
			c = rol32(b, 30);
			b = a;
			a = t;
		}
		h[0] += a;
		h[1] += b;
		h[2] += c;
		h[3] += d;
		h[4] += e;
	}
	free(buf);
	for (i = 0; i < 20; i++)
		out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const unsigned char *in, size_t len, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = 0;
}

/* ---- the reader ---- */

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	while (b->cap < b->len + more)
		b->cap = b->cap ? b->cap * 2 : READ_CHUNK;
	b->p = realloc(b->p, b->cap);
	if (!b->p) {
		fprintf(stderr, "nlb_ws_reader: out of memory\n");
		exit(1);
	}
}

static void buf_append(struct buf *b, const unsigned char *p, size_t len)
{
	buf_reserve(b, len);
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

static struct {
	int fd;
	unsigned long expect;
	int record_latency;
	uint64_t *lat;
	size_t lat_n, lat_cap;
	uint64_t frames, received, errors;
	uint64_t first_ns, last_ns;
	int probed, connected, close_code;
	struct buf msg;		/* a fragmented message, joined */
	int msg_opcode;
} st;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(double p)
{
	if (!st.lat_n)
		return 0;
	return st.lat[(size_t)(p * (double)(st.lat_n - 1) + 0.5)];
}

static void finish(const char *reason)
{
	double secs = st.last_ns > st.first_ns ? (st.last_ns - st.first_ns) / 1e9 : 0;
	struct rusage ru;
	double cpu = 0;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf("{\"result\":{\"reason\":\"%s\",\"client\":\"c\",\"clients\":1,\"connected\":%d,\"failed\":%d,"
	       "\"frames\":%" PRIu64 ",\"received\":%" PRIu64 ",\"minPerClient\":%" PRIu64
	       ",\"maxPerClient\":%" PRIu64 ",\"seconds\":%.6f,\"rate\":%.1f,\"cpuSeconds\":%.6f,"
	       "\"errors\":%" PRIu64 ",\"closes\":{",
	       reason, st.connected, !st.connected, st.frames, st.received, st.received, st.received,
	       secs, secs > 0 ? st.received / secs : 0.0, cpu, st.errors);
	if (st.close_code)
		printf("\"%d\":1", st.close_code);
	printf("}");
	if (st.record_latency) {
		qsort(st.lat, st.lat_n, sizeof(*st.lat), cmp_u64);
		printf(",\"latency\":{\"n\":%zu,\"p50_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f}",
		       st.lat_n, pct(0.50) / 1e3, pct(0.99) / 1e3, st.lat_n ? st.lat[st.lat_n - 1] / 1e3 : 0.0);
	}
	printf("}}\n");
	fflush(stdout);
	exit(0);
}

/* A client's frames are masked (RFC 6455 §5.3); the key may be anything. */
static void send_frame(int opcode, const unsigned char *payload, size_t len)
{
	unsigned char f[2 + 4 + 125];
	uint32_t key;
	size_t i;

	if (len > 125)
		len = 125;
	if (getrandom(&key, sizeof(key), 0) != sizeof(key))
		key = 0x5a5a5a5a;
	f[0] = (unsigned char)(0x80 | opcode);
	f[1] = (unsigned char)(0x80 | len);
	memcpy(f + 2, &key, 4);
	for (i = 0; i < len; i++)
		f[6 + i] = payload[i] ^ f[2 + i % 4];
	if (write(st.fd, f, 6 + len) < 0)
		st.errors++;
}

/* Every bench payload in a message; recv_ns is when its last byte was read. */
static void on_message(const unsigned char *p, size_t len, uint64_t recv_ns)
{
	const unsigned char *end = p + len, *at = p;
	uint64_t n = 0;

	while ((at = memmem(at, (size_t)(end - at), "NLB", 3)) != NULL) {
		uint64_t index, send_ns;

		if ((size_t)(end - at) < NLB_PAYLOAD_LEN)
			break;
		if (at[3] == '0' && !memcmp(at, NLB_PROBE_MAGIC, 4)) {
			if (!st.probed) {
				st.probed = 1;
				printf("{\"probed\":true}\n");
				fflush(stdout);
			}
			at += NLB_PAYLOAD_LEN;
			continue;
		}
		if (nlb_get_payload((const char *)at, NLB_PAYLOAD_LEN, &index, &send_ns)) {
			at += 3;
			continue;
		}
		n++;
		if (st.record_latency && st.lat_n < st.lat_cap && recv_ns > send_ns)
			st.lat[st.lat_n++] = recv_ns - send_ns;
		at += NLB_PAYLOAD_LEN;
	}
	if (!n)
		return;
	if (!st.first_ns)
		st.first_ns = recv_ns;
	st.last_ns = recv_ns;
	st.received += n;
	if (st.received >= st.expect)
		finish("complete");
}

/* Parses whole frames from in; returns the bytes consumed. */
static size_t on_bytes(unsigned char *in, size_t len, uint64_t recv_ns)
{
	size_t off = 0;

	for (;;) {
		unsigned char *f = in + off;
		size_t avail = len - off, hdr = 2, i;
		uint64_t plen;
		int fin, opcode, masked;
		unsigned char *payload;

		if (avail < 2)
			return off;
		fin = f[0] & 0x80;
		opcode = f[0] & 0x0f;
		masked = f[1] & 0x80;
		plen = f[1] & 0x7f;
		if (plen == 126) {
			if (avail < 4)
				return off;
			plen = (uint64_t)f[2] << 8 | f[3];
			hdr = 4;
		} else if (plen == 127) {
			if (avail < 10)
				return off;
			plen = 0;
			for (i = 0; i < 8; i++)
				plen = plen << 8 | f[2 + i];
			hdr = 10;
		}
		if (masked)
			hdr += 4;
		if (plen > (1ull << 31)) {
			fprintf(stderr, "nlb_ws_reader: frame of %" PRIu64 " bytes\n", plen);
			finish("protocol");
		}
		if (avail < hdr + plen)
			return off;
		payload = f + hdr;
		/* Servers do not mask (RFC 6455 §5.1); unmask anyway if one does. */
		if (masked)
			for (i = 0; i < plen; i++)
				payload[i] ^= f[hdr - 4 + i % 4];
		off += hdr + plen;
		st.frames++;
		switch (opcode) {
		case 0x0:	/* continuation */
		case 0x1:	/* text */
		case 0x2:	/* binary */
			if (opcode != 0 && st.msg.len == 0)
				st.msg_opcode = opcode;
			if (fin && st.msg.len == 0) {
				on_message(payload, plen, recv_ns);
			} else {
				buf_append(&st.msg, payload, plen);
				if (fin) {
					on_message(st.msg.p, st.msg.len, recv_ns);
					st.msg.len = 0;
				}
			}
			break;
		case 0x8:	/* close: echo its code, then report */
			st.close_code = plen >= 2 ? (payload[0] << 8 | payload[1]) : 1005;
			send_frame(0x8, payload, plen >= 2 ? 2 : 0);
			finish("closed");
			break;
		case 0x9:	/* ping */
			send_frame(0xA, payload, plen);
			break;
		default:	/* pong and reserved opcodes: nothing to read */
			break;
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: nlb_ws_reader -u ws://IPV4:PORT/PATH -n EXPECT [-t SECONDS] [-i IDLE_MS] [-L]\n");
	exit(2);
}

/* Connects and completes the opening handshake; leftover frame bytes go to rx. */
static int ws_connect(const char *url, struct buf *rx)
{
	char host[64], path[1024], req[1400], key[32], accept[32], want[32];
	unsigned char nonce[16], digest[20];
	char concat[128];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	unsigned int port;
	int fd, one = 1, n;
	char *hdr_end, *h;

	if (sscanf(url, "ws://%63[0-9.]:%u%1023s", host, &port, path) != 3 || path[0] != '/')
		usage();
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		usage();
	sa.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("nlb_ws_reader: connect");
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce))
		return -1;
	base64(nonce, sizeof(nonce), key);
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		     path, host, port, key);
	if (write(fd, req, (size_t)n) != n) {
		perror("nlb_ws_reader: write");
		return -1;
	}
	for (;;) {
		ssize_t got;

		buf_reserve(rx, READ_CHUNK + 1);
		got = read(fd, rx->p + rx->len, READ_CHUNK);
		if (got <= 0) {
			fprintf(stderr, "nlb_ws_reader: connection closed during the handshake\n");
			return -1;
		}
		rx->len += (size_t)got;
		rx->p[rx->len] = 0;
		hdr_end = strstr((char *)rx->p, "\r\n\r\n");
		if (hdr_end)
			break;
		if (rx->len > 16384) {
			fprintf(stderr, "nlb_ws_reader: handshake answer too long\n");
			return -1;
		}
	}
	*hdr_end = 0;
	if (strncmp((char *)rx->p, "HTTP/1.1 101", 12)) {
		fprintf(stderr, "nlb_ws_reader: handshake refused: %.200s\n", (char *)rx->p);
		return -1;
	}
	snprintf(concat, sizeof(concat), "%s%s", key, WS_GUID);
	sha1((unsigned char *)concat, strlen(concat), digest);
	base64(digest, sizeof(digest), want);
	h = strcasestr((char *)rx->p, "\r\nSec-WebSocket-Accept:");
	if (!h || sscanf(h + 23, " %31[A-Za-z0-9+/=]", accept) != 1 || strcmp(accept, want)) {
		fprintf(stderr, "nlb_ws_reader: bad Sec-WebSocket-Accept (want %s)\n", want);
		return -1;
	}
	n = (int)(hdr_end + 4 - (char *)rx->p);
	memmove(rx->p, rx->p + n, rx->len - (size_t)n);
	rx->len -= (size_t)n;
	return fd;
}

int main(int argc, char **argv)
{
	const char *url = NULL;
	unsigned long idle_ms = 1500;
	double max_seconds = 30.0;
	struct buf rx = { 0 };
	struct pollfd pf[2];
	uint64_t start, t0, now;
	int opt, stdin_open = 1;

	while ((opt = getopt(argc, argv, "u:n:t:i:L")) != -1) {
		switch (opt) {
		case 'u': url = optarg; break;
		case 'n': st.expect = strtoul(optarg, NULL, 0); break;
		case 't': max_seconds = strtod(optarg, NULL); break;
		case 'i': idle_ms = strtoul(optarg, NULL, 0); break;
		case 'L': st.record_latency = 1; break;
		default: usage();
		}
	}
	if (!url || !st.expect)
		usage();
	if (st.record_latency) {
		st.lat_cap = st.expect < 4000000 ? st.expect : 4000000;
		st.lat = malloc(st.lat_cap * sizeof(*st.lat));
		if (!st.lat)
			return 1;
	}
	t0 = nlb_now_ns();
	st.fd = ws_connect(url, &rx);
	st.connected = st.fd >= 0;
	printf("{\"ready\":true,\"connected\":%d,\"failed\":%d,\"connectMs\":%.1f}\n", st.connected,
	       !st.connected, (nlb_now_ns() - t0) / 1e6);
	fflush(stdout);
	if (!st.connected)
		finish("connect");

	start = nlb_now_ns();
	if (rx.len) {
		size_t used = on_bytes(rx.p, rx.len, start);

		memmove(rx.p, rx.p + used, rx.len - used);
		rx.len -= used;
	}
	pf[0] = (struct pollfd){ .fd = st.fd, .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = 0, .events = POLLIN };
	for (;;) {
		int n = poll(pf, stdin_open ? 2 : 1, 20);

		if (n < 0 && errno != EINTR) {
			perror("nlb_ws_reader: poll");
			finish("error");
		}
		if (n > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t got;

			buf_reserve(&rx, READ_CHUNK);
			got = read(st.fd, rx.p + rx.len, READ_CHUNK);
			now = nlb_now_ns();
			if (got == 0)
				finish("eof");
			if (got < 0 && errno != EINTR && errno != EAGAIN) {
				st.errors++;
				finish("error");
			}
			if (got > 0) {
				size_t used;

				rx.len += (size_t)got;
				used = on_bytes(rx.p, rx.len, now);
				memmove(rx.p, rx.p + used, rx.len - used);
				rx.len -= used;
			}
		}
		if (stdin_open && n > 0 && (pf[1].revents & (POLLIN | POLLHUP))) {
			char line[256];

			if (!fgets(line, sizeof(line), stdin))
				stdin_open = 0;
			else if (strstr(line, "report"))
				finish("report");
		}
		now = nlb_now_ns();
		if (st.first_ns && now - st.last_ns > idle_ms * 1000000ull)
			finish("idle");
		if (now - start > (uint64_t)(max_seconds * 1e9))
			finish("timeout");
	}
}
