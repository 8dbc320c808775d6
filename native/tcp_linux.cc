// Linux: getsockopt(TCP_INFO) and the SIOCINQ / SIOCOUTQ ioctls.
// See tcp(7). The kernel copies min(len, sizeof its tcp_info) bytes and
// reports that length back: older kernels return fewer fields, so every
// late field is read only when the returned length covers it.
#include "tcp_reader.h"

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

namespace tcp_leak_agent {
namespace {

#define HAS_FIELD(len, field) \
  ((len) >= offsetof(struct tcp_info, field) + sizeof(((struct tcp_info*)0)->field))

int32_t ClampToInt32(uint64_t value) {
  return value > INT32_MAX ? INT32_MAX : static_cast<int32_t>(value);
}

}  // namespace

int ReadTcpSample(int fd, TcpSample* out) {
  struct tcp_info info;
  socklen_t len = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return errno;
  out->state = info.tcpi_state;
  out->last_data_sent_ms = ClampToInt32(info.tcpi_last_data_sent);
  out->last_data_recv_ms = ClampToInt32(info.tcpi_last_data_recv);
  out->unacked = ClampToInt32(info.tcpi_unacked);
  out->notsent_bytes =
      HAS_FIELD(len, tcpi_notsent_bytes) ? ClampToInt32(info.tcpi_notsent_bytes) : -1;
  return 0;
}

int ReadTcpDetail(int fd, TcpDetail* out, const char** syscall) {
  struct tcp_info info;
  std::memset(&info, 0, sizeof(info));
  socklen_t len = sizeof(info);
  *syscall = "getsockopt";
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return errno;

  out->info_length = static_cast<int32_t>(len);
  out->state = info.tcpi_state;
  out->retransmits = info.tcpi_retransmits;
  out->backoff = info.tcpi_backoff;
  out->rto_us = info.tcpi_rto;
  out->rtt_us = info.tcpi_rtt;
  out->rttvar_us = info.tcpi_rttvar;
  out->unacked = info.tcpi_unacked;
  out->last_data_sent_ms = info.tcpi_last_data_sent;
  out->last_data_recv_ms = info.tcpi_last_data_recv;
  out->last_ack_recv_ms = info.tcpi_last_ack_recv;
  out->bytes_acked = HAS_FIELD(len, tcpi_bytes_acked) ? static_cast<double>(info.tcpi_bytes_acked) : -1;
  out->bytes_received =
      HAS_FIELD(len, tcpi_bytes_received) ? static_cast<double>(info.tcpi_bytes_received) : -1;

  int queued = 0;
  *syscall = "ioctl";
  if (ioctl(fd, SIOCINQ, &queued) != 0) return errno;
  out->unread_bytes = queued;
  if (ioctl(fd, SIOCOUTQ, &queued) != 0) return errno;
  out->unsent_bytes = queued;
  return 0;
}

}  // namespace tcp_leak_agent
