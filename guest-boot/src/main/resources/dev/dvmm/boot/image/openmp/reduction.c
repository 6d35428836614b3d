/* Parallel reduction with an exact, checkable result: sum of i*i mod 1000003 over [0, n). */
#include "common.h"

int main(int argc, char **argv) {
    long n = arg_or(argc, argv, 50000000);
    double t0 = now_seconds();
    unsigned long long sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (long i = 0; i < n; i++) {
        sum += (unsigned long long)(i * i % 1000003);
    }
    double t = now_seconds() - t0;
    unsigned long long check = 0;
    for (long i = 0; i < n; i++) {
        check += (unsigned long long)(i * i % 1000003);
    }
    return report("reduction", t, sum == check);
}
