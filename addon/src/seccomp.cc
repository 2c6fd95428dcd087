// restrictNetlink(protocols): an in-process seccomp filter that leaves a
// process holding CAP_NET_ADMIN able to open netlink sockets of the given
// protocols only, and closes the other ways that capability reaches the
// network configuration through a socket (addon/seccomp.ts and
// daemon/README.md list what is and is not contained).
//
// Classic BPF, installed with SECCOMP_FILTER_FLAG_TSYNC so every thread of
// the process gets it at once (libuv's pool, V8's platform workers, worker
// threads), and inherited by every thread and child created later. A filter
// cannot be removed or widened: tests run it in child processes.

#include <napi.h>
#include <uv.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <dirent.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#if defined(__x86_64__)
#define NLB_SECCOMP_ARCH AUDIT_ARCH_X86_64
#define NLB_SECCOMP_ARCH_NAME "x86_64"
#elif defined(__aarch64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NLB_SECCOMP_ARCH AUDIT_ARCH_AARCH64
#define NLB_SECCOMP_ARCH_NAME "aarch64"
#endif

namespace {

// Netlink protocol numbers are 0..MAX_LINKS-1 (net/netlink/af_netlink.h).
constexpr uint32_t kMaxLinks = 32;

// Same shape as the errors of netlink_socket.cc (code, errno, syscall).
Napi::Error SeccompError(Napi::Env env, int err, const char* syscall, const std::string& message) {
  const char* name = uv_err_name(-err);
  std::string code = name != nullptr && name[0] == 'E' ? name : "ERRNO_" + std::to_string(err);
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

std::string ProtocolList(uint32_t mask) {
  std::string s;
  for (uint32_t p = 0; p < kMaxLinks; ++p) {
    if ((mask & (1u << p)) == 0) continue;
    if (!s.empty()) s += ",";
    s += std::to_string(p);
  }
  return s.empty() ? "none" : s;
}

Napi::Array ProtocolArray(Napi::Env env, uint32_t mask) {
  Napi::Array a = Napi::Array::New(env);
  uint32_t n = 0;
  for (uint32_t p = 0; p < kMaxLinks; ++p)
    if (mask & (1u << p)) a.Set(n++, Napi::Number::New(env, p));
  return a;
}

#ifdef NLB_SECCOMP_ARCH

// The low 32 bits of syscall argument i. Every argument looked at here is an
// int or unsigned int in the kernel's prototype (the syscall wrappers
// truncate the register), so the low half is all the kernel sees.
constexpr uint32_t ArgLo(int i) {
  return static_cast<uint32_t>(offsetof(seccomp_data, args) + 8 * i +
                               (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? 0 : 4));
}

constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
constexpr uint32_t kDeny = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);

// A fixed-size program, built without allocating: a failed allocation here
// would abort the process (the addon is built without exceptions).
class Program {
 public:
  void Load(uint32_t offset) { Put(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset)); }
  void And(uint32_t k) { Put(BPF_STMT(BPF_ALU | BPF_AND | BPF_K, k)); }
  void Ret(uint32_t action) { Put(BPF_STMT(BPF_RET | BPF_K, action)); }
  // if (A == k) return action;
  void RetIfEq(uint32_t k, uint32_t action) {
    Put(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1));
    Ret(action);
  }
  // if (A != k) return action;
  void RetIfNe(uint32_t k, uint32_t action) {
    Put(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 1, 0));
    Ret(action);
  }
  // if (A >= k) return action;
  void RetIfGe(uint32_t k, uint32_t action) {
    Put(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, k, 0, 1));
    Ret(action);
  }
  // if (A == k) { block } -- the block must end in a return, so A (the value
  // compared) is intact after it for the next comparison.
  size_t BeginIfEq(uint32_t k) {
    Put(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 0));
    return n_ - 1;
  }
  void EndIf(size_t at) {
    size_t skip = n_ - at - 1;
    if (skip > 255) overflow_ = true;
    else if (at < kCapacity) ins_[at].jf = static_cast<uint8_t>(skip);
  }
  bool ok() const { return !overflow_; }
  sock_fprog prog() { return sock_fprog{static_cast<unsigned short>(n_), ins_}; }

 private:
  void Put(sock_filter f) {
    if (n_ >= kCapacity) {
      overflow_ = true;
      return;
    }
    ins_[n_++] = f;
  }
  static constexpr size_t kCapacity = 512;  // 32 protocols need about 240
  sock_filter ins_[kCapacity];
  size_t n_ = 0;
  bool overflow_ = false;
};

// Socket ioctls (type 0x89, linux/sockios.h) allowed through: reads of
// interface facts and of a socket's own state, as glibc's if_nametoindex /
// if_indextoname and libuv use. Every other 0x89 command is refused: the
// SIOCS* setters, routes, ARP, bridges, bonding, VLANs, ethtool, MII,
// SIOCGSKNS and the device/protocol-private ranges -- several "G" commands
// (SIOCGIFBR, SIOCGIFVLAN, SIOCETHTOOL, SIOCWANDEV) also carry sub-commands
// that change things, so it is an allow list, not a deny list.
constexpr uint32_t kSocketIoctlReads[] = {
    0x8901, 0x8902, 0x8903, 0x8904,  // FIOSETOWN SIOCSPGRP FIOGETOWN SIOCGPGRP (SIGIO owner)
    0x8905,                          // SIOCATMARK
    0x8906, 0x8907,                  // SIOCGSTAMP_OLD SIOCGSTAMPNS_OLD
    0x80108906, 0x80108907,          // SIOCGSTAMP_NEW SIOCGSTAMPNS_NEW
    0x8910, 0x8912, 0x8913,          // SIOCGIFNAME SIOCGIFCONF SIOCGIFFLAGS
    0x8915, 0x8917, 0x8919, 0x891b,  // SIOCGIF{ADDR,DSTADDR,BRDADDR,NETMASK}
    0x891d, 0x8921, 0x8927,          // SIOCGIFMETRIC SIOCGIFMTU SIOCGIFHWADDR
    0x8933, 0x8942,                  // SIOCGIFINDEX SIOCGIFTXQLEN
};

// Options (set and get) that need CAP_NET_ADMIN and give it away: netfilter's
// socket interface (iptables, ip6tables, arptables, ebtables, IPVS all sit at
// SOL_IP >= 64, ip6tables at SOL_IPV6 64/65), SO_MARK (bypasses policy
// routing and firewall marks), TCP_REPAIR, IP(V6)_TRANSPARENT, and the
// per-socket IPsec policies IP(V6)_IPSEC_POLICY / IP(V6)_XFRM_POLICY.
void SockoptBlock(Program& p) {
  p.Load(ArgLo(1));  // level
  size_t ip = p.BeginIfEq(SOL_IP);
  p.Load(ArgLo(2));  // optname
  p.RetIfEq(IP_TRANSPARENT, kDeny);
  p.RetIfEq(IP_IPSEC_POLICY, kDeny);
  p.RetIfEq(IP_XFRM_POLICY, kDeny);
  p.RetIfGe(64, kDeny);
  p.Ret(kAllow);
  p.EndIf(ip);
  size_t ip6 = p.BeginIfEq(SOL_IPV6);
  p.Load(ArgLo(2));
  p.RetIfEq(34, kDeny);  // IPV6_IPSEC_POLICY
  p.RetIfEq(35, kDeny);  // IPV6_XFRM_POLICY
  p.RetIfEq(64, kDeny);  // IP6T_SO_SET_REPLACE / IP6T_SO_GET_INFO
  p.RetIfEq(65, kDeny);  // IP6T_SO_SET_ADD_COUNTERS / IP6T_SO_GET_ENTRIES
  p.RetIfEq(75, kDeny);  // IPV6_TRANSPARENT
  p.Ret(kAllow);
  p.EndIf(ip6);
  size_t sol = p.BeginIfEq(SOL_SOCKET);
  p.Load(ArgLo(2));
  p.RetIfEq(SO_MARK, kDeny);
  p.Ret(kAllow);
  p.EndIf(sol);
  size_t tcp = p.BeginIfEq(SOL_TCP);
  p.Load(ArgLo(2));
  p.RetIfEq(TCP_REPAIR, kDeny);
  p.Ret(kAllow);
  p.EndIf(tcp);
  p.Ret(kAllow);
}

bool BuildProgram(Program& p, uint32_t protocol_mask) {
  // Any other ABI -- i386 through int 0x80 (socketcall, whose arguments sit
  // in memory a filter cannot read), arm32 compat -- gets nothing.
  p.Load(offsetof(seccomp_data, arch));
  p.RetIfNe(NLB_SECCOMP_ARCH, kDeny);
  p.Load(offsetof(seccomp_data, nr));
#if defined(__x86_64__)
  // x32 syscalls carry __X32_SYSCALL_BIT and their own numbers.
  p.RetIfGe(0x40000000u, kDeny);
#endif

  size_t sock = p.BeginIfEq(__NR_socket);
  p.Load(ArgLo(0));  // domain
  p.RetIfEq(AF_UNIX, kAllow);
  p.RetIfEq(AF_INET, kAllow);
  p.RetIfEq(AF_INET6, kAllow);
  // AF_KEY (IPsec SAs, needs CAP_NET_ADMIN), AF_PACKET and the rest: the
  // families of the unit's RestrictAddressFamilies= only.
  size_t nl = p.BeginIfEq(AF_NETLINK);
  p.Load(ArgLo(2));  // protocol
  for (uint32_t proto = 0; proto < kMaxLinks; ++proto)
    if (protocol_mask & (1u << proto)) p.RetIfEq(proto, kAllow);
  p.Ret(kDeny);
  p.EndIf(nl);
  p.Ret(kDeny);
  p.EndIf(sock);

  size_t pair = p.BeginIfEq(__NR_socketpair);
  p.Load(ArgLo(0));
  p.RetIfEq(AF_UNIX, kAllow);
  p.Ret(kDeny);
  p.EndIf(pair);

  size_t ioctl = p.BeginIfEq(__NR_ioctl);
  p.Load(ArgLo(1));  // cmd
  p.And(0xff00);     // the ioctl type byte, whatever the direction/size bits
  p.RetIfEq(0x8b00, kDeny);  // wireless extensions (SIOCSIW* need CAP_NET_ADMIN)
  size_t sockios = p.BeginIfEq(0x8900);
  p.Load(ArgLo(1));
  for (uint32_t cmd : kSocketIoctlReads) p.RetIfEq(cmd, kAllow);
  p.Ret(kDeny);
  p.EndIf(sockios);
  p.Ret(kAllow);
  p.EndIf(ioctl);

  size_t set = p.BeginIfEq(__NR_setsockopt);
  SockoptBlock(p);
  p.EndIf(set);
  size_t get = p.BeginIfEq(__NR_getsockopt);
  SockoptBlock(p);
  p.EndIf(get);

  // setns: network namespaces only, for the sockets of --netns, which are
  // opened after this filter (a ?unicast=1 stream's own socket); the socket
  // opened there passes the socket() rule above all the same. Joining a
  // mount, user or pid namespace (nstype 0 means any) is refused.
  size_t ns = p.BeginIfEq(__NR_setns);
  p.Load(ArgLo(1));  // nstype
  p.RetIfEq(CLONE_NEWNET, kAllow);
  p.Ret(kDeny);
  p.EndIf(ns);

  // io_uring runs socket(), setsockopt() and friends in the kernel without
  // passing this filter; Node 20's libuv does not use it unless
  // UV_USE_IO_URING=1 (refused below). bpf: cgroup socket programs.
  // pidfd_getfd: another process's sockets.
  p.RetIfEq(__NR_io_uring_setup, kDeny);
  p.RetIfEq(__NR_io_uring_enter, kDeny);
  p.RetIfEq(__NR_io_uring_register, kDeny);
  p.RetIfEq(__NR_bpf, kDeny);
  p.RetIfEq(__NR_pidfd_getfd, kDeny);
  p.Ret(kAllow);
  return p.ok();
}

// True when the process has an io_uring open (libuv with UV_USE_IO_URING=1):
// its submissions would bypass the filter, and refusing io_uring_enter under
// libuv's feet would break its file system calls.
bool HasIoUring() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return false;
  bool found = false;
  char link[64];
  while (dirent* e = readdir(d)) {
    char path[sizeof "/proc/self/fd/" + sizeof e->d_name];
    std::snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n <= 0) continue;
    link[n] = '\0';
    if (std::strcmp(link, "anon_inode:[io_uring]") == 0) {
      found = true;
      break;
    }
  }
  closedir(d);
  return found;
}

#endif  // NLB_SECCOMP_ARCH

// One filter per process: threads share it, so the state is process-wide.
std::mutex g_mutex;
bool g_installed = false;
uint32_t g_mask = 0;

Napi::Object Result(Napi::Env env, uint32_t mask, bool already) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("protocols", ProtocolArray(env, mask));
#ifdef NLB_SECCOMP_ARCH
  o.Set("arch", Napi::String::New(env, NLB_SECCOMP_ARCH_NAME));
#endif
  o.Set("alreadyRestricted", Napi::Boolean::New(env, already));
  return o;
}

// restrictNetlink(protocols: number[]) ->
//   { protocols: number[], arch: string, alreadyRestricted: boolean }
Napi::Value RestrictNetlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, "The \"protocols\" argument must be an array of netlink protocol numbers")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array list = info[0].As<Napi::Array>();
  uint32_t mask = 0;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value v = list.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d < kMaxLinks) || d != static_cast<double>(static_cast<uint32_t>(d))) {
      Napi::TypeError::New(env, "The \"protocols\" argument must hold integers in 0..31 (element " +
                                    std::to_string(i) + ")")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    mask |= 1u << static_cast<uint32_t>(d);
  }

  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_installed) {
    if (mask == g_mask) return Result(env, mask, true);
    SeccompError(env, EALREADY, "seccomp",
                 "restrictNetlink: this process is already restricted to netlink protocols " +
                     ProtocolList(g_mask) + "; a filter cannot be widened, and a second one for " +
                     ProtocolList(mask) + " is refused")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }

#ifndef NLB_SECCOMP_ARCH
  SeccompError(env, EOPNOTSUPP, "seccomp",
               "restrictNetlink: no seccomp filter for this architecture (x86_64 and little-endian "
               "aarch64 only); socket() is not restricted")
      .ThrowAsJavaScriptException();
  return env.Undefined();
#else
  if (HasIoUring()) {
    SeccompError(env, EBUSY, "io_uring_setup",
                 "restrictNetlink: an io_uring is open in this process (libuv with UV_USE_IO_URING=1?); "
                 "its operations bypass seccomp, so the filter would not contain socket(): unset UV_USE_IO_URING")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  static Program program;  // 2 KiB, off the stack; only built under the lock
  program = Program();
  if (!BuildProgram(program, mask)) {
    SeccompError(env, E2BIG, "seccomp", "restrictNetlink: the filter program does not fit")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // Needed to install a filter without CAP_SYS_ADMIN; TSYNC sets it on the
  // other threads too. Only blocks gaining privileges through execve
  // (setuid, file capabilities): ambient capabilities are kept.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    int err = errno;
    SeccompError(env, err, "prctl",
                 std::string("restrictNetlink: prctl(PR_SET_NO_NEW_PRIVS): ") + std::strerror(err))
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  sock_fprog prog = program.prog();
  long rc = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
  if (rc != 0) {
    if (rc > 0) {
      // TSYNC names a thread that cannot take the filter (one with a
      // filter of its own that is not an ancestor of ours).
      SeccompError(env, ESRCH, "seccomp",
                   "restrictNetlink: thread " + std::to_string(rc) +
                       " has a seccomp filter of its own; nothing was installed")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int err = errno;
    std::string why = std::strerror(err);
    // systemd's SystemCallFilter=@system-service does not list seccomp.
    if (err == EPERM) why += " (is seccomp allowed by the unit's SystemCallFilter=?)";
    SeccompError(env, err, "seccomp", "restrictNetlink: seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): " + why)
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  g_installed = true;
  g_mask = mask;
  return Result(env, mask, false);
#endif
}

}  // namespace

extern "C" void NlbridgeRegisterSeccomp(Napi::Env env, Napi::Object exports) {
  exports.Set("restrictNetlink", Napi::Function::New(env, RestrictNetlink, "restrictNetlink"));
}
