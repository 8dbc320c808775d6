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
#include <vector>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
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

// One port condition of the filter: 16 bytes of inet_diag bytecode.
constexpr size_t kConditionBytes = 4 * sizeof(inet_diag_bc_op);
// The filter travels in one netlink attribute (its length is 16 bits): beyond
// this many ports the dump goes unfiltered and the ports are matched here.
constexpr size_t kMaxConditions = 2000;

// inet_diag bytecode (see inet_diag_bc_run and inet_diag_bc_audit in the
// kernel) that accepts a socket whose local port is one of `local` or whose
// remote port is one of `remote`. Each condition is "port >= p and port <= p";
// conditions are joined as ss(8) joins "or": a JMP after each accepting one
// goes to the end (accept), and a failing one falls through to the next, the
// last one's failure jumping past the end (reject). Every jump target lies on
// the chain of "yes" jumps from the start, as the kernel's audit requires.
std::vector<inet_diag_bc_op> PortFilter(const int32_t* local, size_t local_count, const int32_t* remote,
                                        size_t remote_count) {
  const size_t conditions = local_count + remote_count;
  const size_t ops_per_condition = kConditionBytes / sizeof(inet_diag_bc_op);
  std::vector<inet_diag_bc_op> ops;
  ops.reserve(conditions * (ops_per_condition + 1));
  const size_t length = conditions * (kConditionBytes + sizeof(inet_diag_bc_op)) - sizeof(inet_diag_bc_op);
  for (size_t i = 0; i < conditions; i++) {
    const bool is_local = i < local_count;
    const uint16_t port = static_cast<uint16_t>(is_local ? local[i] : remote[i - local_count]);
    const uint8_t ge = is_local ? INET_DIAG_BC_S_GE : INET_DIAG_BC_D_GE;
    const uint8_t le = is_local ? INET_DIAG_BC_S_LE : INET_DIAG_BC_D_LE;
    // Failing either comparison skips the rest of this condition and the JMP after it.
    ops.push_back({ge, 8, static_cast<uint16_t>(kConditionBytes + 4)});
    ops.push_back({0, 0, port});
    ops.push_back({le, 8, static_cast<uint16_t>(kConditionBytes / 2 + 4)});
    ops.push_back({0, 0, port});
    if (i + 1 < conditions) {
      const size_t at = (i + 1) * (kConditionBytes + sizeof(inet_diag_bc_op)) - sizeof(inet_diag_bc_op);
      ops.push_back({INET_DIAG_BC_JMP, 4, static_cast<uint16_t>(length - at)});
    }
  }
  return ops;
}

bool Contains(const int32_t* sorted_ports, size_t count, int port) {
  return std::binary_search(sorted_ports, sorted_ports + count, port);
}

struct Ports {
  const int32_t* local;
  size_t local_count;
  const int32_t* remote;
  size_t remote_count;
};

// Which dump to ask the kernel for. The kernel walks its whole table of
// established and TIME_WAIT connections (both address families share it) for
// each dump, whatever the filter keeps: a dump per family walked it twice. The
// older request (TCPDIAG_GETSOCK, kept by the kernel for ss and older tools:
// inet_diag_dump_compat) asks for every family in one walk.
enum class DumpRequest { kEveryFamily, kIPv4, kIPv6 };

// One dump request; the kernel answers with one inet_diag_msg per TIME_WAIT
// socket that passes the filter, over as many datagrams as it needs. `answered`
// says whether the kernel accepted the request (an error before any answer
// means it did not: the caller can ask another way).
int Dump(DumpRequest kind, const Ports& ports, void (*visit)(const TimeWaitEntry&, void*), void* context, bool* answered) {
  *answered = false;
  const int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return errno;
  inet_diag_req_v2 request;
  std::memset(&request, 0, sizeof(request));
  request.sdiag_family = static_cast<uint8_t>(kind == DumpRequest::kIPv6 ? AF_INET6 : AF_INET);
  request.sdiag_protocol = IPPROTO_TCP;
  request.idiag_states = 1u << kTcpTimeWait;
  inet_diag_req every_family;
  std::memset(&every_family, 0, sizeof(every_family));
  every_family.idiag_states = 1u << kTcpTimeWait;
  const bool legacy = kind == DumpRequest::kEveryFamily;
  const size_t request_bytes = legacy ? sizeof(every_family) : sizeof(request);
  const bool filtered = ports.local_count + ports.remote_count <= kMaxConditions;
  const std::vector<inet_diag_bc_op> filter =
      filtered ? PortFilter(ports.local, ports.local_count, ports.remote, ports.remote_count) : std::vector<inet_diag_bc_op>();
  const size_t filter_bytes = filter.size() * sizeof(inet_diag_bc_op);
  nlattr attribute;
  attribute.nla_type = INET_DIAG_REQ_BYTECODE;
  attribute.nla_len = static_cast<uint16_t>(NLA_HDRLEN + filter_bytes);
  nlmsghdr header;
  std::memset(&header, 0, sizeof(header));
  header.nlmsg_len = NLMSG_LENGTH(request_bytes) + (filter_bytes > 0 ? NLA_ALIGN(attribute.nla_len) : 0);
  header.nlmsg_type = legacy ? TCPDIAG_GETSOCK : SOCK_DIAG_BY_FAMILY;
  header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  iovec parts[4] = {{&header, sizeof(header)},
                    {legacy ? static_cast<void*>(&every_family) : static_cast<void*>(&request), request_bytes},
                    {&attribute, sizeof(attribute)},
                    {const_cast<inet_diag_bc_op*>(filter.data()), filter_bytes}};
  sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;
  msghdr message;
  std::memset(&message, 0, sizeof(message));
  message.msg_name = &kernel;
  message.msg_namelen = sizeof(kernel);
  message.msg_iov = parts;
  message.msg_iovlen = filter_bytes > 0 ? 4 : 2;
  if (sendmsg(nl, &message, 0) < 0) {
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
    for (nlmsghdr* answer = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(answer, remaining);
         answer = NLMSG_NEXT(answer, remaining)) {
      if (answer->nlmsg_type == NLMSG_DONE) {
        *answered = true;
        done = true;
        break;
      }
      if (answer->nlmsg_type == NLMSG_ERROR) {
        const auto* failure = static_cast<const nlmsgerr*>(NLMSG_DATA(answer));
        err = failure->error < 0 ? -failure->error : EPROTO;
        done = true;
        break;
      }
      *answered = true;
      const auto* socket = static_cast<const inet_diag_msg*>(NLMSG_DATA(answer));
      if (socket->idiag_state != kTcpTimeWait) continue;
      TimeWaitEntry entry;
      entry.local_port = ntohs(socket->id.idiag_sport);
      entry.remote_port = ntohs(socket->id.idiag_dport);
      // Unfiltered (too many ports for one attribute), or a kernel that ignored the filter: match here.
      if (!Contains(ports.local, ports.local_count, entry.local_port) &&
          !Contains(ports.remote, ports.remote_count, entry.remote_port)) {
        continue;
      }
      // Each answer says its own family (one dump answers for both).
      const int family = socket->idiag_family;
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

int ListTimeWait(const int32_t* local_ports, size_t local_count, const int32_t* remote_ports, size_t remote_count,
                 void (*visit)(const TimeWaitEntry&, void*), void* context) {
  if (local_count + remote_count == 0) return 0;
  const Ports ports{local_ports, local_count, remote_ports, remote_count};
  bool answered = false;
  const int err = Dump(DumpRequest::kEveryFamily, ports, visit, context, &answered);
  // A kernel (or a sandbox's) without the older request refuses it before answering: a dump per family then.
  if (err == 0 || answered) return err;
  if (int v4 = Dump(DumpRequest::kIPv4, ports, visit, context, &answered)) return v4;
  return Dump(DumpRequest::kIPv6, ports, visit, context, &answered);
}

}  // namespace tcp_leak_agent
