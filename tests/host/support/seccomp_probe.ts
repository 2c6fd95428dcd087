// A C probe for the seccomp tests: raw syscalls JavaScript cannot make
// (socket families, ioctls, socket options, setns, io_uring, the x32 and i386
// ABIs), one result line per probe named on the command line; and
// --exec-without-seccomp, which runs a command under an outer filter that
// refuses seccomp(2), as systemd's SystemCallFilter=@system-service does.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <linux/io_uring.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* "name value": 0 on success, else the errno; 1000+N killed by signal N. */
static void report(const char *name, long rc) { printf("%s %d\n", name, rc >= 0 ? 0 : errno); }
static int fd_or_report(const char *name, int domain, int type, int proto) {
  int fd = socket(domain, type, proto);
  if (fd < 0) report(name, -1);
  return fd;
}
static void sockopt(const char *name, int domain, int type, int level, int opt, const void *val, socklen_t len) {
  int fd = fd_or_report(name, domain, type, domain == AF_NETLINK ? 2 : 0);
  if (fd < 0) return;
  report(name, setsockopt(fd, level, opt, val, len));
  close(fd);
}
static void ifflags(const char *name, int domain, int set) {
  int fd = fd_or_report(name, domain, SOCK_DGRAM, 0);
  if (fd < 0) return;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  long rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
  if (rc == 0 && set) rc = ioctl(fd, SIOCSIFFLAGS, &ifr); /* the flags lo already has */
  report(name, rc);
  close(fd);
}
/* Runs argv[2..] under a filter refusing seccomp(2) with EPERM, as systemd's
   SystemCallFilter=@system-service does (no arch check: a test tool). */
static int exec_without_seccomp(char **argv) {
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_seccomp, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { sizeof f / sizeof f[0], f };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) { perror("prctl"); return 127; }
  execv(argv[0], argv);
  perror("execv");
  return 127;
}
int main(int argc, char **argv) {
  int one = 1;
  if (argc > 2 && !strcmp(argv[1], "--exec-without-seccomp")) return exec_without_seccomp(argv + 2);
  static char zeros[1024];
  for (int i = 1; i < argc; i++) {
    const char *n = argv[i];
    long rc = 0;
    int fd;
    if (!strcmp(n, "netlink_route")) { rc = fd = socket(AF_NETLINK, SOCK_RAW, 0); if (fd >= 0) close(fd); report(n, rc); }
    else if (!strcmp(n, "netlink_netfilter")) { rc = fd = socket(AF_NETLINK, SOCK_RAW, 12); if (fd >= 0) close(fd); report(n, rc); }
    else if (!strcmp(n, "netlink_usersock")) { rc = fd = socket(AF_NETLINK, SOCK_RAW, 2); if (fd >= 0) close(fd); report(n, rc); }
    else if (!strcmp(n, "af_key")) { rc = fd = socket(15 /* AF_KEY */, SOCK_RAW, 2 /* PF_KEY_V2 */); if (fd >= 0) close(fd); report(n, rc); }
    else if (!strcmp(n, "socketpair_unix")) { int sv[2]; rc = socketpair(AF_UNIX, SOCK_STREAM, 0, sv); if (rc == 0) { close(sv[0]); close(sv[1]); } report(n, rc); }
    else if (!strcmp(n, "siocsifflags_inet")) ifflags(n, AF_INET, 1);
    else if (!strcmp(n, "siocsifflags_unix")) ifflags(n, AF_UNIX, 1);
    else if (!strcmp(n, "siocgifflags")) ifflags(n, AF_INET, 0);
    else if (!strcmp(n, "siocgifindex")) report(n, if_nametoindex("lo") > 0 ? 0 : -1);
    else if (!strcmp(n, "fionbio")) { fd = socket(AF_INET, SOCK_DGRAM, 0); report(n, ioctl(fd, FIONBIO, &one)); close(fd); }
    else if (!strcmp(n, "ipt_set_replace")) sockopt(n, AF_INET, SOCK_DGRAM, SOL_IP, 64, zeros, sizeof zeros);
    else if (!strcmp(n, "ip6t_set_replace")) sockopt(n, AF_INET6, SOCK_DGRAM, SOL_IPV6, 64, zeros, sizeof zeros);
    else if (!strcmp(n, "so_mark")) sockopt(n, AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_MARK, &one, sizeof one);
    else if (!strcmp(n, "tcp_repair")) sockopt(n, AF_INET, SOCK_STREAM, SOL_TCP, TCP_REPAIR, &one, sizeof one);
    else if (!strcmp(n, "ip_xfrm_policy")) sockopt(n, AF_INET, SOCK_DGRAM, SOL_IP, IP_XFRM_POLICY, NULL, 0); /* clears the socket's policy */
    else if (!strcmp(n, "ip_transparent")) sockopt(n, AF_INET, SOCK_DGRAM, SOL_IP, IP_TRANSPARENT, &one, sizeof one);
    else if (!strcmp(n, "so_rcvbufforce")) { int big = 8 << 20; sockopt(n, AF_NETLINK, SOCK_RAW, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big); }
    else if (!strcmp(n, "ip_ttl")) { int ttl = 9; sockopt(n, AF_INET, SOCK_DGRAM, SOL_IP, IP_TTL, &ttl, sizeof ttl); }
    else if (!strcmp(n, "io_uring_setup")) { struct io_uring_params p; memset(&p, 0, sizeof p); rc = fd = syscall(__NR_io_uring_setup, 4, &p); if (fd >= 0) close(fd); report(n, rc); }
    else if (!strcmp(n, "setns_net")) { fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC); report(n, setns(fd, CLONE_NEWNET)); close(fd); }
    else if (!strcmp(n, "setns_uts")) { fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC); report(n, setns(fd, CLONE_NEWUTS)); close(fd); }
    else if (!strcmp(n, "setns_any")) { fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC); report(n, setns(fd, 0)); close(fd); }
    else if (!strcmp(n, "x32_getpid")) report(n, syscall(0x40000000 | 39));
    else if (!strcmp(n, "i386_getpid")) {
      /* int 0x80 from a 64-bit process: the i386 ABI (and its socketcall). */
      pid_t c = fork();
      if (c == 0) {
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "cc", "r8", "r9", "r10", "r11");
        _exit(ret == -EPERM ? 1 : ret > 0 ? 0 : 2);
      }
      int st;
      waitpid(c, &st, 0);
      if (WIFSIGNALED(st)) printf("%s %d\n", n, 1000 + WTERMSIG(st));
      else printf("%s %d\n", n, WEXITSTATUS(st) == 1 ? EPERM : WEXITSTATUS(st) == 0 ? 0 : ENOSYS);
    } else { printf("%s unknown\n", n); return 2; }
  }
  return 0;
}
`;

let built: string | null = null;

/** Compiles the probe once per process into a temp dir; returns its path. */
export function buildSeccompProbe(): string {
  if (built !== null) return built;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-seccomp-'));
  fs.writeFileSync(path.join(dir, 'probe.c'), PROBE_C);
  const out = path.join(dir, 'probe');
  execFileSync('cc', ['-O1', '-Wall', '-Werror', '-o', out, path.join(dir, 'probe.c')]);
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  built = out;
  return out;
}
