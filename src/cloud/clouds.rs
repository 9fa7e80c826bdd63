//! Every site's provider behind the cycle's `CloudPort`, with retries.
//! The imperative shell: it sleeps between attempts (a real clock).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::retry::{retry, Backoff, Clock};
use super::{CloudError, ErrorKind, Instance, Inventory, LaunchRequest, Provider};
use crate::cycle::CloudPort;
use crate::observed::{Observed, Unknown};
use crate::rng::Rng;

pub struct Clouds {
    providers: BTreeMap<String, Box<dyn Provider>>,
    backoff: Backoff,
    rng: Rng,
    clock: Box<dyn Clock>,
}

/// The monotonic clock and a real sleep.
struct RealClock {
    origin: Instant,
    /// Replaces the sleep, when set (tests): the time it stands for is
    /// counted as passed.
    sleep: Option<Box<dyn FnMut(Duration)>>,
    stood_for: Duration,
}

impl Clock for RealClock {
    fn elapsed(&self) -> Duration {
        self.origin.elapsed().saturating_add(self.stood_for)
    }
    fn sleep(&mut self, d: Duration) {
        match &mut self.sleep {
            Some(f) => {
                f(d);
                self.stood_for = self.stood_for.saturating_add(d);
            }
            None => std::thread::sleep(d),
        }
    }
}

/// Every site's provider, built from the config. A site whose client
/// cannot be set up (no region, unknown cloud in clouds.yaml, refused
/// credentials) is an error naming the site.
pub fn connect(
    cfg: &crate::config::Config,
) -> Result<BTreeMap<String, Box<dyn Provider>>, CloudError> {
    use crate::config::Provider as Kind;
    let pool = cfg.pool.name.get_ref();
    let mut out: BTreeMap<String, Box<dyn Provider>> = BTreeMap::new();
    for site in &cfg.sites {
        let name = site.name.get_ref().clone();
        let named = |e: CloudError| CloudError {
            kind: e.kind,
            message: format!("site {name}: {}", e.message),
        };
        let p: Box<dyn Provider> = match site.provider {
            Kind::Ec2 => Box::new(
                super::ec2::Ec2Provider::new(site, pool, Default::default()).map_err(named)?,
            ),
            Kind::Openstack => Box::new(
                super::openstack::OpenstackProvider::new(site, pool, Default::default())
                    .map_err(named)?,
            ),
            Kind::Script => {
                Box::new(super::script::ScriptProvider::new(site, pool).map_err(|m| {
                    CloudError {
                        kind: ErrorKind::Invalid,
                        message: m,
                    }
                })?)
            }
        };
        out.insert(name, p);
    }
    Ok(out)
}

impl Clouds {
    pub fn new(
        providers: BTreeMap<String, Box<dyn Provider>>,
        backoff: Backoff,
        seed: u64,
    ) -> Clouds {
        Clouds {
            providers,
            backoff,
            rng: Rng::new(seed),
            clock: Box::new(RealClock {
                origin: Instant::now(),
                sleep: None,
                stood_for: Duration::ZERO,
            }),
        }
    }

    /// Replaces the sleep between attempts (tests); the calls' own time
    /// is still read from the monotonic clock, and each replaced sleep
    /// counts as the time it stands for.
    pub fn with_sleep(mut self, sleep: impl FnMut(Duration) + 'static) -> Clouds {
        self.clock = Box::new(RealClock {
            origin: Instant::now(),
            sleep: Some(Box::new(sleep)),
            stood_for: Duration::ZERO,
        });
        self
    }

    fn call<T>(
        &mut self,
        site: &str,
        mut op: impl FnMut(&mut dyn Provider) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        let Some(p) = self.providers.get_mut(site) else {
            return Err(CloudError {
                kind: ErrorKind::Invalid,
                message: format!("no provider for site {site:?}"),
            });
        };
        retry(&self.backoff, &mut self.rng, &mut *self.clock, |_| {
            op(p.as_mut())
        })
    }

    pub fn quota(&mut self, site: &str) -> Result<Option<super::Quota>, CloudError> {
        self.call(site, |p| p.quota())
    }
}

impl CloudPort for Clouds {
    fn inventory(&mut self, site: &str) -> Observed<Inventory> {
        match self.call(site, |p| p.inventory()) {
            Ok(inv) => Observed::Known(inv),
            Err(e) => Observed::Unknown(Unknown::Failed {
                status: format!("{:?}", e.kind).to_lowercase(),
                message: e.message,
            }),
        }
    }

    fn launch(&mut self, req: &LaunchRequest) -> Result<Instance, CloudError> {
        let site = req.site.clone();
        self.call(&site, |p| p.launch(req))
    }

    fn terminate(&mut self, site: &str, instance_id: &str) -> Result<(), CloudError> {
        self.call(site, |p| p.terminate(instance_id))
    }
}
