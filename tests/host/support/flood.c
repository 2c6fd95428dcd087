/*
 * flood: send N netlink messages as fast as possible on NETLINK_USERSOCK and
 * count what the kernel accepted. Built by the host tests into .cache/.
 *
 *   flood COUNT PORT GROUPS [PAYLOAD_BYTES [TAG]]
 *
 * Each datagram is one nlmsghdr (type 0x10, nlmsg_pid = TAG, nlmsg_seq = i)
 * plus PAYLOAD_BYTES of filler. Sends block (no MSG_DONTWAIT): a broadcast
 * never blocks, a unicast waits for room, so "sent" is exact either way.
 * A send with GROUPS != 0 and PORT == 0 broadcasts and then fails with
 * ECONNREFUSED (no kernel socket on USERSOCK): the broadcast went out, so it
 * counts as sent. Prints one JSON line.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s COUNT PORT GROUPS [PAYLOAD_BYTES [TAG]]\n", argv[0]);
		return 2;
	}
	unsigned long count = strtoul(argv[1], NULL, 0);
	unsigned int port = (unsigned int)strtoul(argv[2], NULL, 0);
	unsigned int groups = (unsigned int)strtoul(argv[3], NULL, 0);
	size_t payload = argc > 4 ? strtoul(argv[4], NULL, 0) : 0;
	unsigned int tag = argc > 5 ? (unsigned int)strtoul(argv[5], NULL, 0) : 0;

	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_USERSOCK);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	struct sockaddr_nl self = { .nl_family = AF_NETLINK };
	if (bind(fd, (struct sockaddr *)&self, sizeof(self)) < 0) {
		perror("bind");
		return 1;
	}

	size_t len = NLMSG_LENGTH(payload);
	char *buf = calloc(1, NLMSG_ALIGN(len));
	if (!buf) {
		perror("calloc");
		return 1;
	}
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	nlh->nlmsg_len = (unsigned int)len;
	nlh->nlmsg_type = 0x10;
	nlh->nlmsg_pid = tag;
	memset(NLMSG_DATA(nlh), 0xab, payload);

	struct sockaddr_nl dst = { .nl_family = AF_NETLINK, .nl_pid = port, .nl_groups = groups };
	unsigned long sent = 0, failed = 0;
	int last_errno = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned long i = 0; i < count; i++) {
		nlh->nlmsg_seq = (unsigned int)i;
		ssize_t n;
		do {
			n = sendto(fd, buf, len, 0, (struct sockaddr *)&dst, sizeof(dst));
		} while (n < 0 && errno == EINTR);
		if (n >= 0 || (errno == ECONNREFUSED && groups != 0 && port == 0)) {
			sent++;
		} else {
			failed++;
			last_errno = errno;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("{\"sent\":%lu,\"failed\":%lu,\"lastErrno\":%d,\"seconds\":%.6f}\n",
	       sent, failed, last_errno, secs);
	free(buf);
	close(fd);
	return failed ? 1 : 0;
}
