//! The distributions behind the drift p-values, as scipy computes them: the two-sample Kolmogorov–Smirnov
//! p-value of `scipy.stats.ks_2samp(method='auto')` (the exact lattice-path probability for samples of at
//! most 10,000, `kstwo.sf` otherwise) and the chi-square survival function.
//!
//! Written by hand from scipy 1.17's `_stats_py.py`, `_stats_pythran.py` and `_ksstats.py`, because no
//! crate computes scipy's `kstwo` (the finite-n Kolmogorov distribution, Simard & L'Ecuyer's choice of
//! algorithm per region) nor the exact two-sample probability. Two deliberate differences, both exact
//! algorithms for the same number, held to scipy by `fixtures/drift.json`: the Pomeranz recursion scipy uses
//! for n ≤ 140 and 0.754693 < n·d² ≤ 4 is replaced by the Durbin matrix (which scipy uses next to it), and
//! cephes' one-sided Smirnov sum, whose every term scipy forms anew in double-double arithmetic, is summed
//! here in `f64` from a first term taken as an exact-base power and each next term as the last times a
//! ratio (its terms are all positive, so nothing cancels; 1.1e-11 of scipy on the fixtures).

/// Which p-value `ks_2samp` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsMethod {
    /// The exact probability over lattice paths (both samples of at most 10,000).
    Exact,
    /// `kstwo.sf(d, round(n1·n2 / (n1 + n2)))`.
    Asymptotic,
}

/// `ks_2samp`'s 'auto' choice: exact when both samples hold at most this many values.
const MAX_EXACT_N: usize = 10_000;

/// The two-sided p-value of the two-sample KS statistic `d` for samples of `n1` and `n2` values, and the
/// statistic as scipy reports it (the exact path rounds it to a multiple of 1/lcm(n1, n2)).
pub fn ks_two_sample(n1: usize, n2: usize, d: f64) -> (f64, f64, KsMethod) {
    if n1.max(n2) <= MAX_EXACT_N
        && let Some((d, p)) = ks_exact(n1 as u64, n2 as u64, d)
    {
        return (d, p.clamp(0.0, 1.0), KsMethod::Exact);
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = (m * n / (m + n)).round_ties_even();
    (
        d,
        kstwo_sf(en as u64, d).clamp(0.0, 1.0),
        KsMethod::Asymptotic,
    )
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// scipy's `_attempt_exact_2kssamp` (two-sided): `None` where scipy falls back to the asymptotic p-value.
pub fn ks_exact(n1: u64, n2: u64, d: f64) -> Option<(f64, f64)> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let g = gcd(n1, n2);
    let lcm = (n1 / g).checked_mul(n2)?;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return Some((d, 1.0));
    }
    let p = if n1 == n2 {
        probability_outside_square(n1, h)
    } else {
        outer_probability_inside_method(n1, n2, g, h)
    };
    (p.is_finite() && (0.0..=1.0).contains(&p)).then_some((d, p))
}

/// The share of lattice paths leaving the band |x − y| < h (scipy's `_compute_prob_outside_square`).
fn probability_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as f64, h as f64);
    let mut total = 0.0;
    let mut k = (n / h).floor();
    while k >= 0.0 {
        let mut p1 = 1.0;
        let mut j = 0.0;
        while j < h {
            p1 = (n - k * h - j) * p1 / (n + k * h + j + 1.0);
            j += 1.0;
        }
        total = p1 * (1.0 - total);
        k -= 1.0;
    }
    2.0 * total
}

/// The share of lattice paths from (0, 0) to (m, n) that leave |x/m − y/n| < h/lcm (scipy's
/// `_compute_outer_prob_inside_method`, Viehmann's recursion for 1 − p).
fn outer_probability_inside_method(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = ((m / g) as f64, (n / g) as f64);
    let (h, n_f) = (h as f64, n as f64);
    let mut min_j = 0usize;
    let mut max_j = ((h / mg).ceil() as usize).min(n as usize + 1);
    let mut current_length = max_j - min_j;
    let length = (2 * max_j + 2).min(n as usize + 1);
    let mut column = vec![1.0f64; length];
    column[min_j..max_j].fill(0.0);
    for i in 1..=m {
        let i_f = i as f64;
        let (last_min_j, last_length) = (min_j, current_length);
        min_j = (((ng * i_f - h) / mg).floor() + 1.0).max(0.0) as usize;
        min_j = min_j.min(n as usize);
        max_j = (((ng * i_f + h) / mg).ceil().min(n_f + 1.0)) as usize;
        if max_j <= min_j {
            return 1.0;
        }
        let mut value = if min_j == 0 { 0.0 } else { 1.0 };
        for jj in 0..max_j - min_j {
            let j = (jj + min_j) as f64;
            value = (column[jj + min_j - last_min_j] * i_f + value * j) / (i_f + j);
            column[jj] = value;
        }
        current_length = max_j - min_j;
        if last_length > current_length {
            column[max_j - min_j..max_j - min_j + (last_length - current_length)].fill(1.0);
        }
    }
    column[max_j - min_j - 1]
}

/// `scipy.stats.kstwo.sf(x, n)`: Pr(D_n ≥ x) for the two-sided one-sample statistic (scipy's `_kolmogn`).
pub fn kstwo_sf(n: u64, x: f64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let n_f = n as f64;
    let t = n_f * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            (1..=n).fold(1.0, |product, i| {
                product * (i as f64 * (1.0 / n_f) * (2.0 * t - 1.0))
            })
        } else {
            (log_factorial_over_power(n_f) + n_f * (2.0 * t - 1.0).ln()).exp()
        };
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    if t >= n_f - 1.0 {
        return (2.0 * (1.0 - x).powf(n_f)).clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let nx_squared = t * x;
    if n <= 140 {
        if nx_squared <= 4.0 {
            return (1.0 - durbin_matrix_cdf(n, x)).clamp(0.0, 1.0);
        }
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    if nx_squared >= 370.0 {
        return 0.0;
    }
    if nx_squared >= 2.2 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let cdf = if n <= 100_000 && n_f * x.powf(1.5) <= 1.4 {
        durbin_matrix_cdf(n, x)
    } else {
        pelz_good_cdf(n_f, x)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}

/// log(n! / nⁿ) by Stirling's series with n·log(n) removed up front (scipy's
/// `_log_nfactorial_div_n_pow_n`).
fn log_factorial_over_power(n: f64) -> f64 {
    // scipy's digits, kept as written there.
    #[allow(clippy::excessive_precision)]
    const STIRLING: [f64; 8] = [
        -2.955065359477124183e-2,
        6.4102564102564102564e-3,
        -1.9175269175269175269e-3,
        8.4175084175084175084e-4,
        -5.952380952380952381e-4,
        7.9365079365079365079e-4,
        -2.7777777777777777778e-3,
        8.3333333333333333333e-2,
    ];
    let rn = 1.0 / n;
    let series = STIRLING
        .iter()
        .fold(0.0, |sum, coefficient| sum * (rn / n) + coefficient);
    n.ln() / 2.0 - n + (2.0 * std::f64::consts::PI).ln() / 2.0 + rn * series
}

/// 2¹²⁸, the rescaling step of the Durbin matrix powers.
const SCALE: f64 = 3.402_823_669_209_385e38;
const SCALE_EXPONENT: i64 = 128;

/// Pr(D_n ≤ d) by Durbin's matrix (Marsaglia, Tsang and Wang's form; scipy's `_kolmogn_DMTW`).
fn durbin_matrix_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0; m];
    let mut factor = 1.0;
    for j in 1..=m {
        w[j - 1] = factor;
        factor /= j as f64;
        v[j - 1] *= factor;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tt) * factor;
    let mut matrix = vec![0.0; m * m];
    for i in 1..m {
        for row in i - 1..m {
            matrix[row * m + i] = w[row - (i - 1)];
        }
    }
    for row in 0..m {
        matrix[row * m] = v[row];
    }
    for column in 0..m {
        matrix[(m - 1) * m + column] = v[m - 1 - column];
    }
    let mut power = vec![0.0; m * m];
    for i in 0..m {
        power[i * m + i] = 1.0;
    }
    let (mut remaining, mut exponent, mut matrix_exponent) = (n, 0i64, 0i64);
    while remaining > 0 {
        if remaining % 2 == 1 {
            power = multiply(&power, &matrix, m);
            exponent += matrix_exponent;
        }
        matrix = multiply(&matrix, &matrix, m);
        matrix_exponent *= 2;
        if matrix[(k - 1) * m + k - 1].abs() > SCALE {
            for entry in &mut matrix {
                *entry /= SCALE;
            }
            matrix_exponent += SCALE_EXPONENT;
        }
        remaining /= 2;
    }
    let mut p = power[(k - 1) * m + k - 1];
    let n_f = n as f64;
    for i in 1..=n {
        p = i as f64 * p / n_f;
        if p.abs() < 1.0 / SCALE {
            p *= SCALE;
            exponent -= SCALE_EXPONENT;
        }
    }
    scale_by_power_of_two(p, exponent).clamp(0.0, 1.0)
}

fn multiply(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut product = vec![0.0; m * m];
    for row in 0..m {
        for inner in 0..m {
            let left = a[row * m + inner];
            if left == 0.0 {
                continue;
            }
            let out = &mut product[row * m..row * m + m];
            for (cell, right) in out.iter_mut().zip(&b[inner * m..inner * m + m]) {
                *cell += left * right;
            }
        }
    }
    product
}

/// `value · 2^exponent` without overflowing the intermediate power (`ldexp`).
fn scale_by_power_of_two(mut value: f64, mut exponent: i64) -> f64 {
    while exponent > 1000 {
        value *= 2f64.powi(1000);
        exponent -= 1000;
    }
    while exponent < -1000 {
        value *= 2f64.powi(-1000);
        exponent += 1000;
    }
    value * 2f64.powi(exponent as i32)
}

/// The Pelz–Good approximation of Pr(D_n ≤ x) (scipy's `_kolmogn_PelzGood`).
fn pelz_good_cdf(n: f64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let (pi2, pi4, pi6) = (PI * PI, PI.powi(4), PI.powi(6));
    let sqrt_2pi = (2.0 * PI).sqrt();
    let z = n.sqrt() * x;
    let (z2, z3, z4, z6) = (z.powi(2), z.powi(3), z.powi(4), z.powi(6));
    let q_log = -pi2 / 8.0 / z2;
    if q_log < -708.0 {
        return 0.0;
    }
    let q = q_log.exp();
    let (k1a, k1b) = (-z2, pi2 / 4.0);
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut terms = [0.0f64; 4];
    let max_k = (16.0 * z / PI).ceil() as i64;
    for k in (1..=max_k).rev() {
        let m = (2 * k - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let q_power = q.powf((8 * k) as f64);
        let coefficients = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (term, coefficient) in terms.iter_mut().zip(coefficients) {
            *term = *term * q_power + coefficient;
        }
    }
    let divisors = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (term, divisor) in terms.iter_mut().zip(divisors) {
        *term = *term * q * sqrt_2pi / divisor;
    }
    let q = (-pi2 / 2.0 / z2).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let (mut k2_extra, mut k3_extra) = (0.0, 0.0);
    for k in (1..=max_k).rev() {
        let k_f = k as f64;
        let k2 = k_f * k_f;
        let q_power = q.powf(k2);
        let k_pi = PI * k_f;
        k2_extra += k2 * q_power;
        k3_extra += (sqrt3z + k_pi) * (sqrt3z - k_pi) * k2 * q_power;
    }
    terms[2] += k2_extra * (pi2 * sqrt_2pi / (-36.0 * z3));
    terms[3] += k3_extra * (pi2 * sqrt_2pi / (216.0 * z6));
    for (index, term) in terms.iter_mut().enumerate() {
        *term /= n.powf(index as f64 / 2.0);
    }
    terms.iter().sum()
}

/// `scipy.special.smirnov(n, x)`: Pr(D⁺_n ≥ x), by the Birnbaum–Tingey sum (cephes `_smirnov`, lower sum).
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if !(0.0..=1.0).contains(&x) || n == 0 {
        return 1.0;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let n_f = n as f64;
    // n·x as an unevaluated sum, so that floor(n·x) and the remainder are exact.
    let nx_high = n_f * x;
    let nx_low = n_f.mul_add(x, -nx_high);
    let mut floor = nx_high.floor();
    let mut alpha = (nx_high - floor) + nx_low;
    if alpha < 0.0 {
        floor -= 1.0;
        alpha += 1.0;
    }
    if alpha >= 1.0 {
        floor += 1.0;
        alpha = 0.0;
    }
    let nx_floor = floor as u64;
    if nx_floor == 0 || (nx_floor == 1 && alpha == 0.0) {
        return 1.0 - x * (1.0 + x).powf(n_f - 1.0);
    }
    if -2.0 * n_f * x * x < -708.396_418_532_264_1 {
        return 0.0;
    }
    if nx_floor >= n - 1 {
        return (1.0 - x).powf(n_f);
    }
    if n > 1_000_000 {
        let log_p = -(6.0 * n_f * x + 1.0).powi(2) / 18.0 / n_f;
        return if log_p < -std::f64::consts::LN_2 {
            log_p.exp()
        } else {
            1.0 + log_p.exp_m1()
        };
    }
    // Terms v = 0 ..= n1mxfl of x·C(n, v)·(1 − x − v/n)^(n−v)·(x + v/n)^(v−1), all positive. Each term is
    // kept as a mantissa and a binary exponent (the powers under- and overflow f64 long before the term
    // does), its bases as unevaluated sums so that raising them to a power of up to n loses nothing.
    let mut last = n - nx_floor - if alpha == 0.0 { 0 } else { 1 };
    if alpha == 0.0 {
        last -= 1;
    }
    let terms = last + 1;
    // A_0 = (1 − x)^n / x from the power of an exact base; then A_(v+1) = A_v · R_v with
    // R_v = (n−v)/(v+1) · (v+1+nx)/(n−v−nx) · (1 − 1/(n−v−nx))^(n−v−1) · (1 + 1/(v+nx))^(v−1), whose
    // powers are exp(k · log1p(±1/m)) of arguments near ±1, so each ratio is good to a few ulps and the
    // product drifts by at most about terms × 4 ulps (3e-10 for n = 500,000; √terms in practice). This is
    // some four times faster than forming every term's powers anew, which matters: the terms are spread
    // over all of 0..n, so the sum costs O(n).
    let below = divide(add(two_sum(n_f, -nx_high), -nx_low), n_f);
    let (mut mantissa, mut exponent) = power_scaled(below, n);
    let (over_x, over_x_exponent) = frexp(1.0 / x);
    (mantissa, exponent) = renormalise(mantissa * over_x, exponent + over_x_exponent);
    let (mut sum, mut compensation) = (0.0f64, 0.0f64);
    for v in 0..terms {
        let term = scale_by_power_of_two(mantissa, exponent);
        let total = sum + term;
        compensation += (sum - total) + term;
        sum = total;
        if v == terms - 1 {
            break;
        }
        if term != 0.0 {
            if 4.0 * (terms - v) as f64 * term < f64::EPSILON * sum {
                break;
            }
        } else if v > n / 2 {
            break;
        }
        let v_f = v as f64;
        let below_count = (n_f - v_f - nx_high) - nx_low;
        let above_count = (v_f + nx_high) + nx_low;
        let powers = (n_f - v_f - 1.0) * (-1.0 / below_count).ln_1p()
            + (v_f - 1.0) * (1.0 / above_count).ln_1p();
        let ratio = (n_f - v_f) / (v_f + 1.0) * ((above_count + 1.0) / below_count) * powers.exp();
        (mantissa, exponent) = renormalise(mantissa * ratio, exponent);
    }
    (x * (sum + compensation)).clamp(0.0, 1.0)
}

fn renormalise(mantissa: f64, exponent: i64) -> (f64, i64) {
    let (mantissa, shift) = frexp(mantissa);
    (mantissa, exponent + shift)
}

/// A double-double: `high + low` with |low| ≤ ulp(high)/2.
type Double = (f64, f64);

fn two_sum(a: f64, b: f64) -> Double {
    let sum = a + b;
    let b_virtual = sum - a;
    let error = (a - (sum - b_virtual)) + (b - b_virtual);
    (sum, error)
}

fn add((high, low): Double, b: f64) -> Double {
    let (sum, error) = two_sum(high, b);
    two_sum(sum, error + low)
}

fn divide((high, low): Double, divisor: f64) -> Double {
    let quotient = high / divisor;
    let remainder = (-quotient).mul_add(divisor, high) + low;
    two_sum(quotient, remainder / divisor)
}

/// `x = mantissa · 2^exponent` with the mantissa in [0.5, 1) (C's `frexp`), for finite x.
fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    if biased == 0 {
        let (mantissa, exponent) = frexp(x * 2f64.powi(64));
        return (mantissa, exponent - 64);
    }
    let mantissa = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (mantissa, biased - 1022)
}

/// (high + low)^m as a mantissa in [0.5, 1) and an exponent: `pow` of the high part, corrected for the low
/// part (cephes' `pow_D`), taken in chunks of 512 so that no intermediate power underflows (`pow2Scaled_D`).
fn power_scaled((high, low): Double, m: u64) -> (f64, i64) {
    if m == 0 {
        return (0.5, 1);
    }
    let ratio = low / high;
    let m_f = m as f64;
    let mut adjust = m_f * ratio;
    if adjust.abs() > 1e-8 {
        adjust = if adjust.abs() < 1e-4 {
            adjust + (m_f * ratio) * ((m_f - 1.0) / 2.0 * ratio)
        } else {
            (m_f * ratio.ln_1p()).exp_m1()
        };
    }
    let (mantissa, exponent) = power_of_mantissa(high, m);
    let (mantissa, shift) = frexp(mantissa + mantissa * adjust);
    (mantissa, exponent + shift)
}

fn power_of_mantissa(x: f64, m: u64) -> (f64, i64) {
    const CHUNK: u64 = 512;
    let (y, y_exponent) = frexp(x);
    let base_exponent = y_exponent * m as i64;
    if m <= CHUNK {
        let (mantissa, exponent) = frexp(y.powf(m as f64));
        return (mantissa, exponent + base_exponent);
    }
    let (chunk, chunk_exponent) = frexp(y.powf(CHUNK as f64));
    let (quotient, remainder) = (m / CHUNK, m % CHUNK);
    let (chunks, chunks_exponent) = power_of_mantissa(chunk, quotient);
    let (rest, rest_exponent) = frexp(y.powf(remainder as f64));
    let (mantissa, exponent) = frexp(chunks * rest);
    (
        mantissa,
        exponent
            + chunks_exponent
            + rest_exponent
            + chunk_exponent * quotient as i64
            + base_exponent,
    )
}

/// `scipy.stats.chi2.sf(x, dof)`: the regularised upper incomplete gamma Q(dof/2, x/2), as cephes
/// `igamc` computes it: the power series of P for x < a + 1 (where Q ≥ about 0.4, so 1 − P loses
/// nothing), the continued fraction of Q otherwise. Written by hand: puruspe's `gammq` returns NaN for
/// large a (Q(500, 200)), and statrs brings nalgebra.
pub fn chi_square_sf(dof: f64, x: f64) -> f64 {
    if x <= 0.0 || dof <= 0.0 {
        return 1.0;
    }
    upper_regularised_gamma(dof / 2.0, x / 2.0).clamp(0.0, 1.0)
}

fn upper_regularised_gamma(a: f64, x: f64) -> f64 {
    let log_prefactor = a * x.ln() - x - ln_gamma(a);
    if log_prefactor < -745.0 {
        return if x < a + 1.0 { 1.0 } else { 0.0 };
    }
    let prefactor = log_prefactor.exp();
    if x < a + 1.0 {
        // P = prefactor · Σ xⁿ / (a (a+1) … (a+n)).
        let (mut term, mut sum, mut denominator) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            denominator += 1.0;
            term *= x / denominator;
            sum += term;
            if term.abs() < sum.abs() * f64::EPSILON / 4.0 {
                break;
            }
        }
        return 1.0 - prefactor * sum;
    }
    // Q = prefactor / (x + 1 − a − 1·(1 − a) / (x + 3 − a − …)), by Lentz's method.
    let tiny = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / tiny;
    let mut d = 1.0 / b;
    let mut fraction = d;
    for i in 1..10_000 {
        let i = i as f64;
        let an = -i * (i - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < tiny {
            d = tiny;
        }
        c = b + an / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = d * c;
        fraction *= delta;
        if (delta - 1.0).abs() < f64::EPSILON / 4.0 {
            break;
        }
    }
    prefactor * fraction
}

/// log Γ(a) for a > 0: Stirling's series from a ≥ 10 (error below 1e-16 relative there), shifted up by
/// the recurrence Γ(a) = Γ(a + k) / (a (a+1) … (a+k−1)) below.
fn ln_gamma(a: f64) -> f64 {
    let mut shift = 1.0;
    let mut z = a;
    while z < 10.0 {
        shift *= z;
        z += 1.0;
    }
    let inverse = 1.0 / z;
    let inverse2 = inverse * inverse;
    let series = inverse
        * (1.0 / 12.0
            - inverse2
                * (1.0 / 360.0
                    - inverse2 * (1.0 / 1260.0 - inverse2 * (1.0 / 1680.0 - inverse2 / 1188.0))));
    (z - 0.5) * z.ln() - z + 0.5 * (2.0 * std::f64::consts::PI).ln() + series - shift.ln()
}
