/* The AVX-512 (F, VL, BW, DQ) variant of the CPU kernels (see _focal_cpu_impl.h); _focal_cpu.c
 * calls it only on CPUs (and operating systems) that support it. 512-bit vectors are requested
 * explicitly: GCC's generic tuning would otherwise keep 256-bit ones. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,prefer-vector-width=512")
#define FK_ISA avx512
#include "_focal_cpu_impl.h"
#else
typedef int fk_no_avx512_variant; /* not GCC on x86-64: the baseline variant only */
#endif
