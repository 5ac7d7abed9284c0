//! Which jitsi-helm release the values fragment is written for, and what that release's
//! `values.yaml` has where the fragment touches it.
//!
//! Facts read from jitsi-helm's `values.yaml` and templates, per release:
//! - 1.x: Prosody is a subchart whose values are rendered with `tpl` in the subchart, and
//!   `prosody.extraEnvFrom` has a non-empty default that lists the chart's own Secrets by
//!   `{{ include "prosody.fullname" . }}`. Helm replaces a list instead of merging it, so a
//!   fragment must repeat that default. 1.0–1.3 list `-jicofo`, `-jvb`, `-common`; 1.4–1.5.1 add
//!   `-jibri` and `-jigasi`; 1.5.2 adds `-transcriber`. `web.custom.configs._custom_config_js`
//!   exists from 1.4; there is no `coturn` and no `web.extraEnvFrom`.
//! - 2.0–2.1: no `prosody.extraEnvFrom` at all.
//! - 2.2 and later (3.4.0 is current): `prosody.extraEnvFrom` defaults to `[]` and is appended
//!   after the chart's own sources (each entry through `tpl`, at the top chart, where no
//!   `prosody.fullname` template exists); `coturn.enabled`; `web.extraEnvFrom` from 3.3.0.

use std::fmt;
use std::str::FromStr;

/// One `envFrom` source of jitsi-helm 1.x's default `prosody.extraEnvFrom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultSource {
    /// `secretRef` or `configMapRef`.
    pub kind: &'static str,
    /// Suffix after `{{ include "prosody.fullname" . }}`.
    pub suffix: &'static str,
}

const fn secret(suffix: &'static str) -> DefaultSource {
    DefaultSource {
        kind: "secretRef",
        suffix,
    }
}

const COMMON: DefaultSource = DefaultSource {
    kind: "configMapRef",
    suffix: "-common",
};

const V1_0: &[DefaultSource] = &[secret("-jicofo"), secret("-jvb"), COMMON];
const V1_4: &[DefaultSource] = &[
    secret("-jibri"),
    secret("-jicofo"),
    secret("-jigasi"),
    secret("-jvb"),
    COMMON,
];
const V1_5_2: &[DefaultSource] = &[
    secret("-jibri"),
    secret("-jicofo"),
    secret("-jigasi"),
    secret("-transcriber"),
    secret("-jvb"),
    COMMON,
];

/// A jitsi-helm chart version, `MAJOR[.MINOR[.PATCH]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct JitsiHelm {
    major: u32,
    minor: u32,
    patch: u32,
}

/// The release the values are written for unless told otherwise.
pub const CURRENT: JitsiHelm = JitsiHelm {
    major: 3,
    minor: 4,
    patch: 0,
};

impl Default for JitsiHelm {
    fn default() -> Self {
        CURRENT
    }
}

impl fmt::Display for JitsiHelm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why a version is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// Not `MAJOR[.MINOR[.PATCH]]`.
    #[error("{0:?} is not a chart version (MAJOR[.MINOR[.PATCH]], e.g. 3.4.0 or 1.5.2)")]
    Syntax(String),
    /// A release whose Prosody cannot take an extra Secret.
    #[error("jitsi-helm {0} has no prosody.extraEnvFrom; upgrade to 2.2 or later (or 1.x)")]
    NoExtraEnvFrom(JitsiHelm),
    /// Before 1.0.
    #[error("jitsi-helm {0} is older than 1.0 and not supported")]
    TooOld(JitsiHelm),
}

impl FromStr for JitsiHelm {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || VersionError::Syntax(s.to_string());
        let mut parts = s.trim().trim_start_matches('v').split('.');
        let mut num = |required: bool| -> Result<Option<u32>, VersionError> {
            match parts.next() {
                None if !required => Ok(None),
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    p.parse().map(Some).map_err(|_| syntax())
                }
                _ => Err(syntax()),
            }
        };
        let major = num(true)?.ok_or_else(syntax)?;
        let minor = num(false)?;
        let patch = if minor.is_some() { num(false)? } else { None };
        if parts.next().is_some() {
            return Err(syntax());
        }
        // A bare major means its last release: what `helm repo update` installs for it.
        let v = match (minor, patch) {
            (None, _) if major == 1 => JitsiHelm {
                major,
                minor: 5,
                patch: 2,
            },
            (None, _) if major == 2 => JitsiHelm {
                major,
                minor: 22,
                patch: 2,
            },
            (None, _) if major == CURRENT.major => CURRENT,
            (minor, patch) => JitsiHelm {
                major,
                minor: minor.unwrap_or(0),
                patch: patch.unwrap_or(0),
            },
        };
        if major == 0 {
            return Err(VersionError::TooOld(v));
        }
        if major == 2 && v.minor < 2 {
            return Err(VersionError::NoExtraEnvFrom(v));
        }
        Ok(v)
    }
}

impl JitsiHelm {
    /// The chart's own default `prosody.extraEnvFrom` that a fragment must repeat (1.x), or
    /// `None` when the default is empty and the fragment's list is appended (2.2 and later).
    pub fn default_prosody_env_from(self) -> Option<&'static [DefaultSource]> {
        if self.major != 1 {
            return None;
        }
        Some(match (self.minor, self.patch) {
            (0..=3, _) => V1_0,
            (4, _) | (5, 0..=1) => V1_4,
            _ => V1_5_2,
        })
    }

    /// `web.custom.configs._custom_config_js` exists.
    pub fn has_custom_config_js(self) -> bool {
        (self.major, self.minor) >= (1, 4)
    }

    /// `web.extraEnvFrom` exists.
    pub fn has_web_extra_env_from(self) -> bool {
        (self.major, self.minor) >= (3, 3)
    }

    /// The chart bundles coturn (`coturn.enabled`).
    pub fn has_coturn(self) -> bool {
        self.major >= 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> JitsiHelm {
        s.parse().unwrap()
    }

    #[test]
    fn versions_and_their_defaults() {
        assert_eq!(v("3"), CURRENT);
        assert_eq!(v("v3.4.0"), CURRENT);
        assert_eq!(v("1").to_string(), "1.5.2");
        assert_eq!(v("1.3").to_string(), "1.3.0");
        assert_eq!(v("2").to_string(), "2.22.2");
        assert_eq!(v("1.3.8").default_prosody_env_from().unwrap().len(), 3);
        assert_eq!(v("1.4.1").default_prosody_env_from().unwrap().len(), 5);
        assert_eq!(v("1.5.1").default_prosody_env_from().unwrap().len(), 5);
        assert_eq!(v("1.5.2").default_prosody_env_from().unwrap().len(), 6);
        assert_eq!(v("2.2.0").default_prosody_env_from(), None);
        assert_eq!(CURRENT.default_prosody_env_from(), None);
        assert!(!v("1.3.8").has_custom_config_js() && v("1.4.0").has_custom_config_js());
        assert!(!v("3.2.0").has_web_extra_env_from() && CURRENT.has_web_extra_env_from());
        assert!(!v("1.5.2").has_coturn() && v("2.2.0").has_coturn());
    }

    #[test]
    fn refused_versions() {
        for bad in ["", "x", "3.", "3.4.0.1", "3.-1", "1..2"] {
            assert!(
                matches!(bad.parse::<JitsiHelm>(), Err(VersionError::Syntax(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            "2.1.3".parse::<JitsiHelm>(),
            Err(VersionError::NoExtraEnvFrom(_))
        ));
        assert!(matches!(
            "0.2.1".parse::<JitsiHelm>(),
            Err(VersionError::TooOld(_))
        ));
    }
}
