// Node-API surface of the addon. Small and flat: plain functions over file
// descriptors, typed arrays for the batch scan, and errors shaped like Node's
// own SystemError (code, errno, syscall, fd) so JavaScript branches on `code`.
#include <napi.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <cmath>
#include <string>
#include <sys/resource.h>
#include <chrono>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "tcp_reader.h"

namespace tcp_leak_agent {
namespace {

// The scan's row: int32 slots per socket, in this order. The one definition of the layout: it is
// exported as SAMPLE (name -> slot) and SAMPLE_STRIDE, and the JavaScript side checks its own
// copy (src/measured/native.ts, which the procfs backend also writes) against them at load.
enum SampleSlot : uint32_t {
  kState = 0,
  kLastDataSentMs,
  kLastDataRecvMs,
  kUnacked,
  kNotsentBytes,
  kUnanswered,
  kSampleStride,
};
struct SlotName {
  const char* name;
  SampleSlot slot;
};
constexpr SlotName kSampleSlots[] = {
    {"state", kState},         {"lastDataSentMs", kLastDataSentMs}, {"lastDataRecvMs", kLastDataRecvMs},
    {"unacked", kUnacked},     {"notsentBytes", kNotsentBytes},     {"unanswered", kUnanswered},
};

Napi::Error SystemError(Napi::Env env, int err, const char* syscall, int fd) {
  // uv_err_name / uv_strerror take libuv's negative error numbers and give
  // the same names and texts Node puts in its own SystemErrors.
  const char* code = uv_err_name(-err);
  std::string message = std::string(syscall) + " " + code + ": " + uv_strerror(-err);
  if (fd >= 0) message += " (fd " + std::to_string(fd) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  if (fd >= 0) error.Set("fd", Napi::Number::New(env, fd));
  return error;
}

// scanSockets(fds: Int32Array, count: number, out: Int32Array): void
// For each of the first `count` descriptors writes kSampleStride int32s to
// `out`: [state, lastDataSentMs, lastDataRecvMs, unacked, notsentBytes, unanswered].
// A descriptor the kernel refuses (closed, reused for a non-TCP file) gets
// -errno in its state slot: an expected case, not an exception.
Napi::Value ScanSockets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsNumber() || !info[2].IsTypedArray()) {
    Napi::TypeError::New(env, "scanSockets(fds: Int32Array, count: number, out: Int32Array)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::TypedArray fds_any = info[0].As<Napi::TypedArray>();
  Napi::TypedArray out_any = info[2].As<Napi::TypedArray>();
  if (fds_any.TypedArrayType() != napi_int32_array || out_any.TypedArrayType() != napi_int32_array) {
    Napi::TypeError::New(env, "scanSockets: fds and out must be Int32Arrays").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Int32Array fds = fds_any.As<Napi::Int32Array>();
  Napi::Int32Array out = out_any.As<Napi::Int32Array>();
  double count_d = info[1].As<Napi::Number>().DoubleValue();
  if (!(count_d >= 0) || count_d > fds.ElementLength() || count_d * kSampleStride > out.ElementLength()) {
    Napi::RangeError::New(env, "scanSockets: count exceeds the arrays' length").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const size_t count = static_cast<size_t>(count_d);
  const int32_t* in = fds.Data();
  int32_t* rows = out.Data();
  for (size_t i = 0; i < count; i++) {
    TcpSample sample;
    int err = ReadTcpSample(in[i], &sample);
    int32_t* row = rows + i * kSampleStride;
    if (err != 0) {
      for (uint32_t slot = 0; slot < kSampleStride; slot++) row[slot] = 0;
      row[kState] = -err;
      continue;
    }
    row[kState] = sample.state;
    row[kLastDataSentMs] = sample.last_data_sent_ms;
    row[kLastDataRecvMs] = sample.last_data_recv_ms;
    row[kUnacked] = sample.unacked;
    row[kNotsentBytes] = sample.notsent_bytes;
    row[kUnanswered] = sample.unanswered;
  }
  return env.Undefined();
}

// inspectSocket(fd: number): TcpDetail; fields the kernel did not return are -1.
// Throws a SystemError-shaped error.
Napi::Value InspectSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "inspectSocket(fd: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  TcpDetail detail;
  const char* syscall = "getsockopt";
  int err = ReadTcpDetail(fd, &detail, &syscall);
  if (err != 0) {
    SystemError(env, err, syscall, fd).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("state", Napi::Number::New(env, detail.state));
  result.Set("retransmits", Napi::Number::New(env, detail.retransmits));
  result.Set("backoff", Napi::Number::New(env, detail.backoff));
  result.Set("rtoUs", Napi::Number::New(env, static_cast<double>(detail.rto_us)));
  result.Set("rttUs", Napi::Number::New(env, static_cast<double>(detail.rtt_us)));
  result.Set("rttvarUs", Napi::Number::New(env, static_cast<double>(detail.rttvar_us)));
  result.Set("unacked", Napi::Number::New(env, static_cast<double>(detail.unacked)));
  result.Set("lastDataSentMs", Napi::Number::New(env, static_cast<double>(detail.last_data_sent_ms)));
  result.Set("lastDataRecvMs", Napi::Number::New(env, static_cast<double>(detail.last_data_recv_ms)));
  result.Set("lastAckRecvMs", Napi::Number::New(env, static_cast<double>(detail.last_ack_recv_ms)));
  result.Set("bytesAcked", Napi::Number::New(env, detail.bytes_acked));
  result.Set("bytesReceived", Napi::Number::New(env, detail.bytes_received));
  result.Set("unreadBytes", Napi::Number::New(env, static_cast<double>(detail.unread_bytes)));
  result.Set("unsentBytes", Napi::Number::New(env, static_cast<double>(detail.unsent_bytes)));
  result.Set("infoLength", Napi::Number::New(env, detail.info_length));
  result.Set("keepalive", Napi::Number::New(env, detail.keepalive));
  return result;
}

Napi::Value EndpointValue(Napi::Env env, const Endpoint& endpoint) {
  if (endpoint.family == 0) return env.Null();
  Napi::Object result = Napi::Object::New(env);
  result.Set("address", Napi::String::New(env, endpoint.address));
  result.Set("port", Napi::Number::New(env, endpoint.port));
  result.Set("family", Napi::String::New(env, endpoint.family == 6 ? "IPv6" : "IPv4"));
  return result;
}

// readEndpoints(fd): { local, remote }, each { address, port, family } or null
// (a finished connection has no peer). For sockets JavaScript never saw.
Napi::Value ReadEndpointsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "readEndpoints(fd: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  Endpoint local, remote;
  int err = ReadEndpoints(fd, &local, &remote);
  if (err != 0) {
    SystemError(env, err, "getsockname", fd).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("local", EndpointValue(env, local));
  result.Set("remote", EndpointValue(env, remote));
  return result;
}

struct DescriptorList {
  std::vector<int32_t> fds;
  std::vector<double> inodes;
};

bool IsInt32Array(const Napi::Value& value) {
  return value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array;
}

// listTcpDescriptors(skip?: Int32Array): { fds: Int32Array, inodes: Float64Array }, every TCP
// socket descriptor this process holds, whoever opened it, except those in `skip` (sorted
// ascending: the tracked ones, passed over with no system call).
Napi::Value ListTcpDescriptorsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() > 0 && !info[0].IsUndefined() && !IsInt32Array(info[0])) {
    Napi::TypeError::New(env, "listTcpDescriptors(skip?: Int32Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const bool skipping = info.Length() > 0 && IsInt32Array(info[0]);
  const int32_t* skip = skipping ? info[0].As<Napi::Int32Array>().Data() : nullptr;
  const size_t skip_count = skipping ? info[0].As<Napi::Int32Array>().ElementLength() : 0;
  DescriptorList list;
  int err = ListTcpDescriptors(
      skip, skip_count,
      [](int fd, uint64_t inode, void* context) {
        auto* into = static_cast<DescriptorList*>(context);
        into->fds.push_back(fd);
        into->inodes.push_back(static_cast<double>(inode));
      },
      &list);
  if (err != 0) {
    SystemError(env, err, "opendir", -1).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Int32Array fds = Napi::Int32Array::New(env, list.fds.size());
  Napi::Float64Array inodes = Napi::Float64Array::New(env, list.inodes.size());
  for (size_t i = 0; i < list.fds.size(); i++) {
    fds[i] = list.fds[i];
    inodes[i] = list.inodes[i];
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("fds", fds);
  result.Set("inodes", inodes);
  return result;
}

// Descriptors some thread's agent tracks, process-wide: every worker thread
// runs its own agent, and the pass over untracked sockets must not report
// another thread's sockets as unknown. The addon is the one place all threads
// share. fd -> when it was last noted (ms, steady clock).
std::mutex tracked_mutex;
std::unordered_map<int32_t, int64_t> tracked_fds;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// noteTracked(fds: Int32Array, count: number): void. Called by each scan.
Napi::Value NoteTracked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsNumber() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    Napi::TypeError::New(env, "noteTracked(fds: Int32Array, count: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Int32Array fds = info[0].As<Napi::Int32Array>();
  size_t count = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  if (count > fds.ElementLength()) count = fds.ElementLength();
  const int64_t now = NowMs();
  std::lock_guard<std::mutex> lock(tracked_mutex);
  for (size_t i = 0; i < count; i++) tracked_fds[fds[i]] = now;
  return env.Undefined();
}

// trackedElsewhere(fd: number, withinMs: number): boolean. True when some
// thread noted the descriptor within the last `withinMs`; forgets old notes.
Napi::Value TrackedElsewhere(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "trackedElsewhere(fd: number, withinMs: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int32_t fd = info[0].As<Napi::Number>().Int32Value();
  const int64_t within = info[1].As<Napi::Number>().Int64Value();
  std::lock_guard<std::mutex> lock(tracked_mutex);
  auto found = tracked_fds.find(fd);
  if (found == tracked_fds.end()) return Napi::Boolean::New(env, false);
  if (NowMs() - found->second > within) {
    tracked_fds.erase(found);
    return Napi::Boolean::New(env, false);
  }
  return Napi::Boolean::New(env, true);
}

// getDescriptorLimit(): { soft, hard } for RLIMIT_NOFILE; Infinity when unlimited.
// Node has no API for it, and it is what EMFILE is measured against.
Napi::Value GetDescriptorLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    SystemError(env, errno, "getrlimit", -1).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto as_number = [&](rlim_t value) {
    return Napi::Number::New(env, value == RLIM_INFINITY ? INFINITY : static_cast<double>(value));
  };
  Napi::Object result = Napi::Object::New(env);
  result.Set("soft", as_number(limit.rlim_cur));
  result.Set("hard", as_number(limit.rlim_max));
  return result;
}

// countDescriptors(): number of open descriptors of this process; -1 where the platform cannot tell.
Napi::Value CountDescriptorsJs(const Napi::CallbackInfo& info) {
  const int count = CountDescriptors();
  return Napi::Number::New(info.Env(), count < 0 ? -1 : count);
}

struct TimeWaitList {
  const int32_t* server_ports;
  size_t server_count;
  std::vector<int32_t> server_counts;  // aligned with server_ports
  std::vector<int32_t> local_ports;    // rows on the remote ports
  std::vector<int32_t> remote_ports;
  std::vector<std::string> remote_addresses;
};

// listTimeWait(serverPorts: Int32Array, remotePorts: Int32Array), both sorted ascending:
//   { serverCounts: Int32Array, localPorts: Int32Array, remotePorts: Int32Array, remoteAddresses: string[] }
// The network namespace's TIME_WAIT connections on this process's ports: counted
// per server (local) port, as a busy server can have hundreds of thousands, and
// listed one row each when the remote port is one of `remotePorts` (for
// matching against the 4-tuples of client sockets seen closing). The kernel
// filters by port, so only these connections are answered.
// Throws a SystemError where the platform cannot tell.
Napi::Value ListTimeWaitJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !IsInt32Array(info[0]) || !IsInt32Array(info[1])) {
    Napi::TypeError::New(env, "listTimeWait(serverPorts: Int32Array, remotePorts: Int32Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Int32Array server = info[0].As<Napi::Int32Array>();
  Napi::Int32Array remote = info[1].As<Napi::Int32Array>();
  TimeWaitList list{server.Data(), server.ElementLength(), std::vector<int32_t>(server.ElementLength(), 0), {}, {}, {}};
  int err = ListTimeWait(
      server.Data(), server.ElementLength(), remote.Data(), remote.ElementLength(),
      [](const TimeWaitEntry& entry, void* context) {
        auto* into = static_cast<TimeWaitList*>(context);
        const int32_t* end = into->server_ports + into->server_count;
        const int32_t* found = std::lower_bound(into->server_ports, end, entry.local_port);
        if (found != end && *found == entry.local_port) {
          into->server_counts[found - into->server_ports]++;
          return;
        }
        into->local_ports.push_back(entry.local_port);
        into->remote_ports.push_back(entry.remote_port);
        into->remote_addresses.emplace_back(entry.remote.address);
      },
      &list);
  if (err != 0) {
    SystemError(env, err, "sock_diag", -1).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Int32Array server_counts = Napi::Int32Array::New(env, list.server_counts.size());
  for (size_t i = 0; i < list.server_counts.size(); i++) server_counts[i] = list.server_counts[i];
  const size_t n = list.local_ports.size();
  Napi::Int32Array local_ports = Napi::Int32Array::New(env, n);
  Napi::Int32Array remote_ports = Napi::Int32Array::New(env, n);
  Napi::Array remote_addresses = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) {
    local_ports[i] = list.local_ports[i];
    remote_ports[i] = list.remote_ports[i];
    remote_addresses.Set(static_cast<uint32_t>(i), Napi::String::New(env, list.remote_addresses[i]));
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("serverCounts", server_counts);
  result.Set("localPorts", local_ports);
  result.Set("remotePorts", remote_ports);
  result.Set("remoteAddresses", remote_addresses);
  return result;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("scanSockets", Napi::Function::New(env, ScanSockets, "scanSockets"));
  exports.Set("inspectSocket", Napi::Function::New(env, InspectSocket, "inspectSocket"));
  exports.Set("noteTracked", Napi::Function::New(env, NoteTracked, "noteTracked"));
  exports.Set("trackedElsewhere", Napi::Function::New(env, TrackedElsewhere, "trackedElsewhere"));
  exports.Set("readEndpoints", Napi::Function::New(env, ReadEndpointsJs, "readEndpoints"));
  exports.Set("listTcpDescriptors", Napi::Function::New(env, ListTcpDescriptorsJs, "listTcpDescriptors"));
  exports.Set("getDescriptorLimit", Napi::Function::New(env, GetDescriptorLimit, "getDescriptorLimit"));
  exports.Set("countDescriptors", Napi::Function::New(env, CountDescriptorsJs, "countDescriptors"));
  exports.Set("listTimeWait", Napi::Function::New(env, ListTimeWaitJs, "listTimeWait"));
  Napi::Object slots = Napi::Object::New(env);
  for (const SlotName& entry : kSampleSlots) slots.Set(entry.name, Napi::Number::New(env, entry.slot));
  exports.Set("SAMPLE", slots);
  exports.Set("SAMPLE_STRIDE", Napi::Number::New(env, kSampleStride));
  return exports;
}

}  // namespace tcp_leak_agent

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return tcp_leak_agent::Init(env, exports);
}

NODE_API_MODULE(tcp_leak_agent, InitAddon)
