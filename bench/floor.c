// Copyright 2026 the @x/port-reserve authors. MIT license.
// The floor: one reservation as plain syscalls, the sequence mod.ts runs.
// listen(127.0.0.1:0) with SO_REUSEADDR, connect, accept, close the accepted
// side, read end-of-stream on the client, close the client and the listener.
//   floor [COUNT] [BATCHES]   prints one JSON line: median us per reservation
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int reserve_once(void) {
  struct sockaddr_in addr = {.sin_family = AF_INET};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int one = 1;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) die("socket");
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr)) die("bind");
  if (listen(listener, 128)) die("listen");
  if (getsockname(listener, (struct sockaddr *)&addr, &len)) die("getsockname");
  int client = socket(AF_INET, SOCK_STREAM, 0);
  if (client < 0) die("socket");
  if (connect(client, (struct sockaddr *)&addr, sizeof addr)) die("connect");
  int accepted = accept(listener, NULL, NULL);
  if (accepted < 0) die("accept");
  close(accepted);
  char byte;
  if (read(client, &byte, 1) != 0) die("read");
  close(client);
  close(listener);
  return ntohs(addr.sin_port);
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int per_batch = argc > 1 ? atoi(argv[1]) : 200;
  int batches = argc > 2 ? atoi(argv[2]) : 10;
  double *samples = calloc(batches, sizeof *samples);
  for (int i = 0; i < 50; i++) reserve_once();  // the same warm-up as per_call.ts
  for (int b = 0; b < batches; b++) {
    double start = now_us();
    for (int i = 0; i < per_batch; i++) reserve_once();
    samples[b] = (now_us() - start) / per_batch;
  }
  qsort(samples, batches, sizeof *samples, compare);
  printf("{\"runtime\":\"c\",\"method\":\"reserve\",\"usPerPort\":%.1f,\"min\":%.1f,\"max\":%.1f}\n",
         samples[batches / 2], samples[0], samples[batches - 1]);
  return 0;
}
