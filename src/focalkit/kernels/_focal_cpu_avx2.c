/* The AVX2 + FMA variant of the CPU kernels (see _focal_cpu_impl.h); _focal_cpu.c calls it only on
 * CPUs that have both. Compiled as a separate unit under `#pragma GCC target`, so the rest of the
 * library stays baseline x86-64 and runs on any CPU. The polynomial steps use FMA (FK_MADD):
 * results differ from the baseline variant's by float32 rounding only. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FK_HAVE_AVX2_VARIANT 1
#pragma GCC target("avx2,fma")
#define FK_ISA avx2
#include "_focal_cpu_impl.h"
#else
typedef int fk_no_avx2_variant; /* not GCC on x86-64: the baseline variant only */
#endif
