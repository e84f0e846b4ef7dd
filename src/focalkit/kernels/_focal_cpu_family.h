/* focalkit CPU kernels: the focal family as parameters of the shared passes (issue 14).
 *
 * Included by _focal_cpu_impl.h (once per instruction-set variant, after the scalar math and the
 * plain sigmoid block steps). The plain focal loss never runs this code: a call passes a NULL
 * fk_family and keeps the plain block steps; a family call passes one fk_family, and the pass picks
 * the block step of its kind once per call, outside the element loop. Every block step has the
 * plain one's shape: branch-free, vectorizable, float32, from the logits (log-sigmoids, never a
 * clamped probability).
 *
 * Sigmoid pass, per element with p = sigmoid(x), pn = 1 - p (no cancellation), t the target,
 * q = 1 - p_t = p (1 - t) + pn t, ce = BCE-with-logits(x, t), sp+ = -log(1 - p) = softplus(x),
 * sp- = -log p = softplus(-x):
 *   focal (kind 0):  alpha_t q^g ce + eps q^(g + 1), g = gamma or a piecewise gamma at p_t = 1 - q
 *                    (a constant for the gradient);
 *                    d/dx = alpha_t q^g [(p - t) + g (p pn / q)(1 - 2t) ce] + eps (g + 1) q^g p pn (1 - 2t)
 *   asymmetric (1):  t pn^gp sp- + (1 - t) pm^gn L,  pm = max(p - clip, 0), L = -log(1 - pm)
 *                    (= sp+ for clip = 0);
 *                    d/dx = -t pn^gp (gp p sp- + pn)
 *                           + [pm > 0] (1 - t) p (gn pm^gn pn (L / pm) + pm^gn pn / (1 - pm))
 *   quality (2):     |t - p|^b ce;  d/dx = |d|^b (d + b sign(d) (p pn / |d|) ce), d = p - t
 *   varifocal (3):   t > 0: w ce (w = t, or 1 when not iou_weighted), d/dx = w (p - t);
 *                    t = 0: alpha p^g ce, d/dx = alpha p^g (g pn ce + p) (alpha None: 0.75)
 * Ratios whose denominator vanishes are taken at their limit or as 0 where their factor is 0
 * (no 0 * inf): the results stay finite at logits +-1e4, gamma < 1, clip = 0, t exactly 0 or 1.
 */

#ifndef FK_FAMILY_TYPES
#define FK_FAMILY_TYPES
/* The parameter set of one family call (the Python side's Variant plus a piecewise gamma), passed
 * by pointer through ctypes (focalkit/kernels/cpu.py declares the same layout). A constant gamma is
 * a piecewise one with no threshold: th[] = +inf, gv[0] = gamma. */
#define FK_MAX_TH 4
typedef struct {
    int32_t kind;         /* 0 focal (Poly-1, piecewise gamma), 1 asymmetric, 2 quality, 3 varifocal */
    int32_t iou_weighted; /* varifocal: positives weighted by their target score */
    float epsilon;        /* Poly-1 coefficient (kind 0) */
    float gamma_neg;      /* asymmetric: exponent of the negatives */
    float clip;           /* asymmetric: probability shift of the negatives */
    float th[FK_MAX_TH];  /* piecewise gamma: increasing thresholds, unused ones +inf */
    float gv[FK_MAX_TH + 1]; /* gamma below th[0], from th[0], ... */
} fk_family;
#endif

#define fk_pw_gamma FK_FN(fk_pw_gamma)
#define fk_pow_g FK_FN(fk_pow_g)
#define sig_fam_focal_g0 FK_FN(sig_fam_focal_g0)
#define sig_fam_focal_g1 FK_FN(sig_fam_focal_g1)
#define sig_fam_focal_g2 FK_FN(sig_fam_focal_g2)
#define sig_fam_focal_gx FK_FN(sig_fam_focal_gx)
#define sig_fam_focal_pw FK_FN(sig_fam_focal_pw)
#define sig_fam_asym FK_FN(sig_fam_asym)
#define sig_fam_quality FK_FN(sig_fam_quality)
#define sig_fam_varifocal FK_FN(sig_fam_varifocal)
#define sig_fam_for FK_FN(sig_fam_for)

/* The piecewise gamma at p_t: gv[i] for th[i-1] <= pt < th[i] (branch-free; NaN -> gv[0]). */
static inline float fk_pw_gamma(const float *restrict th, const float *restrict gv, float pt) {
    float g = gv[0];
    g = pt >= th[0] ? gv[1] : g;
    g = pt >= th[1] ? gv[2] : g;
    g = pt >= th[2] ? gv[3] : g;
    g = pt >= th[3] ? gv[4] : g;
    return g;
}

/* q^g for q in [0, 1] given log q, g >= 0 varying per element: 0^0 = 1, 0^g = 0. */
static inline float fk_pow_g(float q, float logq, float g) {
    float r = q == 0.0f ? 0.0f : fk_exp_neg(g * logq);
    return g == 0.0f ? 1.0f : r;
}

/* The shared head of every block step: p, pn, softplus pieces and ce for one element. */
#define SIG_FAM_HEAD                                                                           \
    float x = xs[i], t = ts[i];                                                                \
    float e = fk_exp_neg(-fabsf(x));                                                           \
    float inv = 1.0f / (1.0f + e);                                                             \
    float p = x >= 0.0f ? inv : e * inv;                                                       \
    float pn = x >= 0.0f ? e * inv : inv;                                                      \
    float mx = -x > 0.0f ? -x : 0.0f;                                                          \
    float l1p = fk_log1p_unit(e);                                                              \
    float ce = ((1.0f - t) * x + mx) + l1p;                                                    \
    int valid = vs[i] != 0.0f;

typedef float (*sig_fam_fn)(const float *, const float *, const float *, float *, float *, int64_t,
                            float, float, float, const fk_family *);

/* kind focal: one copy per kind of gamma (0, 1, 2: q^g is a multiply; other constants: exp(g log q);
 * piecewise: g per element), chosen once per call, as the plain block steps. */
#define SIG_FAM_FOCAL(NAME, GAMMA_OF, MOD)                                                     \
    static float NAME(const float *restrict xs, const float *restrict ts,                      \
                      const float *restrict vs, float *restrict ls_, float *restrict gs,       \
                      int64_t m, float a, float ascale, float gamma, const fk_family *fam) {   \
        float th[FK_MAX_TH], gv[FK_MAX_TH + 1];                                                \
        for (int k = 0; k < FK_MAX_TH; k++) th[k] = fam->th[k];                                \
        for (int k = 0; k <= FK_MAX_TH; k++) gv[k] = fam->gv[k];                               \
        const float eps = fam->epsilon;                                                        \
        (void)th; (void)gv;                                                                    \
        float sum = 0.0f;                                                                      \
        FK_SIMD_SUM(sum)                                                                       \
        for (int64_t i = 0; i < m; i++) {                                                      \
            SIG_FAM_HEAD                                                                       \
            float q = p * (1.0f - t) + pn * t;                                                 \
            float at = (a * t + (1.0f - a) * (1.0f - t)) * ascale;                             \
            float g = GAMMA_OF;                                                                \
            float mod = MOD;                                                                   \
            float ratio = q > 1e-30f ? p * pn / q : 0.0f;                                      \
            float rce = ratio > 0.0f && q > 1e-30f ? ratio * ce : 0.0f;                        \
            float s = 1.0f - 2.0f * t;                                                         \
            float l = valid ? at * mod * ce + eps * (mod * q) : 0.0f;                          \
            float gr = at * mod * ((p - t) + g * s * rce)                                      \
                       + eps * (g + 1.0f) * mod * (p * pn) * s;                                \
            gs[i] = valid ? gr : 0.0f;                                                         \
            ls_[i] = l;                                                                        \
            sum += l;                                                                          \
        }                                                                                      \
        return sum;                                                                            \
    }

SIG_FAM_FOCAL(sig_fam_focal_g0, 0.0f, 1.0f)
SIG_FAM_FOCAL(sig_fam_focal_g1, 1.0f, q)
SIG_FAM_FOCAL(sig_fam_focal_g2, 2.0f, q * q)
SIG_FAM_FOCAL(sig_fam_focal_gx, gamma, (q == 0.0f ? 0.0f : fk_exp_neg(gamma * fk_log(q))))
SIG_FAM_FOCAL(sig_fam_focal_pw, fk_pw_gamma(th, gv, 1.0f - q), fk_pow_g(q, fk_log(q), g))

static float sig_fam_asym(const float *restrict xs, const float *restrict ts,
                          const float *restrict vs, float *restrict ls_, float *restrict gs,
                          int64_t m, float a, float ascale, float gamma, const fk_family *fam) {
    const float gp = gamma, gn = fam->gamma_neg, clip = fam->clip;
    const int noclip = clip == 0.0f;
    (void)a; (void)ascale;
    float sum = 0.0f;
    FK_SIMD_SUM(sum)
    for (int64_t i = 0; i < m; i++) {
        SIG_FAM_HEAD
        (void)ce;                                     /* both terms have their own log */
        float spn = mx + l1p;                         /* -log p */
        float spp = (x > 0.0f ? x : 0.0f) + l1p;      /* -log(1 - p) */
        float modp = fk_pow_g(pn, -spp, gp);          /* pn^gp, log pn = -softplus(x) */
        float pm = p - clip;
        pm = pm > 0.0f ? pm : 0.0f;
        /* -log(1 - pm): softplus(x) without a shift; else from 1 - pm = pn + clip when pm is
         * large, from log1p(-pm) when it is small (relative accuracy either way) */
        float lcl = pm > 0.5f ? -fk_log(pn + clip) : -fk_log1p(-pm);
        float lneg = noclip ? spp : lcl;
        float logpm = noclip ? -spn : fk_log(pm);
        float modn = fk_pow_g(pm, logpm, gn);
        float lr = pm > 0.0f ? lneg / pm : 1.0f;
        float rn = noclip ? 1.0f : pn / (pn + clip);
        float pnl = pn > 0.0f ? pn * lr : 0.0f;
        float l = t * modp * spn + (1.0f - t) * modn * lneg;
        float gpos = -t * modp * (gp * p * spn + pn);
        float gneg = pm > 0.0f ? (1.0f - t) * p * (gn * modn * pnl + modn * rn) : 0.0f;
        l = valid ? l : 0.0f;
        gs[i] = valid ? gpos + gneg : 0.0f;
        ls_[i] = l;
        sum += l;
    }
    return sum;
}

static float sig_fam_quality(const float *restrict xs, const float *restrict ts,
                             const float *restrict vs, float *restrict ls_, float *restrict gs,
                             int64_t m, float a, float ascale, float gamma, const fk_family *fam) {
    const float b = gamma;
    (void)a; (void)ascale; (void)fam;
    float sum = 0.0f;
    FK_SIMD_SUM(sum)
    for (int64_t i = 0; i < m; i++) {
        SIG_FAM_HEAD
        float d = p * (1.0f - t) - pn * t; /* p - t, exact for hard targets */
        float ad = fabsf(d);
        float mod = fk_pow_g(ad, fk_log(ad), b);
        float rr = ad > 1e-30f ? p * pn / ad : 0.0f;
        float sg = d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f);
        float rce = rr > 0.0f ? rr * ce : 0.0f;
        float l = valid ? mod * ce : 0.0f;
        gs[i] = valid ? mod * (d + b * sg * rce) : 0.0f;
        ls_[i] = l;
        sum += l;
    }
    return sum;
}

static float sig_fam_varifocal(const float *restrict xs, const float *restrict ts,
                               const float *restrict vs, float *restrict ls_, float *restrict gs,
                               int64_t m, float a, float ascale, float gamma, const fk_family *fam) {
    /* alpha of the negatives; without one VarifocalNet's 0.75 (as the eager closed form) */
    const float g = gamma, av = ascale == 1.0f ? a : 0.75f;
    const float iou = fam->iou_weighted ? 1.0f : 0.0f;
    float sum = 0.0f;
    FK_SIMD_SUM(sum)
    for (int64_t i = 0; i < m; i++) {
        SIG_FAM_HEAD
        int pos = t > 0.0f;
        float w = iou * t + (1.0f - iou);
        float modv = fk_pow_g(p, -(mx + l1p), g); /* p^g, log p = -softplus(-x) */
        float pce = pn > 0.0f ? pn * ce : 0.0f;
        float l = pos ? w * ce : av * modv * ce;
        float gr = pos ? w * (p - t) : av * modv * (g * pce + p);
        l = valid ? l : 0.0f;
        gs[i] = valid ? gr : 0.0f;
        ls_[i] = l;
        sum += l;
    }
    return sum;
}

/* The block step of a family call (kind focal: by its gamma, the argument of the pass, which
 * equals gv[0] when there is no threshold). */
static sig_fam_fn sig_fam_for(const fk_family *fam, float gamma) {
    if (fam == NULL) return NULL;
    switch (fam->kind) {
    case 1: return sig_fam_asym;
    case 2: return sig_fam_quality;
    case 3: return sig_fam_varifocal;
    default:
        if (fam->th[0] < INFINITY) return sig_fam_focal_pw;
        switch (fk_gamma_kind(gamma)) {
        case 0: return sig_fam_focal_g0;
        case 1: return sig_fam_focal_g1;
        case 2: return sig_fam_focal_g2;
        default: return sig_fam_focal_gx;
        }
    }
}
