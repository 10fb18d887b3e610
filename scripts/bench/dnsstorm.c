// SPDX-License-Identifier: GPL-2.0-only
// The dns benchmark's load: a DNS query storm over UDP to one server, each
// query a distinct name (q<n>.storm.example.test, type A), up to WINDOW
// queries in flight on one connected socket (as a busy resolver client or a
// tunnel would send them). Prints one JSON line: queries sent, answers
// received, seconds, answers per second. RATE > 0 paces the sends to that
// many queries per second (the steady load of a busy host).
//
//   dnsstorm SERVER_IPV4 COUNT [WINDOW] [RATE]
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static size_t query(unsigned char *b, unsigned id, unsigned long n)
{
	char name[64];
	size_t off = 12;
	memset(b, 0, 12);
	b[0] = id >> 8; b[1] = id & 0xff; b[2] = 0x01; b[5] = 1;
	snprintf(name, sizeof name, "q%lu.storm.example.test", n);
	for (char *label = strtok(name, "."); label != NULL; label = strtok(NULL, ".")) {
		size_t len = strlen(label);
		b[off++] = (unsigned char)len;
		memcpy(b + off, label, len);
		off += len;
	}
	b[off++] = 0;
	b[off++] = 0; b[off++] = 1; // A
	b[off++] = 0; b[off++] = 1; // IN
	return off;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 3) { fprintf(stderr, "usage: dnsstorm SERVER_IPV4 COUNT [WINDOW] [RATE]\n"); return 2; }
	unsigned long count = strtoul(argv[2], NULL, 10);
	unsigned window = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 16;
	double rate = argc > 4 ? strtod(argv[4], NULL) : 0;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53) };
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[1]); return 2; }
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("socket"); return 1; }
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	unsigned char buf[512];
	unsigned long sent = 0, answered = 0;
	unsigned inflight = 0;
	double t0 = now();
	while (sent < count || inflight > 0) {
		if (rate > 0 && inflight == 0 && sent < count) {
			double due = t0 + sent / rate - now();
			if (due > 0) {
				struct timespec ts = { .tv_sec = (time_t)due, .tv_nsec = (long)((due - (time_t)due) * 1e9) };
				nanosleep(&ts, NULL);
			}
		}
		while (sent < count && inflight < window && (rate <= 0 || sent < rate * (now() - t0) + 1)) {
			size_t len = query(buf, (unsigned)(sent & 0xffff), sent);
			if (send(fd, buf, len, 0) < 0) { perror("send"); return 1; }
			sent++;
			inflight++;
		}
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) { inflight = 0; continue; } // lost: refill the window
			perror("recv");
			return 1;
		}
		answered++;
		inflight--;
	}
	double secs = now() - t0;
	printf("{\"queries\":%lu,\"answered\":%lu,\"seconds\":%.6f,\"rate\":%.1f}\n", sent, answered, secs, answered / secs);
	return 0;
}
