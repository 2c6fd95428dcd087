// SPDX-License-Identifier: GPL-2.0
/*
 * nlb_ws_reader: WebSocket clients in C, so that a bridge's latency and
 * fan-out capacity can be read without the Node client's own wake-up and
 * parse cost (issue 17). It speaks the same JSON lines as
 * bench/agents/ws_clients.ts (ready, probed, result), so the runner treats
 * it as a client process.
 *
 *   nlb_ws_reader -u ws://127.0.0.1:PORT/PATH -n EXPECT [-k CLIENTS] [-t SECONDS] [-i IDLE_MS] [-L]
 *   nlb_ws_reader -u ws://127.0.0.1:PORT/PATH -R [-k CLIENTS]
 *
 * -R (the fan-out ramp) keeps the clients open between attempts and takes
 * commands on stdin, one per line:
 *   reset ID N   zero every count; print {"done":ID} once every client has N
 *   report ID    print {"report":{...}}: min/max per client, out-of-order, closes
 *   exit
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
 * Without -R a line on stdin (the runner's {"cmd":"report"}) prints the
 * result now.
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
#include <sys/epoll.h>
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

struct conn {
	int fd;
	int open, probed, close_code;
	uint64_t received;
	int64_t last_index;	/* the sender's index of the last message, for order */
	struct buf rx;		/* bytes not yet a whole frame */
	struct buf msg;		/* a fragmented message, joined */
};

static struct {
	struct conn *c;
	unsigned long k;
	unsigned long expect;
	int ramp, record_latency;
	uint64_t *lat;
	size_t lat_n, lat_cap;
	uint64_t frames, received, errors, disorder;
	uint64_t first_ns, last_ns;
	unsigned long connected, probed, done, open;
	long ramp_id;
	int done_told;
	unsigned long closes[5000];	/* by close code (codes past 4999 count as 4999) */
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

static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void min_max(uint64_t *min, uint64_t *max)
{
	unsigned long i;

	*min = UINT64_MAX;
	*max = 0;
	for (i = 0; i < st.k; i++) {
		if (st.c[i].received < *min)
			*min = st.c[i].received;
		if (st.c[i].received > *max)
			*max = st.c[i].received;
	}
	if (!st.k)
		*min = 0;
}

static void print_closes(void)
{
	int code, first = 1;

	printf("\"closes\":{");
	for (code = 0; code < 5000; code++) {
		if (!st.closes[code])
			continue;
		printf("%s\"%d\":%lu", first ? "" : ",", code, st.closes[code]);
		first = 0;
	}
	printf("}");
}

static void finish(const char *reason)
{
	double secs = st.last_ns > st.first_ns ? (st.last_ns - st.first_ns) / 1e9 : 0;
	uint64_t min, max;

	min_max(&min, &max);
	printf("{\"result\":{\"reason\":\"%s\",\"client\":\"c\",\"clients\":%lu,\"connected\":%lu,\"failed\":%lu,"
	       "\"frames\":%" PRIu64 ",\"received\":%" PRIu64 ",\"minPerClient\":%" PRIu64
	       ",\"maxPerClient\":%" PRIu64 ",\"seconds\":%.6f,\"rate\":%.1f,\"cpuSeconds\":%.6f,"
	       "\"disorder\":%" PRIu64 ",\"errors\":%" PRIu64 ",",
	       reason, st.k, st.connected, st.k - st.connected, st.frames, st.received, min, max,
	       secs, secs > 0 ? st.received / secs : 0.0, cpu_seconds(), st.disorder, st.errors);
	print_closes();
	if (st.record_latency) {
		qsort(st.lat, st.lat_n, sizeof(*st.lat), cmp_u64);
		printf(",\"latency\":{\"n\":%zu,\"p50_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f}",
		       st.lat_n, pct(0.50) / 1e3, pct(0.99) / 1e3, st.lat_n ? st.lat[st.lat_n - 1] / 1e3 : 0.0);
	}
	printf("}}\n");
	fflush(stdout);
	exit(0);
}

static void report(long id)
{
	uint64_t min, max;

	min_max(&min, &max);
	printf("{\"report\":{\"id\":%ld,\"clients\":%lu,\"open\":%lu,\"min\":%" PRIu64 ",\"max\":%" PRIu64
	       ",\"total\":%" PRIu64 ",\"disorder\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"cpuSeconds\":%.6f,",
	       id, st.k, st.open, min, max, st.received, st.disorder, st.errors, cpu_seconds());
	print_closes();
	printf("}}\n");
	fflush(stdout);
}

/* A client's frames are masked (RFC 6455 §5.3); the key may be anything. */
static void send_frame(struct conn *c, int opcode, const unsigned char *payload, size_t len)
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
	if (write(c->fd, f, 6 + len) < 0)
		st.errors++;
}

static void conn_closed(struct conn *c, int code)
{
	if (!c->open)
		return;
	c->open = 0;
	st.open--;
	st.closes[code < 0 ? 0 : code > 4999 ? 4999 : code]++;
	close(c->fd);
	if (!st.ramp && st.open == 0)
		finish(code == 1006 ? "eof" : "closed");
}

/* Every bench payload in a message; recv_ns is when its last byte was read. */
static void on_message(struct conn *c, const unsigned char *p, size_t len, uint64_t recv_ns)
{
	const unsigned char *end = p + len, *at = p;
	uint64_t n = 0;

	while ((at = memmem(at, (size_t)(end - at), "NLB", 3)) != NULL) {
		uint64_t index, send_ns;

		if ((size_t)(end - at) < NLB_PAYLOAD_LEN)
			break;
		if (at[3] == '0' && !memcmp(at, NLB_PROBE_MAGIC, 4)) {
			if (!c->probed) {
				c->probed = 1;
				if (++st.probed == st.k) {
					printf("{\"probed\":true}\n");
					fflush(stdout);
				}
			}
			at += NLB_PAYLOAD_LEN;
			continue;
		}
		if (nlb_get_payload((const char *)at, NLB_PAYLOAD_LEN, &index, &send_ns)) {
			at += 3;
			continue;
		}
		n++;
		if ((int64_t)index <= c->last_index)
			st.disorder++;
		c->last_index = (int64_t)index;
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
	if (c->received < st.expect && c->received + n >= st.expect)
		st.done++;
	c->received += n;
	if (st.done >= st.k) {
		if (!st.ramp)
			finish("complete");
		if (!st.done_told) {
			st.done_told = 1;
			printf("{\"done\":%ld}\n", st.ramp_id);
			fflush(stdout);
		}
	}
}

/* Parses whole frames from in; returns the bytes consumed. */
static size_t on_bytes(struct conn *c, unsigned char *in, size_t len, uint64_t recv_ns)
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
			st.errors++;
			conn_closed(c, 1002);
			return len;
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
			if (fin && c->msg.len == 0) {
				on_message(c, payload, plen, recv_ns);
			} else {
				buf_append(&c->msg, payload, plen);
				if (fin) {
					on_message(c, c->msg.p, c->msg.len, recv_ns);
					c->msg.len = 0;
				}
			}
			break;
		case 0x8:	/* close: echo its code */
			send_frame(c, 0x8, payload, plen >= 2 ? 2 : 0);
			conn_closed(c, plen >= 2 ? (payload[0] << 8 | payload[1]) : 1005);
			return len;
		case 0x9:	/* ping */
			send_frame(c, 0xA, payload, plen);
			break;
		default:	/* pong and reserved opcodes: nothing to read */
			break;
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: nlb_ws_reader -u ws://IPV4:PORT/PATH (-n EXPECT | -R) [-k CLIENTS] [-t SECONDS] [-i IDLE_MS] [-L]\n");
	exit(2);
}

struct target {
	struct sockaddr_in sa;
	char host[64], path[1024];
	unsigned int port;
};

static void parse_url(const char *url, struct target *t)
{
	memset(t, 0, sizeof(*t));
	t->sa.sin_family = AF_INET;
	if (sscanf(url, "ws://%63[0-9.]:%u%1023s", t->host, &t->port, t->path) != 3 || t->path[0] != '/')
		usage();
	if (inet_pton(AF_INET, t->host, &t->sa.sin_addr) != 1)
		usage();
	t->sa.sin_port = htons((uint16_t)t->port);
}

/* Connects and sends the opening request; key receives the nonce sent. */
static int ws_open(const struct target *t, char key[32])
{
	unsigned char nonce[16];
	char req[1400];
	int fd, one = 1, n;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)&t->sa, sizeof(t->sa)) < 0) {
		perror("nlb_ws_reader: connect");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce)) {
		close(fd);
		return -1;
	}
	base64(nonce, sizeof(nonce), key);
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		     t->path, t->host, t->port, key);
	if (write(fd, req, (size_t)n) != n) {
		perror("nlb_ws_reader: write");
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads the answer to ws_open's request; leftover frame bytes stay in rx. */
static int ws_accept(int fd, const char *key, struct buf *rx)
{
	char accept[32], want[32], concat[128];
	unsigned char digest[20];
	char *hdr_end, *h;
	size_t n;

	for (;;) {
		ssize_t got;

		buf_reserve(rx, 4097);
		got = read(fd, rx->p + rx->len, 4096);
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
	snprintf(concat, sizeof(concat), "%.24s%s", key, WS_GUID);
	sha1((unsigned char *)concat, strlen(concat), digest);
	base64(digest, sizeof(digest), want);
	h = strcasestr((char *)rx->p, "\r\nSec-WebSocket-Accept:");
	if (!h || sscanf(h + 23, " %31[A-Za-z0-9+/=]", accept) != 1 || strcmp(accept, want)) {
		fprintf(stderr, "nlb_ws_reader: bad Sec-WebSocket-Accept (want %s)\n", want);
		return -1;
	}
	n = (size_t)(hdr_end + 4 - (char *)rx->p);
	memmove(rx->p, rx->p + n, rx->len - n);
	rx->len -= n;
	return 0;
}

/* A few hundred at a time: more pending connects than the listen backlog would wait for SYN retries. */
#define CONNECT_WAVE 100

static void connect_all(const struct target *t, int ep)
{
	static char keys[CONNECT_WAVE][32];
	unsigned long i, j;

	for (i = 0; i < st.k; i += CONNECT_WAVE) {
		unsigned long end = i + CONNECT_WAVE < st.k ? i + CONNECT_WAVE : st.k;

		for (j = i; j < end; j++)
			st.c[j].fd = ws_open(t, keys[j - i]);
		for (j = i; j < end; j++) {
			struct conn *c = &st.c[j];
			struct epoll_event ev = { .events = EPOLLIN, .data.u64 = j };

			c->last_index = -1;
			if (c->fd < 0)
				continue;
			if (ws_accept(c->fd, keys[j - i], &c->rx)) {
				close(c->fd);
				c->fd = -1;
				continue;
			}
			c->open = 1;
			st.connected++;
			st.open++;
			if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
				perror("nlb_ws_reader: epoll_ctl");
				exit(1);
			}
		}
	}
}

static void on_readable(struct conn *c, uint64_t now)
{
	ssize_t got;
	size_t used;

	buf_reserve(&c->rx, READ_CHUNK);
	got = read(c->fd, c->rx.p + c->rx.len, READ_CHUNK);
	if (got == 0) {
		conn_closed(c, 1006);
		return;
	}
	if (got < 0) {
		if (errno != EINTR && errno != EAGAIN) {
			st.errors++;
			conn_closed(c, 1006);
		}
		return;
	}
	c->rx.len += (size_t)got;
	used = on_bytes(c, c->rx.p, c->rx.len, now);
	if (!c->open)
		return;
	memmove(c->rx.p, c->rx.p + used, c->rx.len - used);
	c->rx.len -= used;
}

static void on_command(const char *line)
{
	long id;
	unsigned long n;
	unsigned long i;

	if (!st.ramp) {
		if (strstr(line, "report"))
			finish("report");
		return;
	}
	if (sscanf(line, "reset %ld %lu", &id, &n) == 2) {
		for (i = 0; i < st.k; i++) {
			st.c[i].received = 0;
			st.c[i].last_index = -1;
		}
		st.received = st.disorder = st.done = 0;
		memset(st.closes, 0, sizeof(st.closes));
		st.expect = n;
		st.ramp_id = id;
		st.done_told = 0;
		printf("{\"reset\":%ld}\n", id);
		fflush(stdout);
	} else if (sscanf(line, "report %ld", &id) == 1) {
		report(id);
	} else if (!strncmp(line, "exit", 4)) {
		exit(0);
	}
}

int main(int argc, char **argv)
{
	const char *url = NULL;
	unsigned long idle_ms = 1500;
	double max_seconds = 30.0;
	struct epoll_event evs[256];
	struct target t;
	struct rlimit rl;
	uint64_t start, t0, now;
	unsigned long i;
	static char cmd[4096];
	size_t cmd_len = 0;
	int opt, ep;

	st.k = 1;
	while ((opt = getopt(argc, argv, "u:n:k:t:i:LR")) != -1) {
		switch (opt) {
		case 'u': url = optarg; break;
		case 'n': st.expect = strtoul(optarg, NULL, 0); break;
		case 'k': st.k = strtoul(optarg, NULL, 0); break;
		case 't': max_seconds = strtod(optarg, NULL); break;
		case 'i': idle_ms = strtoul(optarg, NULL, 0); break;
		case 'L': st.record_latency = 1; break;
		case 'R': st.ramp = 1; break;
		default: usage();
		}
	}
	if (!url || (!st.expect && !st.ramp) || st.k == 0 || st.k > 100000)
		usage();
	if (st.ramp)
		st.expect = UINT64_MAX;
	parse_url(url, &t);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < st.k + 64) {
		rl.rlim_cur = rl.rlim_max < st.k + 64 ? rl.rlim_max : st.k + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (st.record_latency) {
		st.lat_cap = st.expect * st.k < 4000000 ? st.expect * st.k : 4000000;
		st.lat = malloc(st.lat_cap * sizeof(*st.lat));
		if (!st.lat)
			return 1;
	}
	st.c = calloc(st.k, sizeof(*st.c));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!st.c || ep < 0)
		return 1;
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };

		/* A runner without a pipe on stdin gives no commands. */
		epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
	}
	t0 = nlb_now_ns();
	connect_all(&t, ep);
	printf("{\"ready\":true,\"connected\":%lu,\"failed\":%lu,\"connectMs\":%.1f}\n", st.connected,
	       st.k - st.connected, (nlb_now_ns() - t0) / 1e6);
	fflush(stdout);
	if (st.connected < st.k && !st.ramp)
		finish("connect");

	start = nlb_now_ns();
	for (i = 0; i < st.k; i++) {
		struct conn *c = &st.c[i];

		if (c->open && c->rx.len) {
			size_t used = on_bytes(c, c->rx.p, c->rx.len, start);

			if (c->open) {
				memmove(c->rx.p, c->rx.p + used, c->rx.len - used);
				c->rx.len -= used;
			}
		}
	}
	for (;;) {
		int n = epoll_wait(ep, evs, 256, 20), e;

		now = nlb_now_ns();
		if (n < 0 && errno != EINTR) {
			perror("nlb_ws_reader: epoll_wait");
			finish("error");
		}
		for (e = 0; e < n; e++) {
			if (evs[e].data.u64 == UINT64_MAX) {
				/* Lines by hand: stdio would buffer a second line where epoll cannot see it. */
				ssize_t got = read(0, cmd + cmd_len, sizeof(cmd) - 1 - cmd_len);
				char *nl;

				if (got <= 0) {
					epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
					if (st.ramp)
						exit(0);
					continue;
				}
				cmd_len += (size_t)got;
				cmd[cmd_len] = 0;
				while ((nl = strchr(cmd, '\n')) != NULL) {
					*nl = 0;
					on_command(cmd);
					cmd_len -= (size_t)(nl + 1 - cmd);
					memmove(cmd, nl + 1, cmd_len + 1);
				}
				if (cmd_len == sizeof(cmd) - 1)
					cmd_len = 0;
				continue;
			}
			if (st.c[evs[e].data.u64].open)
				on_readable(&st.c[evs[e].data.u64], now);
		}
		if (st.ramp)
			continue;
		now = nlb_now_ns();
		if (st.first_ns && now - st.last_ns > idle_ms * 1000000ull)
			finish("idle");
		if (now - start > (uint64_t)(max_seconds * 1e9))
			finish("timeout");
	}
}
