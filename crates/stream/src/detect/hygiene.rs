//! Alert hygiene: an anomaly must persist for `min_consecutive` events
//! before it counts, and after a flag the key stays quiet for
//! `cooldown_events` so one incident raises one flag.

use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HygieneConfig {
    /// Consecutive events over the threshold before the key is anomalous.
    #[serde(default = "default_min_consecutive")]
    pub min_consecutive: u32,
    /// Events after a flag during which no new flag is raised.
    #[serde(default = "default_cooldown_events")]
    pub cooldown_events: u32,
}

fn default_min_consecutive() -> u32 {
    1
}
fn default_cooldown_events() -> u32 {
    50
}

impl Default for HygieneConfig {
    fn default() -> Self {
        HygieneConfig {
            min_consecutive: default_min_consecutive(),
            cooldown_events: default_cooldown_events(),
        }
    }
}

/// One key's hygiene state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hygiene {
    over: u32,
    since_flag: Option<u32>,
}

/// What hygiene made of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// The key is in an anomalous state at this event.
    pub is_anomaly: bool,
    /// A flag is raised for this event.
    pub flag: bool,
}

impl Hygiene {
    pub fn judge(&mut self, over_threshold: bool, config: &HygieneConfig) -> Judgement {
        self.over = if over_threshold {
            self.over.saturating_add(1)
        } else {
            0
        };
        let is_anomaly = self.over >= config.min_consecutive.max(1);
        let cooling = self.since_flag.is_some_and(|n| n < config.cooldown_events);
        let flag = is_anomaly && !cooling;
        self.since_flag = if flag {
            Some(0)
        } else {
            self.since_flag.map(|n| n.saturating_add(1))
        };
        Judgement { is_anomaly, flag }
    }
}

impl Encode for Hygiene {
    fn encode(&self, out: &mut Vec<u8>) {
        self.over.encode(out);
        self.since_flag.encode(out);
    }
}

impl Decode for Hygiene {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(Hygiene {
            over: u32::decode(input)?,
            since_flag: Option::decode(input)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_persistence_and_cools_down() {
        let config = HygieneConfig {
            min_consecutive: 2,
            cooldown_events: 3,
        };
        let mut hygiene = Hygiene::default();
        let over = [true, true, true, false, true, true, true, true, true];
        let got: Vec<(bool, bool)> = over
            .iter()
            .map(|&o| {
                let j = hygiene.judge(o, &config);
                (j.is_anomaly, j.flag)
            })
            .collect();
        assert_eq!(
            got,
            [
                (false, false),
                (true, true),
                (true, false),
                (false, false),
                (false, false),
                (true, true),
                (true, false),
                (true, false),
                (true, false),
            ]
        );
    }
}
