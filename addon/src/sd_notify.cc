// sdNotify(state[, socketPath]): one datagram to systemd's notification
// socket (sd_notify(3)). Node has no unix datagram sockets, so the daemon's
// READY=1 / WATCHDOG=1 / STOPPING=1 go through here.

#include <napi.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

// Returns true when the whole state went out; false when no socket is set,
// the path does not fit sockaddr_un, or a syscall failed (errno is left for
// strace; a missing notification must never stop the caller).
bool Notify(const std::string& state, const char* path) {
  if (path == nullptr || path[0] == '\0') return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path, len);
  // "@name" is a Linux abstract socket: a leading NUL, no terminator.
  if (path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + (path[0] == '@' ? 0 : 1));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ssize_t n;
  do {
    n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), addr_len);
  } while (n < 0 && errno == EINTR);
  int saved = errno;
  close(fd);
  errno = saved;
  return n == static_cast<ssize_t>(state.size());
}

Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "The \"state\" argument must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string state = info[0].As<Napi::String>().Utf8Value();
  std::string path;
  const char* target = nullptr;
  if (info.Length() >= 2 && !info[1].IsUndefined()) {
    if (!info[1].IsString()) {
      Napi::TypeError::New(env, "The \"socketPath\" argument must be a string").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    path = info[1].As<Napi::String>().Utf8Value();
    target = path.c_str();
  } else {
    target = std::getenv("NOTIFY_SOCKET");
  }
  return Napi::Boolean::New(env, Notify(state, target));
}

}  // namespace

extern "C" void NlbridgeRegisterSdNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
}
