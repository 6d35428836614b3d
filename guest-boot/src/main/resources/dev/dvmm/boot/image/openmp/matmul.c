/* Dense matrix multiply C = A x B (doubles, i-k-j order); checked against a serial multiply. */
#include "common.h"
#include <string.h>

int main(int argc, char **argv) {
    int n = (int)arg_or(argc, argv, 384);
    double *a = malloc(sizeof(double) * n * n), *b = malloc(sizeof(double) * n * n);
    double *c = calloc((size_t)n * n, sizeof(double)), *s = calloc((size_t)n * n, sizeof(double));
    if (!a || !b || !c || !s) {
        return report("matmul", 0, 0);
    }
    for (int i = 0; i < n * n; i++) {
        a[i] = (double)(i % 17) - 8.0;
        b[i] = (double)(i % 11) * 0.5;
    }
    double t0 = now_seconds();
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < n; k++) {
            double aik = a[i * n + k];
            for (int j = 0; j < n; j++) {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    double t = now_seconds() - t0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < n; k++) {
            double aik = a[i * n + k];
            for (int j = 0; j < n; j++) {
                s[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    return report("matmul", t, memcmp(c, s, sizeof(double) * n * n) == 0);
}
