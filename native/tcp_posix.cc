// Addresses of a socket, through the POSIX calls every platform shares
// (getsockname / getpeername); the kernel-specific readers live in
// tcp_linux.cc and tcp_bsd.cc.
#include "tcp_reader.h"

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <sys/socket.h>

namespace tcp_leak_agent {
namespace {

void Clear(Endpoint* out) {
  out->family = 0;
  out->port = 0;
  out->address[0] = '\0';
}

void ToEndpoint(const sockaddr_storage& address, Endpoint* out) {
  Clear(out);
  if (address.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &in->sin_addr, out->address, sizeof(out->address));
    out->port = ntohs(in->sin_port);
    out->family = 4;
  } else if (address.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &in6->sin6_addr, out->address, sizeof(out->address));
    out->port = ntohs(in6->sin6_port);
    out->family = 6;
  }
}

}  // namespace

int ReadEndpoints(int fd, Endpoint* local, Endpoint* remote) {
  sockaddr_storage address;
  socklen_t len = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &len) != 0) return errno;
  ToEndpoint(address, local);
  len = sizeof(address);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &len) != 0) {
    if (errno != ENOTCONN) return errno;
    Clear(remote);
    return 0;
  }
  ToEndpoint(address, remote);
  return 0;
}

}  // namespace tcp_leak_agent
