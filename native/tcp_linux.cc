// Linux: getsockopt(TCP_INFO) and the SIOCINQ / SIOCOUTQ ioctls.
// See tcp(7). The kernel copies min(len, sizeof its tcp_info) bytes and
// reports that length back: older kernels return fewer fields, so every
// late field is read only when the returned length covers it.
#include "tcp_reader.h"

#include <algorithm>

#include <cerrno>
#include <cstdlib>
#include <dirent.h>
#include <sys/stat.h>
#include <climits>
#include <cstddef>
#include <cstring>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

namespace tcp_leak_agent {

#define HAS_FIELD(len, field) \
  ((len) >= offsetof(struct tcp_info, field) + sizeof(((struct tcp_info*)0)->field))
// A field the kernel did not fill reads as -1 ("unknown"), never as 0: a
// truncated struct (an old kernel, or an emulator such as qemu-user that
// copies only the first int) must not look like "sent 0 ms ago".
#define FIELD_OR_UNKNOWN(info, len, field) \
  (HAS_FIELD(len, field) ? ClampToInt32((info).field) : -1)

int ReadTcpSample(int fd, TcpSample* out) {
  struct tcp_info info;
  socklen_t len = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return errno;
  out->state = info.tcpi_state;
  out->last_data_sent_ms = FIELD_OR_UNKNOWN(info, len, tcpi_last_data_sent);
  out->last_data_recv_ms = FIELD_OR_UNKNOWN(info, len, tcpi_last_data_recv);
  out->unacked = FIELD_OR_UNKNOWN(info, len, tcpi_unacked);
  out->notsent_bytes = FIELD_OR_UNKNOWN(info, len, tcpi_notsent_bytes);
  // The kernel counts unanswered retransmissions and unanswered zero-window
  // probes apart; either one growing means the peer is not answering.
  const int32_t retransmits = FIELD_OR_UNKNOWN(info, len, tcpi_retransmits);
  const int32_t probes = FIELD_OR_UNKNOWN(info, len, tcpi_probes);
  out->unanswered = retransmits > probes ? retransmits : probes;
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
#define DETAIL(field) (HAS_FIELD(len, field) ? static_cast<int64_t>(info.field) : -1)
  out->retransmits = static_cast<int32_t>(DETAIL(tcpi_retransmits));
  out->backoff = static_cast<int32_t>(DETAIL(tcpi_backoff));
  out->rto_us = DETAIL(tcpi_rto);
  out->rtt_us = DETAIL(tcpi_rtt);
  out->rttvar_us = DETAIL(tcpi_rttvar);
  out->unacked = DETAIL(tcpi_unacked);
  out->last_data_sent_ms = DETAIL(tcpi_last_data_sent);
  out->last_data_recv_ms = DETAIL(tcpi_last_data_recv);
  out->last_ack_recv_ms = DETAIL(tcpi_last_ack_recv);
  out->bytes_acked = static_cast<double>(DETAIL(tcpi_bytes_acked));
  out->bytes_received = static_cast<double>(DETAIL(tcpi_bytes_received));
#undef DETAIL

  int keepalive = 0;
  socklen_t keepalive_len = sizeof(keepalive);
  out->keepalive = getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keepalive, &keepalive_len) == 0 ? (keepalive != 0) : -1;

  int queued = 0;
  *syscall = "ioctl";
  if (ioctl(fd, SIOCINQ, &queued) != 0) return errno;
  out->unread_bytes = queued;
  if (ioctl(fd, SIOCOUTQ, &queued) != 0) return errno;
  out->unsent_bytes = queued;
  return 0;
}

// /proc/self/fd lists every descriptor; fstat says which are sockets (and
// gives the inode that identifies the socket, unlike the reusable fd number),
// and SO_PROTOCOL which of those are TCP. Descriptors in `skip` are passed
// over before any system call.
int ListTcpDescriptors(const int32_t* skip, size_t skip_count, void (*visit)(int fd, uint64_t inode, void* context),
                       void* context) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return errno;
  const int own = dirfd(dir);
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd == own || std::binary_search(skip, skip + skip_count, fd)) continue;
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISSOCK(info.st_mode)) continue;
    int protocol = 0;
    socklen_t len = sizeof(protocol);
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0 || protocol != IPPROTO_TCP) continue;
    visit(fd, static_cast<uint64_t>(info.st_ino), context);
  }
  closedir(dir);
  return 0;
}

}  // namespace tcp_leak_agent
