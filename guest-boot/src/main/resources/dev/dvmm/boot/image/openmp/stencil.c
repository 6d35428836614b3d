/* 2-D Jacobi stencil: iterations of a 5-point average; checked bit-for-bit against a serial run. */
#include "common.h"
#include <string.h>

static void step(const double *in, double *out, int n) {
#pragma omp parallel for schedule(static)
    for (int y = 1; y < n - 1; y++) {
        for (int x = 1; x < n - 1; x++) {
            out[y * n + x] = 0.2 * (in[y * n + x] + in[(y - 1) * n + x] + in[(y + 1) * n + x]
                                    + in[y * n + x - 1] + in[y * n + x + 1]);
        }
    }
}

static void step_serial(const double *in, double *out, int n) {
    for (int y = 1; y < n - 1; y++) {
        for (int x = 1; x < n - 1; x++) {
            out[y * n + x] = 0.2 * (in[y * n + x] + in[(y - 1) * n + x] + in[(y + 1) * n + x]
                                    + in[y * n + x - 1] + in[y * n + x + 1]);
        }
    }
}

static void init(double *g, int n) {
    for (int i = 0; i < n * n; i++) {
        g[i] = (i % 7 == 0) ? 100.0 : (double)(i % 13);
    }
}

int main(int argc, char **argv) {
    int n = (int)arg_or(argc, argv, 1024);
    int iters = 50;
    double *a = malloc(sizeof(double) * n * n), *b = malloc(sizeof(double) * n * n);
    double *c = malloc(sizeof(double) * n * n), *d = malloc(sizeof(double) * n * n);
    if (!a || !b || !c || !d) {
        return report("stencil", 0, 0);
    }
    init(a, n); memcpy(b, a, sizeof(double) * n * n);
    init(c, n); memcpy(d, c, sizeof(double) * n * n);
    double t0 = now_seconds();
    for (int i = 0; i < iters; i++) {
        step(i % 2 ? b : a, i % 2 ? a : b, n);
    }
    double t = now_seconds() - t0;
    for (int i = 0; i < iters; i++) {
        step_serial(i % 2 ? d : c, i % 2 ? c : d, n);
    }
    int ok = memcmp(a, c, sizeof(double) * n * n) == 0 && memcmp(b, d, sizeof(double) * n * n) == 0;
    return report("stencil", t, ok);
}
