//! The built-in workload: what a grid site's HTCondor queue looks like over
//! a day, drawn from distributions fitted to the real traces in
//! `tests/data/traces/` (read by `tests/sim_traces.rs`, which checks these
//! numbers against them; the binary embeds only the fitted numbers).
//!
//! | what | distribution | fitted to |
//! |---|---|---|
//! | arrivals | bursts (a user submitting a cluster) by a Poisson process whose hourly rate follows `HOURLY` | LPC-EGEE's submissions per hour of day |
//! | jobs per burst | 1 + geometric with mean `BURST_MEAN - 1`; one burst in `BIG_BURST_EVERY` is a big cluster of `BIG_BURST` jobs | LPC-EGEE: 2.0 jobs per burst (within 10 s); big clusters are how HTCondor users submit |
//! | runtime | log-normal, `ln` mean `RUNTIME_LN_MU`, `ln` sd `RUNTIME_LN_SIGMA`, cut to [10 s, 2 days] | LPC-EGEE runtimes (all single-core grid jobs) |
//! | cores | 1 with probability `SINGLE_CORE`; else 2, 4, 8 in HPC2N's proportions | LPC-EGEE is 100% single-core; HPC2N's multi-core jobs of up to 8 cores |
//! | memory | 2 GB a core times a factor uniform in [0.5, 1.5], in 256 MB steps | HTCondor's usual request |
//! | cloud-marked | `cloud_share` of jobs (default 0.6) | a site bursting most of its load |

use super::trace::TraceJob;
use super::world::Rng;

/// Relative submission rate per hour of day (LPC-EGEE's jobs that ran,
/// hours 0–23 of its own clock).
pub const HOURLY: [f64; 24] = [
    1.00, 1.33, 1.39, 1.61, 1.39, 1.11, 1.13, 0.99, 0.98, 0.92, 0.91, 0.91, 0.88, 0.84, 0.82, 0.79,
    0.73, 0.77, 0.69, 0.74, 0.97, 0.88, 1.02, 1.21,
];
pub const BURST_MEAN: f64 = 2.0;
pub const BIG_BURST_EVERY: u32 = 40;
pub const BIG_BURST: u32 = 200;
pub const RUNTIME_LN_MU: f64 = 3.81;
pub const RUNTIME_LN_SIGMA: f64 = 2.77;
pub const SINGLE_CORE: f64 = 0.8;
/// HPC2N's shares of 2-, 4- and 8-core jobs among its 2–8-core jobs.
pub const MULTI_CORE: [(u32, f64); 3] = [(2, 0.47), (4, 0.31), (8, 0.22)];

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub seconds: i64,
    /// Mean jobs per day.
    pub jobs_per_day: f64,
    pub cloud_share: f64,
    pub seed: u64,
}

impl Default for Workload {
    fn default() -> Workload {
        Workload {
            seconds: 86_400,
            jobs_per_day: 6_000.0,
            cloud_share: 0.6,
            seed: 2026,
        }
    }
}

fn geometric(rng: &mut Rng, mean: f64) -> u32 {
    // Failures before the first success with p = 1 / (1 + mean).
    let p = 1.0 / (1.0 + mean);
    (rng.unit().max(f64::MIN_POSITIVE).ln() / (1.0 - p).ln()).floor() as u32
}

fn cores(rng: &mut Rng) -> u32 {
    if rng.unit() < SINGLE_CORE {
        return 1;
    }
    let mut u = rng.unit();
    for (c, p) in MULTI_CORE {
        if u < p {
            return c;
        }
        u -= p;
    }
    8
}

/// Draws the jobs, in submission order.
pub fn generate(w: &Workload) -> Vec<TraceJob> {
    let mut rng = Rng::new(w.seed);
    let mean_hourly: f64 = HOURLY.iter().sum::<f64>() / 24.0;
    // Bursts per second at an average hour: big bursts included.
    let jobs_per_burst = BURST_MEAN * (1.0 - 1.0 / BIG_BURST_EVERY as f64)
        + BIG_BURST as f64 / BIG_BURST_EVERY as f64;
    let bursts_per_sec = w.jobs_per_day / 86_400.0 / jobs_per_burst;
    let mut jobs = Vec::new();
    let mut t = 0.0f64;
    let mut n = 0u32;
    loop {
        // Thinning: draw at the peak rate, keep by the hour's share.
        let peak = HOURLY.iter().cloned().fold(0.0, f64::max) / mean_hourly;
        t += -rng.unit().max(f64::MIN_POSITIVE).ln() / (bursts_per_sec * peak);
        if t >= w.seconds as f64 {
            break;
        }
        let hour = ((t as i64 / 3600) % 24) as usize;
        if rng.unit() * peak > HOURLY[hour] / mean_hourly {
            continue;
        }
        n += 1;
        let size = if n % BIG_BURST_EVERY == 0 {
            BIG_BURST
        } else {
            1 + geometric(&mut rng, BURST_MEAN - 1.0)
        };
        // A burst is one cluster: the same request, its own runtimes.
        let c = cores(&mut rng);
        let factor = 0.5 + rng.unit();
        let memory_mb = ((2048.0 * f64::from(c) * factor / 256.0).round() as u64).max(1) * 256;
        let cloud = rng.unit() < w.cloud_share;
        for k in 0..size {
            let runtime = (RUNTIME_LN_MU + RUNTIME_LN_SIGMA * rng.normal())
                .exp()
                .clamp(10.0, 2.0 * 86_400.0) as i64;
            jobs.push(TraceJob {
                submit: t as i64 + i64::from(k / 50),
                runtime,
                cpus: c,
                memory_mb,
                cloud,
                requested: None,
            });
        }
    }
    jobs.sort_by_key(|j| j.submit);
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_jobs() {
        let w = Workload::default();
        assert_eq!(generate(&w), generate(&w));
        let other = generate(&Workload { seed: 1, ..w });
        assert_ne!(generate(&w), other);
    }

    #[test]
    fn the_sample_follows_the_documented_distributions() {
        let w = Workload {
            seconds: 20 * 86_400,
            ..Workload::default()
        };
        let jobs = generate(&w);
        let per_day = jobs.len() as f64 / 20.0;
        assert!((per_day / w.jobs_per_day - 1.0).abs() < 0.15, "{per_day}");
        let single = jobs.iter().filter(|j| j.cpus == 1).count() as f64 / jobs.len() as f64;
        // Big bursts are one shape each, so the job share wobbles more
        // than the burst share.
        assert!((single - SINGLE_CORE).abs() < 0.15, "{single}");
        let mut ln: Vec<f64> = jobs.iter().map(|j| (j.runtime as f64).ln()).collect();
        ln.sort_by(f64::total_cmp);
        let median = ln[ln.len() / 2];
        assert!((median - RUNTIME_LN_MU).abs() < 0.3, "{median}");
        let cloud = jobs.iter().filter(|j| j.cloud).count() as f64 / jobs.len() as f64;
        assert!((cloud - w.cloud_share).abs() < 0.15, "{cloud}");
    }
}
