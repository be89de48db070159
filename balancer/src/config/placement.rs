//! `[placement]`: the placement policy and its fallback, the geo radius and CPU limit, and
//! Scalelite's load accounting.

use std::time::Duration;

use serde::Deserialize;

use super::{invalid, percent, positive, seconds, ConfigError};
use crate::placement::{Policy, Rules};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawPlacement {
    pub min_user_count: u32,
    pub join_buffer_secs: f64,
    pub policy: String,
    pub fallback: String,
    pub radius_km: f64,
    pub cpu_limit_percent: f64,
}

impl Default for RawPlacement {
    fn default() -> Self {
        RawPlacement {
            min_user_count: 15,
            join_buffer_secs: 900.0,
            policy: "geo".into(),
            fallback: "scalelite".into(),
            radius_km: 300.0,
            cpu_limit_percent: 70.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlacementConfig {
    pub min_user_count: u32,
    pub join_buffer: Duration,
    pub rules: crate::placement::Rules,
}

impl RawPlacement {
    pub(super) fn validate(self) -> Result<PlacementConfig, ConfigError> {
        let policy = |key: &str, v: &str| v.parse::<Policy>().map_err(|e| invalid(key, e));
        let rules = Rules {
            policy: policy("placement.policy", &self.policy)?,
            fallback: match policy("placement.fallback", &self.fallback)? {
                Policy::Geo => {
                    return Err(invalid(
                        "placement.fallback",
                        "must not be geo (it is what geo falls back to)".into(),
                    ))
                }
                p => p,
            },
            radius_km: positive("placement.radius_km", self.radius_km)?,
            cpu_limit: percent("placement.cpu_limit_percent", self.cpu_limit_percent)?,
        };
        Ok(PlacementConfig {
            min_user_count: self.min_user_count,
            join_buffer: seconds("placement.join_buffer_secs", self.join_buffer_secs)?,
            rules,
        })
    }
}
