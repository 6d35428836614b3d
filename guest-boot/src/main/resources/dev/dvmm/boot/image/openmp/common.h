/* Shared by the dvmm guest OpenMP programs: timing and the parseable result line. */
#ifndef DVMM_OMP_COMMON_H
#define DVMM_OMP_COMMON_H
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int report(const char *name, double seconds, int ok) {
    printf("DVMM-RESULT name=%s threads=%d seconds=%.6f check=%s\n", name, omp_get_max_threads(), seconds,
           ok ? "ok" : "fail");
    fflush(stdout);
    return ok ? 0 : 1;
}

static long arg_or(int argc, char **argv, long fallback) {
    return argc > 1 ? atol(argv[1]) : fallback;
}
#endif
