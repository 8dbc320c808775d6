// Linux: what the process holds beyond its tracked sockets. Descriptors are
// counted from /proc/self/fd with getdents64 (no per-entry syscalls, no
// strings); TIME_WAIT connections, which have no descriptor at all, come from
// a netlink sock_diag dump filtered by the kernel to that one state. See
// sock_diag(7).
#include "tcp_reader.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace tcp_leak_agent {

namespace {

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

constexpr int kTcpTimeWait = 6;  // TCP_TIME_WAIT in the kernel's numbering

// One dump request for one address family; the kernel answers with one
// inet_diag_msg per TIME_WAIT socket, over as many datagrams as it needs.
int DumpFamily(int family, const int32_t* ports, size_t port_count, void (*visit)(const TimeWaitEntry&, void*),
               void* context, int64_t* total) {
  const int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return errno;
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message;
  std::memset(&message, 0, sizeof(message));
  message.header.nlmsg_len = sizeof(message);
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.request.sdiag_family = static_cast<uint8_t>(family);
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = 1u << kTcpTimeWait;
  sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;
  if (sendto(nl, &message, sizeof(message), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    const int err = errno;
    close(nl);
    return err;
  }
  alignas(nlmsghdr) char buffer[32768];
  int err = 0;
  for (bool done = false; !done;) {
    const ssize_t got = recv(nl, buffer, sizeof(buffer), 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (got == 0) break;
    int remaining = static_cast<int>(got);
    for (nlmsghdr* header = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(header, remaining);
         header = NLMSG_NEXT(header, remaining)) {
      if (header->nlmsg_type == NLMSG_DONE) {
        done = true;
        break;
      }
      if (header->nlmsg_type == NLMSG_ERROR) {
        const auto* failure = static_cast<const nlmsgerr*>(NLMSG_DATA(header));
        err = failure->error < 0 ? -failure->error : EPROTO;
        done = true;
        break;
      }
      const auto* socket = static_cast<const inet_diag_msg*>(NLMSG_DATA(header));
      if (socket->idiag_state != kTcpTimeWait) continue;
      ++*total;
      const int local_port = ntohs(socket->id.idiag_sport);
      if (!std::binary_search(ports, ports + port_count, local_port)) continue;
      TimeWaitEntry entry;
      entry.local_port = local_port;
      entry.remote_port = ntohs(socket->id.idiag_dport);
      entry.remote.port = entry.remote_port;
      entry.remote.family = family == AF_INET ? 4 : 6;
      if (inet_ntop(family, socket->id.idiag_dst, entry.remote.address, sizeof(entry.remote.address)) == nullptr) {
        entry.remote.address[0] = '\0';
      }
      visit(entry, context);
    }
  }
  close(nl);
  return err;
}

}  // namespace

int CountDescriptors() {
  const int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -errno;
  alignas(LinuxDirent64) char buffer[16384];
  int count = 0;
  for (;;) {
    const long got = syscall(SYS_getdents64, dir, buffer, sizeof(buffer));
    if (got < 0) {
      const int err = errno;
      close(dir);
      return -err;
    }
    if (got == 0) break;
    for (long offset = 0; offset < got;) {
      const auto* entry = reinterpret_cast<const LinuxDirent64*>(buffer + offset);
      if (entry->d_name[0] != '.') count++;
      offset += entry->d_reclen;
    }
  }
  close(dir);
  return count - 1;  // the directory's own descriptor
}

int ListTimeWait(const int32_t* ports, size_t port_count, void (*visit)(const TimeWaitEntry&, void*), void* context,
                 int64_t* total) {
  *total = 0;
  if (int err = DumpFamily(AF_INET, ports, port_count, visit, context, total)) return err;
  return DumpFamily(AF_INET6, ports, port_count, visit, context, total);
}

}  // namespace tcp_leak_agent
