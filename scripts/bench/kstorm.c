// SPDX-License-Identifier: Apache-2.0
/*
 * Process and file storms for the kproc benchmark (scripts/bench/kproc.ts):
 *
 *   kstorm exec N        N times fork + execve("/bin/true") + waitpid
 *   kstorm write N DIR   N times openat(DIR/f, O_WRONLY|O_CREAT|O_TRUNC), write 1 byte, close
 *   kstorm read N FILE   N times openat(FILE, O_RDONLY), close
 *
 * Prints one JSON line: {"op":..,"count":..,"seconds":..,"rate":..}
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char path[4096];
	long n, i;
	double t0, s;

	if (argc < 3 || (strcmp(argv[1], "exec") != 0 && argc < 4)) {
		fprintf(stderr, "usage: kstorm exec N | write N DIR | read N FILE\n");
		return 2;
	}
	n = atol(argv[2]);
	if (strcmp(argv[1], "write") == 0)
		snprintf(path, sizeof(path), "%s/f", argv[3]);
	else if (strcmp(argv[1], "read") == 0)
		snprintf(path, sizeof(path), "%s", argv[3]);
	t0 = now();
	for (i = 0; i < n; i++) {
		if (strcmp(argv[1], "exec") == 0) {
			pid_t pid = fork();
			int st;

			if (pid == 0) {
				execl("/bin/true", "/bin/true", (char *)NULL);
				_exit(127);
			}
			if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				perror("exec storm");
				return 1;
			}
		} else {
			int write_ = strcmp(argv[1], "write") == 0;
			int fd = openat(AT_FDCWD, path, write_ ? O_WRONLY | O_CREAT | O_TRUNC : O_RDONLY, 0644);

			if (fd < 0 || (write_ && write(fd, "x", 1) != 1)) {
				perror(path);
				return 1;
			}
			close(fd);
		}
	}
	s = now() - t0;
	printf("{\"op\":\"%s\",\"count\":%ld,\"seconds\":%.6f,\"rate\":%.1f}\n", argv[1], n, s, n / s);
	return 0;
}
