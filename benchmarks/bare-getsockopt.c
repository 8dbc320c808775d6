// The floor for a scan: a plain C loop of getsockopt(TCP_INFO) over N open
// loopback sockets (N/2 connections, both ends), timed over many passes.
// Prints: bare-getsockopt sockets=N ns_per_socket=X
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 5000;
  int passes = argc > 2 ? atoi(argv[2]) : 50;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(addr);
  if (bind(listener, (struct sockaddr*)&addr, sizeof(addr)) || listen(listener, 4096) ||
      getsockname(listener, (struct sockaddr*)&addr, &len)) {
    perror("listen");
    return 1;
  }
  int* fds = malloc(sizeof(int) * n);
  for (int i = 0; i < n; i += 2) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fds[i], (struct sockaddr*)&addr, sizeof(addr))) { perror("connect"); return 1; }
    fds[i + 1] = accept(listener, NULL, NULL);
  }
  struct tcp_info info;
  volatile long sink = 0;
  double best = 1e18;
  for (int p = 0; p < passes; p++) {
    double start = now_ns();
    for (int i = 0; i < n; i++) {
      socklen_t l = sizeof(info);
      getsockopt(fds[i], IPPROTO_TCP, TCP_INFO, &info, &l);
      sink += info.tcpi_state;
    }
    double elapsed = now_ns() - start;
    if (elapsed < best) best = elapsed;
  }
  printf("bare-getsockopt sockets=%d ns_per_socket=%.1f\n", n, best / n);
  return 0;
}
