/* libFuzzer target: the capture file reader (proto/common/capture.c) and
 * exact replay (daemon/replay/exact.c) on any file: records are read until
 * the end or a clear error, never past it; the decisions are replayed
 * through the engine or refused with a reason, never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "capture.h"
#include "exact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[] = "/tmp/pt-fuzz-capXXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) abort();
  if (write(fd, data, size) != (ssize_t)size) abort();
  close(fd);
  pt_cap_reader r;
  char err[256];
  if (pt_cap_reader_open(&r, path, err, sizeof err) == 0) {
    pt_cap_record rec;
    int rc;
    while ((rc = pt_cap_read(&r, &rec, err, sizeof err)) == 1)
      if (rec.len && !rec.data) abort();
    if (rc == -1 && !err[0]) abort();
    pt_cap_reader_close(&r);
  } else if (!err[0]) {
    abort();
  }
  static pt_exact_report rep;
  static const pt_whatif set = {.campaign = "c1", .campaign_len = 2, .field = "stock", .value = 1};
  pt_exact_opts o = {.sets = size % 2 ? &set : NULL, .nsets = size % 2, .max_divergences = 1000};
  if (pt_exact_run(path, &o, &rep) && !rep.error[0]) abort();
  unlink(path);
  return 0;
}
