// Kernel TCP state for one descriptor. The platform file (tcp_linux.cc, tcp_bsd.cc) fills
// these; addon.cc turns them into JavaScript values. Nothing here allocates.
#ifndef TCP_LEAK_AGENT_TCP_READER_H_
#define TCP_LEAK_AGENT_TCP_READER_H_

#include <climits>
#include <cstddef>
#include <cstdint>

namespace tcp_leak_agent {

// One row of the batch scan. Kept to the fields the detector needs on every
// pass, so a scan costs one getsockopt per socket and nothing else.
struct TcpSample {
  int32_t state;              // kernel TCP state (Linux numbering, 8 = CLOSE_WAIT)
  int32_t last_data_sent_ms;  // ms since this side last sent data
  int32_t last_data_recv_ms;  // ms since data last arrived from the peer
  int32_t unacked;            // segments sent and not yet acknowledged
  int32_t notsent_bytes;      // bytes queued and not sent yet; -1 if the kernel does not say
  // Retransmissions (or zero-window probes) in a row the peer has not answered:
  // Linux's icsk_retransmits / icsk_probes_out, the "retrnsmt" column of /proc/net/tcp.
  int32_t unanswered;
};

// Everything that explains one connection, for a report or a snapshot.
// Fields the running kernel does not return are left at -1.
struct TcpDetail {
  int32_t state;
  int32_t retransmits;
  int32_t backoff;
  int64_t rto_us;
  int64_t rtt_us;
  int64_t rttvar_us;
  int64_t unacked;
  int64_t last_data_sent_ms;
  int64_t last_data_recv_ms;
  int64_t last_ack_recv_ms;
  double bytes_acked;     // u64 in the kernel; a double keeps 53 bits, plenty
  double bytes_received;
  int64_t unread_bytes;   // SIOCINQ
  int64_t unsent_bytes;   // SIOCOUTQ (sent but unacknowledged plus not yet sent)
  int32_t info_length;    // how many bytes of tcp_info the kernel returned
  int32_t keepalive;      // SO_KEEPALIVE: 1 on, 0 off, -1 unknown
};

// One end of a connection, as text; family is 4 or 6, 0 when unknown.
struct Endpoint {
  char address[64];
  int port;
  int family;
};

// Kernel counters are wider than a scan row's int32 fields; saturate rather than wrap.
inline int32_t ClampToInt32(uint64_t value) {
  return value > INT32_MAX ? INT32_MAX : static_cast<int32_t>(value);
}

// Each returns 0 on success or an errno value; *syscall names the call that
// failed so the JavaScript error can say which one.
int ReadTcpSample(int fd, TcpSample* out);
int ReadTcpDetail(int fd, TcpDetail* out, const char** syscall);

// getsockname / getpeername (tcp_posix.cc). A finished connection has no peer (ENOTCONN).
int ReadEndpoints(int fd, Endpoint* local, Endpoint* remote);

// Calls visit(fd, inode) for each open descriptor of this process that is a
// TCP socket, except those in `skip` (sorted ascending: the tracked ones, which
// cost no system call then). Returns 0 or an errno value.
int ListTcpDescriptors(const int32_t* skip, size_t skip_count, void (*visit)(int fd, uint64_t inode, void* context),
                       void* context);

// How many descriptors this process has open; -errno when it cannot tell.
int CountDescriptors();

// One TIME_WAIT connection of the network namespace.
struct TimeWaitEntry {
  int local_port;
  int remote_port;
  Endpoint remote;
};

// Calls visit for each TIME_WAIT connection of the network namespace whose local
// port is in `local_ports` or whose remote port is in `remote_ports` (both
// sorted ascending). Linux: one netlink sock_diag dump for both address families,
// filtered by the kernel on those ports (inet_diag bytecode), so only those
// connections are answered (the kernel still walks every connection of the
// namespace to find them). Returns 0 or an errno value.
int ListTimeWait(const int32_t* local_ports, size_t local_count, const int32_t* remote_ports, size_t remote_count,
                 void (*visit)(const TimeWaitEntry&, void*), void* context);

}  // namespace tcp_leak_agent

#endif  // TCP_LEAK_AGENT_TCP_READER_H_
