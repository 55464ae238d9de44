//! Reading variables one by one while collecting every problem, so that a bad
//! configuration is reported whole, each problem naming its variable.

use std::fmt;
use std::str::FromStr;

/// One problem with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.problem)
    }
}

/// Everything wrong with a configuration, in the order the variables were read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Whether some problem concerns `var`.
    pub fn names(&self, var: &str) -> bool {
        self.0.iter().any(|e| e.var == var)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

pub(super) struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<ConfigError>,
}

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup, errors: Vec::new() }
    }

    /// The variable's value; empty or blank counts as unset.
    pub fn raw(&self, var: &str) -> Option<String> {
        (self.lookup)(var).filter(|v| !v.trim().is_empty())
    }

    pub fn is_set(&self, var: &str) -> bool {
        self.raw(var).is_some()
    }

    pub fn fail(&mut self, var: &'static str, problem: impl Into<String>) {
        self.errors.push(ConfigError { var, problem: problem.into() });
    }

    /// Parses the variable if set; a malformed value is recorded and yields `None`.
    pub fn optional<T, E: fmt::Display>(
        &mut self,
        var: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let raw = self.raw(var)?;
        match parse(raw.trim()) {
            Ok(value) => Some(value),
            Err(e) => {
                self.fail(var, format!("malformed value: {e}"));
                None
            }
        }
    }

    /// Parses the variable, or takes `default` when unset (or malformed, after recording it).
    pub fn or<T, E: fmt::Display>(
        &mut self,
        var: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> T {
        self.optional(var, parse).unwrap_or(default)
    }

    /// A `FromStr` value with a default.
    pub fn value<T: FromStr>(&mut self, var: &'static str, default: T) -> T
    where
        T::Err: fmt::Display,
    {
        self.or(var, default, str::parse::<T>)
    }

    /// A whole number within `range`, with a default.
    pub fn number(&mut self, var: &'static str, default: u32, range: std::ops::RangeInclusive<u32>) -> u32 {
        self.or(var, default, |raw| {
            let n: u32 = raw.parse().map_err(|_| format!("{raw:?} is not a whole number"))?;
            if range.contains(&n) {
                Ok(n)
            } else {
                Err(format!("{n} is outside {}..={}", range.start(), range.end()))
            }
        })
    }

    /// A variable that must be set for `purpose`; records its absence.
    pub fn required<T, E: fmt::Display>(
        &mut self,
        var: &'static str,
        purpose: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        if !self.is_set(var) {
            self.fail(var, format!("is required {purpose}"));
            return None;
        }
        self.optional(var, parse)
    }

    pub fn finish(self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}

/// Parses an absolute URL whose scheme is one of `schemes`.
pub(super) fn url_with_scheme(raw: &str, schemes: &[&str]) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    if schemes.contains(&url.scheme()) {
        Ok(url)
    } else {
        Err(format!("scheme {:?} is not one of {}", url.scheme(), schemes.join(", ")))
    }
}

/// Parses a comma-separated list, skipping blanks.
pub(super) fn list<T, E: fmt::Display>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| parse(item).map_err(|e| format!("{item:?}: {e}")))
        .collect()
}
