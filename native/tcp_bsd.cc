// macOS and FreeBSD. UNTESTED: written against the system headers' documented
// structs, never compiled or run by this project's CI (Linux only). States are
// translated to Linux numbering so the JavaScript side has one vocabulary.
// What these kernels do not report (last data sent, on both) is -1, and the
// detector then watches socket.bytesWritten instead, as with /proc.
#include "tcp_reader.h"

#include <arpa/inet.h>
#include <cerrno>
#include <climits>
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

int32_t Clamp(uint64_t value) { return value > INT32_MAX ? INT32_MAX : static_cast<int32_t>(value); }

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

void ToEndpoint(const sockaddr_storage& address, Endpoint* out) {
  out->address[0] = '\0';
  out->port = 0;
  out->family = 0;
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &v4->sin_addr, out->address, sizeof(out->address));
    out->port = ntohs(v4->sin_port);
    out->family = 4;
  } else if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &v6->sin6_addr, out->address, sizeof(out->address));
    out->port = ntohs(v6->sin6_port);
    out->family = 6;
  }
}

}  // namespace

#if defined(__APPLE__)

int ReadTcpSample(int fd, TcpSample* out) {
  tcp_connection_info info;
  socklen_t len = sizeof(info);
  std::memset(&info, 0, sizeof(info));
  if (getsockopt(fd, IPPROTO_TCP, TCP_CONNECTION_INFO, &info, &len) != 0) return errno;
  out->state = ToLinuxState(info.tcpi_state);
  out->last_data_sent_ms = -1;
  out->last_data_recv_ms = -1;
  out->unacked = Clamp(info.tcpi_snd_sbbytes);
  out->notsent_bytes = -1;
  return 0;
}

int ReadTcpDetail(int fd, TcpDetail* out, const char** syscall) {
  tcp_connection_info info;
  socklen_t len = sizeof(info);
  std::memset(&info, 0, sizeof(info));
  *syscall = "getsockopt";
  if (getsockopt(fd, IPPROTO_TCP, TCP_CONNECTION_INFO, &info, &len) != 0) return errno;
  out->state = ToLinuxState(info.tcpi_state);
  out->retransmits = Clamp(info.tcpi_txretransmitpackets);
  out->backoff = -1;
  out->rto_us = static_cast<int64_t>(info.tcpi_rto) * 1000;     // ms
  out->rtt_us = static_cast<int64_t>(info.tcpi_srtt) * 1000;    // ms
  out->rttvar_us = static_cast<int64_t>(info.tcpi_rttvar) * 1000;
  out->unacked = -1;
  out->last_data_sent_ms = -1;
  out->last_data_recv_ms = -1;
  out->last_ack_recv_ms = -1;
  out->bytes_acked = -1;
  out->bytes_received = static_cast<double>(info.tcpi_rxbytes);
  out->info_length = static_cast<int32_t>(len);
  ReadQueues(fd, &out->unread_bytes, &out->unsent_bytes);
  return 0;
}

#else  // FreeBSD

int ReadTcpSample(int fd, TcpSample* out) {
  tcp_info info;
  socklen_t len = sizeof(info);
  std::memset(&info, 0, sizeof(info));
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return errno;
  out->state = ToLinuxState(info.tcpi_state);
  out->last_data_sent_ms = -1;
  out->last_data_recv_ms = Clamp(info.tcpi_last_data_recv);
  out->unacked = -1;
  out->notsent_bytes = -1;
  return 0;
}

int ReadTcpDetail(int fd, TcpDetail* out, const char** syscall) {
  tcp_info info;
  socklen_t len = sizeof(info);
  std::memset(&info, 0, sizeof(info));
  *syscall = "getsockopt";
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return errno;
  out->state = ToLinuxState(info.tcpi_state);
  out->retransmits = -1;
  out->backoff = -1;
  out->rto_us = info.tcpi_rto;
  out->rtt_us = info.tcpi_rtt;
  out->rttvar_us = info.tcpi_rttvar;
  out->unacked = -1;
  out->last_data_sent_ms = -1;
  out->last_data_recv_ms = info.tcpi_last_data_recv;
  out->last_ack_recv_ms = -1;
  out->bytes_acked = -1;
  out->bytes_received = -1;
  out->info_length = static_cast<int32_t>(len);
  ReadQueues(fd, &out->unread_bytes, &out->unsent_bytes);
  return 0;
}

#endif

int ReadEndpoints(int fd, Endpoint* local, Endpoint* remote) {
  sockaddr_storage address;
  socklen_t len = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &len) != 0) return errno;
  ToEndpoint(address, local);
  len = sizeof(address);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &len) != 0) {
    if (errno != ENOTCONN) return errno;
    remote->address[0] = '\0';
    remote->port = 0;
    remote->family = 0;
    return 0;
  }
  ToEndpoint(address, remote);
  return 0;
}

// No /proc: walk the descriptor table. A TCP socket is a stream socket of an inet family.
int ListTcpDescriptors(void (*visit)(int fd, uint64_t inode, void* context), void* context) {
  const int limit = getdtablesize();
  for (int fd = 0; fd < limit; fd++) {
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
