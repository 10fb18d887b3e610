// SPDX-License-Identifier: Apache-2.0
/*
 * Connection storm on loopback for the capture benchmark: a fixed number of
 * connect() calls, most to closed ports (answered by an RST with no socket:
 * tcp_send_reset + two state changes), every Nth to an open port served by a
 * listener in this process (a full handshake: inbound Open + Closes).
 *
 *   storm --count 200000 --open-every 50 --threads 1 --addr 127.0.0.1 [--sources N]
 *
 * --sources N binds each connect to one of N loopback source addresses
 * (127.1.0.1, 127.1.0.2, ... round robin), so with N × 500 closed ports no
 * two connections share a flow key: the unique-flow storm, which nothing
 * folds. Without it every connect comes from --addr, over 500 ports: the
 * repeated-flow storm.
 *
 * Prints one JSON line: {"connections":..,"refused":..,"opened":..,"seconds":..,"rate":..}
 * Loopback only: it refuses any address outside 127.0.0.0/8.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long count = 100000, open_every = 50;
static int threads = 1, closed_base = 47000, closed_span = 500, sources = 0;
static struct in_addr addr;
static int open_port;
static long refused_total, opened_total, failed_total;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *acceptor(void *arg)
{
	int lfd = *(int *)arg;

	for (;;) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		close(c);
	}
}

static void *worker(void *arg)
{
	long n = (long)arg, refused = 0, opened = 0, failed = 0;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = addr };

	for (long i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int to_open = open_every > 0 && i % open_every == 0;

		if (fd < 0) {
			failed++;
			continue;
		}
		/* RST on close, so the client side leaves no TIME_WAIT behind */
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (sources > 0) {
			/* source k in 1..sources: 127.1.(k / 254).(k % 254 + 1) */
			long k = (i / closed_span) % sources;
			struct sockaddr_in src = { .sin_family = AF_INET,
				.sin_addr.s_addr = htonl((127u << 24) | (1u << 16) | ((unsigned)(k / 254) << 8) | (unsigned)(k % 254 + 1)) };
			if (bind(fd, (struct sockaddr *)&src, sizeof(src))) {
				failed++;
				close(fd);
				continue;
			}
		}
		sa.sin_port = htons(to_open ? open_port : closed_base + (int)(i % closed_span));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			opened++;
		else if (errno == ECONNREFUSED)
			refused++;
		else
			failed++;
		close(fd);
	}
	pthread_mutex_lock(&mu);
	refused_total += refused;
	opened_total += opened;
	failed_total += failed;
	pthread_mutex_unlock(&mu);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *a = "127.0.0.1";
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct timespec t0, t1;
	pthread_t acc, tids[64];
	int lfd, one = 1;
	double secs;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--count")) count = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--open-every")) open_every = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--addr")) a = argv[i + 1];
		else if (!strcmp(argv[i], "--closed-base")) closed_base = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--sources")) sources = atoi(argv[i + 1]);
		else { fprintf(stderr, "storm: unknown option %s\n", argv[i]); return 2; }
	}
	if (threads < 1 || threads > 64 || count < 1 || sources < 0 || sources > 254 * 255) {
		fprintf(stderr, "storm: --threads must be 1..64, --count positive and --sources 0..64770\n");
		return 2;
	}
	if (inet_pton(AF_INET, a, &addr) != 1 || (ntohl(addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "storm: --addr must be an IPv4 loopback address (127.0.0.0/8), got %s\n", a);
		return 2;
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr = addr;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4096) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl)) {
		perror("storm: listener");
		return 1;
	}
	open_port = ntohs(sa.sin_port);
	pthread_create(&acc, NULL, acceptor, &lfd);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < threads; i++)
		pthread_create(&tids[i], NULL, worker, (void *)(count / threads));
	for (int i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("{\"connections\":%ld,\"refused\":%ld,\"opened\":%ld,\"failed\":%ld,\"seconds\":%.6f,\"rate\":%.1f,\"open_port\":%d}\n",
	       refused_total + opened_total + failed_total, refused_total, opened_total, failed_total, secs,
	       (refused_total + opened_total + failed_total) / secs, open_port);
	return 0;
}
