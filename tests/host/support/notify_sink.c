// notify_sink PATH: bind a unix datagram socket at PATH (a leading '@' = an
// abstract name) and print every datagram on one line, newlines shown as '|'.
// Stands in for systemd's NOTIFY_SOCKET in the daemon's lifecycle test.
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char buf[4096];
	socklen_t len;
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: notify_sink PATH\n");
		return 2;
	}
	memcpy(addr.sun_path, argv[1], strlen(argv[1]));
	len = offsetof(struct sockaddr_un, sun_path) + strlen(argv[1]);
	if (argv[1][0] == '@')
		addr.sun_path[0] = '\0';
	else
		len++;
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, len) < 0) {
		perror("notify_sink");
		return 1;
	}
	fprintf(stderr, "notify_sink: ready\n");
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

		if (n < 0)
			return 1;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n')
				buf[i] = '|';
		buf[n] = '\0';
		printf("%s\n", buf);
		fflush(stdout);
	}
}
