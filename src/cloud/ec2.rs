//! EC2 through `aws-sdk-ec2`: the standard AWS credential chain and
//! region (environment, profile, instance role), an optional endpoint URL
//! (a compatible cloud or a test server).
//!
//! The SDK's own retries are off: [`super::clouds::Clouds`] retries with
//! its bounded, jittered back-off and must see every failure's class.
//! Each provider owns a current-thread tokio runtime so the synchronous
//! cycle can call it; the agent issue moves the loop itself onto tokio.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    Filter, IamInstanceProfileSpecification, InstanceInterruptionBehavior, InstanceLifecycleType,
    InstanceMarketOptionsRequest, InstanceStateName, InstanceType, MarketType, ResourceType,
    ShutdownBehavior, SpotInstanceType, SpotMarketOptions, Tag, TagSpecification,
};
use aws_sdk_ec2::Client;
use base64::Engine;

use super::{
    CloudError, ErrorKind, Instance, InstanceState, Inventory, LaunchRequest, Provider, Quota,
    TAG_NODE, TAG_POOL,
};
use crate::config::{Ec2Config, Site};

/// EC2 refuses user-data above 16 KiB (before base64).
pub const USER_DATA_LIMIT: usize = 16 * 1024;

/// The ClientToken is at most 64 ASCII characters.
const CLIENT_TOKEN_LIMIT: usize = 64;

/// Knobs the config does not expose (tests shrink them).
#[derive(Clone, Debug)]
pub struct Ec2Options {
    /// DescribeInstances page size (5 to 1000).
    pub page_size: i32,
    /// Each API call's deadline, retries excluded.
    pub call_timeout: Duration,
}

impl Default for Ec2Options {
    fn default() -> Ec2Options {
        Ec2Options {
            page_size: 500,
            call_timeout: Duration::from_secs(30),
        }
    }
}

pub struct Ec2Provider {
    site: String,
    pool: String,
    image: String,
    cfg: Ec2Config,
    opts: Ec2Options,
    client: Client,
    rt: tokio::runtime::Runtime,
    /// Tokens whose last launch may or may not have taken effect. EC2
    /// itself returns the first instance for a repeated ClientToken, but
    /// not every EC2-compatible API does (moto 5 does not): before such a
    /// token is launched again, its node is looked up by tag.
    uncertain: std::collections::HashSet<String>,
}

impl Ec2Provider {
    pub fn new(site: &Site, pool: &str, opts: Ec2Options) -> Result<Ec2Provider, CloudError> {
        let cfg = site.ec2.clone().unwrap_or_default();
        let rt = super::runtime("EC2")?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(opts.call_timeout)
                    .connect_timeout(opts.call_timeout.min(Duration::from_secs(10)))
                    .build(),
            );
        if let Some(r) = &cfg.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &cfg.profile {
            loader = loader.profile_name(p);
        }
        if let Some(u) = &cfg.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        let sdk = rt.block_on(loader.load());
        if sdk.region().is_none() {
            return Err(invalid(format!(
                "site {}: no AWS region: set sites.ec2.region or AWS_REGION",
                site.name.get_ref()
            )));
        }
        Ok(Ec2Provider {
            site: site.name.get_ref().clone(),
            pool: pool.to_string(),
            image: site.image.clone(),
            cfg,
            opts,
            client: Client::new(&sdk),
            rt,
            uncertain: Default::default(),
        })
    }

    fn tags(&self, req: &LaunchRequest) -> Vec<Tag> {
        let mut all: Vec<(String, String)> = req.tags.clone();
        all.extend(self.cfg.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        if !all.iter().any(|(k, _)| k == "Name") {
            all.push(("Name".into(), format!("cloudburst-{}", req.node_id)));
        }
        all.into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    }

    /// Our live instances tagged with `filters` (tag key, value).
    fn find(&self, filters: &[(&str, &str)]) -> Result<Vec<Instance>, CloudError> {
        let mut call = self.client.describe_instances();
        for (k, v) in filters {
            call = call.filters(
                Filter::builder()
                    .name(format!("tag:{k}"))
                    .values(*v)
                    .build(),
            );
        }
        let pages = self.rt.block_on(
            call.max_results(self.opts.page_size)
                .into_paginator()
                .send()
                .collect::<Result<Vec<_>, _>>(),
        );
        let pages = pages.map_err(|e| classify("DescribeInstances", e))?;
        Ok(pages
            .iter()
            .flat_map(|p| p.reservations())
            .flat_map(|r| r.instances())
            .filter_map(|i| self.to_instance(i))
            .collect())
    }

    fn run(&mut self, req: &LaunchRequest) -> Result<Instance, CloudError> {
        if self.uncertain.contains(&req.token) {
            let found = self.find(&[(TAG_POOL, &self.pool), (TAG_NODE, &req.node_id)])?;
            if let Some(i) = found.into_iter().find(|i| i.is_alive()) {
                return Ok(i);
            }
        }
        match self.run_instances(req) {
            Err(e) if !e.kind.is_definitive() => {
                self.uncertain.insert(req.token.clone());
                Err(e)
            }
            other => other,
        }
    }

    fn to_instance(&self, i: &aws_sdk_ec2::types::Instance) -> Option<Instance> {
        let id = i.instance_id()?.to_string();
        let tag = |key: &str| {
            i.tags()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        let spot = i.instance_lifecycle() == Some(&InstanceLifecycleType::Spot);
        let reason = i.state_reason().and_then(|r| r.code()).unwrap_or("");
        Some(Instance {
            id,
            site: self.site.clone(),
            flavor: i
                .instance_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            state: state_of(i.state().and_then(|s| s.name()), reason),
            pool: tag(TAG_POOL),
            node_id: tag(TAG_NODE),
            token: i
                .client_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            launched_at: i.launch_time().map(|t| t.secs()).unwrap_or(0),
            spot,
        })
    }
}

/// The cloud's view of an instance; a spot instance the cloud took back
/// (state reason `Server.SpotInstanceTermination`) is `Reclaimed`, not a
/// termination we asked for.
pub fn state_of(name: Option<&InstanceStateName>, reason_code: &str) -> InstanceState {
    let reclaimed = reason_code == "Server.SpotInstanceTermination"
        || reason_code == "Server.SpotInstanceShutdown";
    match name {
        Some(InstanceStateName::Pending) | None => InstanceState::Pending,
        Some(InstanceStateName::Running) => InstanceState::Running,
        Some(_) if reclaimed => InstanceState::Reclaimed,
        Some(InstanceStateName::Terminated) => InstanceState::Terminated,
        Some(_) => InstanceState::Stopping,
    }
}

/// User-data as RunInstances takes it: base64, gzip-compressed when the
/// plain text is over EC2's limit (cloud-init reads gzip), refused when
/// even that is too big.
pub fn encode_user_data(text: &str) -> Result<String, CloudError> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    if text.len() <= USER_DATA_LIMIT {
        return Ok(b64(text.as_bytes()));
    }
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(text.as_bytes())
        .and_then(|_| gz.finish())
        .map_err(|e| invalid(format!("cannot compress the user-data: {e}")))
        .and_then(|z| {
            if z.len() <= USER_DATA_LIMIT {
                Ok(b64(&z))
            } else {
                Err(invalid(format!(
                    "user-data is {} bytes ({} gzip-compressed), over EC2's {} byte limit",
                    text.len(),
                    z.len(),
                    USER_DATA_LIMIT
                )))
            }
        })
}

fn invalid(message: String) -> CloudError {
    CloudError {
        kind: ErrorKind::Invalid,
        message,
    }
}

/// The class of an EC2 error code (the API reference's "Error codes for
/// the Amazon EC2 API"), before the HTTP status is looked at.
pub fn kind_of_code(code: &str) -> Option<ErrorKind> {
    Some(match code {
        "RequestLimitExceeded"
        | "Throttling"
        | "ThrottlingException"
        | "SlowDown"
        | "RequestThrottled" => ErrorKind::Throttled,
        "InsufficientInstanceCapacity"
        | "InsufficientHostCapacity"
        | "InsufficientCapacity"
        | "InsufficientReservedInstanceCapacity"
        | "SpotMaxPriceTooLow"
        | "InsufficientFreeAddressesInSubnet"
        | "Unsupported" => ErrorKind::Capacity,
        "InstanceLimitExceeded"
        | "VcpuLimitExceeded"
        | "MaxSpotInstanceCountExceeded"
        | "ResourceLimitExceeded"
        | "VolumeLimitExceeded" => ErrorKind::Quota,
        "AuthFailure"
        | "UnauthorizedOperation"
        | "Blocked"
        | "OptInRequired"
        | "PendingVerification"
        | "SignatureDoesNotMatch"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "RequestExpired" => ErrorKind::Auth,
        "InternalError" | "InternalFailure" | "ServiceUnavailable" | "Unavailable" => {
            ErrorKind::Transient
        }
        c if c.starts_with("Invalid")
            || c.starts_with("Missing")
            || c.ends_with(".NotFound")
            || c.ends_with(".Malformed")
            || c == "IdempotentParameterMismatch"
            || c == "UnknownParameter" =>
        {
            ErrorKind::Invalid
        }
        _ => return None,
    })
}

/// The class of an HTTP status without a known error code.
pub fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        429 | 503 => ErrorKind::Throttled,
        401 | 403 => ErrorKind::Auth,
        400..=499 => ErrorKind::Invalid,
        _ => ErrorKind::Transient,
    }
}

/// Classifies an SDK failure. Anything that may have reached the service
/// without an answer (a timeout, a dropped connection, an unreadable
/// reply) is `Transient`: a launch is then retried with its ClientToken.
fn classify<E>(what: &str, e: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = |r: &HttpResponse| r.status().as_u16();
    let (kind, detail) = match &e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("");
            let kind = kind_of_code(code).unwrap_or_else(|| kind_of_status(status(se.raw())));
            let msg = se.err().message().unwrap_or("");
            (kind, format!("{code}: {msg}"))
        }
        SdkError::ConstructionFailure(_) => (ErrorKind::Invalid, source_chain(&e)),
        SdkError::TimeoutError(_) => (ErrorKind::Transient, "timed out".to_string()),
        SdkError::ResponseError(r) => (kind_of_status(status(r.raw())), source_chain(&e)),
        _ => (ErrorKind::Transient, source_chain(&e)),
    };
    CloudError {
        kind,
        message: format!("ec2 {what}: {detail}"),
    }
}

/// The error and its causes on one line (the SDK's top-level text is
/// only "service error" or "dispatch failure").
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}

impl Ec2Provider {
    fn run_instances(&self, req: &LaunchRequest) -> Result<Instance, CloudError> {
        if req.token.is_empty() || req.token.len() > CLIENT_TOKEN_LIMIT || !req.token.is_ascii() {
            return Err(invalid(format!(
                "launch token {:?} is not 1 to {CLIENT_TOKEN_LIMIT} ASCII characters",
                req.token
            )));
        }
        let user_data = encode_user_data(req.user_data.expose())?;
        let tags = self.tags(req);
        let spec = |rt: ResourceType| {
            TagSpecification::builder()
                .resource_type(rt)
                .set_tags(Some(tags.clone()))
                .build()
        };
        let mut call = self
            .client
            .run_instances()
            .image_id(&self.image)
            .instance_type(InstanceType::from(req.flavor.as_str()))
            .min_count(1)
            .max_count(1)
            .client_token(&req.token)
            // A pilot that powers itself off must not linger as a
            // stopped instance with a billed volume.
            .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
            .user_data(user_data)
            .tag_specifications(spec(ResourceType::Instance))
            .tag_specifications(spec(ResourceType::Volume))
            .set_subnet_id(self.cfg.subnet_id.clone())
            .set_key_name(self.cfg.key_name.clone());
        for sg in &self.cfg.security_group_ids {
            call = call.security_group_ids(sg);
        }
        if let Some(p) = &self.cfg.iam_instance_profile {
            call = call
                .iam_instance_profile(IamInstanceProfileSpecification::builder().name(p).build());
        }
        if req.spot {
            call = call.instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        SpotMarketOptions::builder()
                            .spot_instance_type(SpotInstanceType::OneTime)
                            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                            .set_max_price(self.cfg.spot_max_price.clone())
                            .build(),
                    )
                    .build(),
            );
        }
        let out = self
            .rt
            .block_on(call.send())
            .map_err(|e| classify("RunInstances", e))?;
        let first = out.instances().first().ok_or_else(|| CloudError {
            kind: ErrorKind::Transient,
            message: "ec2 RunInstances: the reply lists no instance".into(),
        })?;
        let mut inst = self.to_instance(first).ok_or_else(|| CloudError {
            kind: ErrorKind::Transient,
            message: "ec2 RunInstances: the reply's instance has no id".into(),
        })?;
        // The reply may predate tagging; the request's tags are the truth.
        inst.pool = Some(self.pool.clone());
        inst.node_id = Some(req.node_id.clone());
        inst.token = Some(req.token.clone());
        inst.spot = req.spot;
        inst.flavor = req.flavor.clone();
        Ok(inst)
    }
}

impl Provider for Ec2Provider {
    fn launch(&mut self, req: &LaunchRequest) -> Result<Instance, CloudError> {
        let r = self.run(req);
        if r.is_ok() {
            self.uncertain.remove(&req.token);
        }
        r
    }

    fn inventory(&mut self) -> Result<Inventory, CloudError> {
        Ok(Inventory {
            instances: self.find(&[(TAG_POOL, &self.pool)])?,
            foreign: 0,
            foreign_cores: 0,
        })
    }

    fn terminate(&mut self, instance_id: &str) -> Result<(), CloudError> {
        let r = self.rt.block_on(
            self.client
                .terminate_instances()
                .instance_ids(instance_id)
                .send(),
        );
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let gone = e.as_service_error().and_then(|s| s.code())
                    == Some("InvalidInstanceID.NotFound");
                if gone {
                    Ok(())
                } else {
                    Err(classify("TerminateInstances", e))
                }
            }
        }
    }

    /// EC2's only per-account limit in the EC2 API itself is the legacy
    /// `max-instances` account attribute (vCPU limits live in Service
    /// Quotas, another API): used when the account reports it.
    fn quota(&mut self) -> Result<Option<Quota>, CloudError> {
        let out = self
            .rt
            .block_on(
                self.client
                    .describe_account_attributes()
                    .attribute_names("max-instances".into())
                    .send(),
            )
            .map_err(|e| classify("DescribeAccountAttributes", e))?;
        let max = out
            .account_attributes()
            .iter()
            .filter(|a| a.attribute_name() == Some("max-instances"))
            .flat_map(|a| a.attribute_values())
            .find_map(|v| v.attribute_value()?.parse::<u32>().ok());
        Ok(max.map(|m| Quota {
            instances: Some(m),
            ..Quota::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_user_data_is_plain_base64() {
        let e = encode_user_data("#cloud-config\n").unwrap();
        assert_eq!(e, "I2Nsb3VkLWNvbmZpZwo=");
    }

    #[test]
    fn large_user_data_is_gzipped_and_huge_is_refused() {
        let big = format!("#cloud-config\n# {}\n", "pad ".repeat(10_000));
        let e = encode_user_data(&big).unwrap();
        let raw = base64::engine::general_purpose::STANDARD.decode(e).unwrap();
        assert_eq!(&raw[..2], &[0x1f, 0x8b], "gzip magic");
        assert!(raw.len() <= USER_DATA_LIMIT);

        let mut noise = String::new();
        let mut x: u64 = 1;
        while noise.len() < 40_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            noise.push_str(&format!("{:016x}", x));
        }
        let err = encode_user_data(&noise).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(
            err.message.contains("over EC2's 16384 byte limit"),
            "{}",
            err.message
        );
        assert!(
            !err.message.contains(&noise[..32]),
            "the user-data itself is not in the error"
        );
    }

    #[test]
    fn error_codes_map_to_classes() {
        assert_eq!(
            kind_of_code("RequestLimitExceeded"),
            Some(ErrorKind::Throttled)
        );
        assert_eq!(
            kind_of_code("InsufficientInstanceCapacity"),
            Some(ErrorKind::Capacity)
        );
        assert_eq!(kind_of_code("VcpuLimitExceeded"), Some(ErrorKind::Quota));
        assert_eq!(kind_of_code("AuthFailure"), Some(ErrorKind::Auth));
        assert_eq!(
            kind_of_code("InvalidAMIID.NotFound"),
            Some(ErrorKind::Invalid)
        );
        assert_eq!(kind_of_code("InternalError"), Some(ErrorKind::Transient));
        assert_eq!(kind_of_code("SomethingNew"), None);
        assert_eq!(kind_of_status(503), ErrorKind::Throttled);
        assert_eq!(kind_of_status(502), ErrorKind::Transient);
    }

    #[test]
    fn spot_reclaim_is_told_apart_from_our_termination() {
        let t = Some(&InstanceStateName::Terminated);
        assert_eq!(
            state_of(t, "Server.SpotInstanceTermination"),
            InstanceState::Reclaimed
        );
        assert_eq!(
            state_of(t, "Client.UserInitiatedShutdown"),
            InstanceState::Terminated
        );
        assert_eq!(
            state_of(
                Some(&InstanceStateName::ShuttingDown),
                "Server.SpotInstanceTermination"
            ),
            InstanceState::Reclaimed
        );
        assert_eq!(
            state_of(Some(&InstanceStateName::Running), ""),
            InstanceState::Running
        );
    }
}
