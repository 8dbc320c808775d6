// macOS and FreeBSD. UNTESTED: written against the system headers' documented
// structs, never compiled or run by this project's CI (Linux only). States are
// translated to Linux numbering so the JavaScript side has one vocabulary.
// What these kernels do not report (last data sent, on both) is -1, and the
// detector then watches socket.bytesWritten instead, as with /proc.
#include "tcp_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/tcp_fsm.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tcp_leak_agent {
namespace {

#if defined(__APPLE__)
using KernelInfo = tcp_connection_info;
constexpr int kInfoOption = TCP_CONNECTION_INFO;
#else
using KernelInfo = tcp_info;
constexpr int kInfoOption = TCP_INFO;
#endif

int QueryInfo(int fd, KernelInfo* info, socklen_t* len) {
  std::memset(info, 0, sizeof(*info));
  *len = sizeof(*info);
  return getsockopt(fd, IPPROTO_TCP, kInfoOption, info, len) == 0 ? 0 : errno;
}

// BSD TCPS_* (netinet/tcp_fsm.h) to Linux TCP_* (include/net/tcp_states.h).
int32_t ToLinuxState(int bsd_state) {
  switch (bsd_state) {
    case TCPS_CLOSED: return 7;        // TCP_CLOSE
    case TCPS_LISTEN: return 10;       // TCP_LISTEN
    case TCPS_SYN_SENT: return 2;
    case TCPS_SYN_RECEIVED: return 3;
    case TCPS_ESTABLISHED: return 1;
    case TCPS_CLOSE_WAIT: return 8;    // 5 on BSD
    case TCPS_FIN_WAIT_1: return 4;
    case TCPS_CLOSING: return 11;
    case TCPS_LAST_ACK: return 9;
    case TCPS_FIN_WAIT_2: return 5;
    case TCPS_TIME_WAIT: return 6;
    default: return 0;
  }
}

// Bytes received and not read (FIONREAD) and bytes not yet acknowledged (SO_NWRITE on macOS,
// FIONWRITE on FreeBSD).
void ReadQueues(int fd, int64_t* unread, int64_t* unsent) {
  int value = 0;
  *unread = ioctl(fd, FIONREAD, &value) == 0 ? value : -1;
#if defined(__APPLE__)
  socklen_t len = sizeof(value);
  *unsent = getsockopt(fd, SOL_SOCKET, SO_NWRITE, &value, &len) == 0 ? value : -1;
#else
  *unsent = ioctl(fd, FIONWRITE, &value) == 0 ? value : -1;
#endif
}

}  // namespace

int ReadTcpSample(int fd, TcpSample* out) {
  KernelInfo info;
  socklen_t len;
  if (int err = QueryInfo(fd, &info, &len)) return err;
  out->state = ToLinuxState(info.tcpi_state);
  out->last_data_sent_ms = -1;
  out->notsent_bytes = -1;
  out->unanswered = -1;
#if defined(__APPLE__)
  out->last_data_recv_ms = -1;
  out->unacked = ClampToInt32(info.tcpi_snd_sbbytes);
#else
  out->last_data_recv_ms = ClampToInt32(info.tcpi_last_data_recv);
  out->unacked = -1;
#endif
  return 0;
}

int ReadTcpDetail(int fd, TcpDetail* out, const char** syscall) {
  KernelInfo info;
  socklen_t len;
  *syscall = "getsockopt";
  if (int err = QueryInfo(fd, &info, &len)) return err;
  out->info_length = static_cast<int32_t>(len);
  out->state = ToLinuxState(info.tcpi_state);
  int keepalive = 0;
  socklen_t keepalive_len = sizeof(keepalive);
  out->keepalive = getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keepalive, &keepalive_len) == 0 ? (keepalive != 0) : -1;
  out->backoff = -1;
  out->unacked = -1;
  out->last_data_sent_ms = -1;
  out->last_ack_recv_ms = -1;
  out->bytes_acked = -1;
#if defined(__APPLE__)
  out->retransmits = ClampToInt32(info.tcpi_txretransmitpackets);
  out->rto_us = static_cast<int64_t>(info.tcpi_rto) * 1000;  // macOS reports ms
  out->rtt_us = static_cast<int64_t>(info.tcpi_srtt) * 1000;
  out->rttvar_us = static_cast<int64_t>(info.tcpi_rttvar) * 1000;
  out->last_data_recv_ms = -1;
  out->bytes_received = static_cast<double>(info.tcpi_rxbytes);
#else
  out->retransmits = -1;
  out->rto_us = info.tcpi_rto;  // FreeBSD reports µs
  out->rtt_us = info.tcpi_rtt;
  out->rttvar_us = info.tcpi_rttvar;
  out->last_data_recv_ms = info.tcpi_last_data_recv;
  out->bytes_received = -1;
#endif
  ReadQueues(fd, &out->unread_bytes, &out->unsent_bytes);
  return 0;
}

// No /proc: walk the descriptor table. A TCP socket is a stream socket of an inet family.
// Not written for these systems yet: the agent then skips descriptor and TIME_WAIT checks.
int CountDescriptors() { return -ENOTSUP; }

int ListTimeWait(const int32_t*, size_t, const int32_t*, size_t, void (*)(const TimeWaitEntry&, void*), void*) {
  return ENOTSUP;
}

int ListTcpDescriptors(const int32_t* skip, size_t skip_count, void (*visit)(int fd, uint64_t inode, void* context),
                       void* context) {
  const int limit = getdtablesize();
  for (int fd = 0; fd < limit; fd++) {
    if (std::binary_search(skip, skip + skip_count, fd)) continue;
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISSOCK(info.st_mode)) continue;
    int type = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) continue;
    sockaddr_storage address;
    len = sizeof(address);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &len) != 0) continue;
    if (address.ss_family != AF_INET && address.ss_family != AF_INET6) continue;
    visit(fd, static_cast<uint64_t>(info.st_ino), context);
  }
  return 0;
}

}  // namespace tcp_leak_agent
