// Copyright 2026 the @x/port-reserve authors. MIT license.
// The floor: one reservation as plain syscalls, the sequence mod.ts runs.
// Also its capacity curve: `floor capacity N BUCKET` (see capacity()).
// listen(127.0.0.1:0) with SO_REUSEADDR, connect, accept, close the accepted
// side, read end-of-stream on the client, close the client and the listener.
//   floor [COUNT] [BATCHES]   prints one JSON line: median us per reservation
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* One reservation; the port, or -errno with nothing left open. */
static int reserve_once(void) {
  struct sockaddr_in addr = {.sin_family = AF_INET};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int one = 1, result = -1, client = -1, accepted = -1;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) return -errno;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) ||
      listen(listener, 128) ||
      getsockname(listener, (struct sockaddr *)&addr, &len) ||
      (client = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
      connect(client, (struct sockaddr *)&addr, sizeof addr) ||
      (accepted = accept(listener, NULL, NULL)) < 0) {
    result = -errno;
  } else {
    close(accepted);
    accepted = -1;
    char byte;
    result = read(client, &byte, 1) == 0 ? ntohs(addr.sin_port) : -EPROTO;
  }
  if (accepted >= 0) close(accepted);
  if (client >= 0) close(client);
  close(listener);
  return result;
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

/*
 * floor capacity N BUCKET: reserve until N are outstanding (or the range runs
 * out), printing the median us per reservation of each BUCKET reservations.
 */
static int capacity(int total, int bucket) {
  double *times = calloc(bucket, sizeof *times);
  printf("{\"runtime\":\"c\",\"buckets\":[");
  for (int done = 0; done < total;) {
    int i = 0;
    for (; i < bucket && done < total; i++, done++) {
      double start = now_us();
      int port = reserve_once();
      times[i] = now_us() - start;
      if (port < 0) {
        printf("],\"reserved\":%d,\"error\":\"%s\",\"errorUs\":%.1f}\n", done,
               strerror(-port), times[i]);
        return 0;
      }
    }
    qsort(times, i, sizeof *times, compare);
    printf("%s[%d,%.1f]", done > bucket ? "," : "", done, times[i / 2]);
  }
  printf("],\"reserved\":%d,\"error\":null}\n", total);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "capacity") == 0) {
    return capacity(argc > 2 ? atoi(argv[2]) : 20000, argc > 3 ? atoi(argv[3]) : 500);
  }
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
