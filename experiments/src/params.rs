//! The declared type and range of every experiment parameter (`--set KEY=VALUE`), and the
//! checks run before any work: each value against its range, then the experiment's memory
//! estimate and step counts (the checks `attnflow run` makes, [`attnflow::limits`]). A value
//! out of range is refused with one line naming the parameter, the value, the range and why.

use serde_json::{Map, Value};

use attnflow::error::{Result, input};

/// What values a parameter takes.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    /// A whole number in `min..=max`.
    Count { min: u64, max: u64 },
    /// A finite number in the interval from `min` (excluded when `open`) to `max`.
    Real { min: f64, max: f64, open: bool },
    /// A list of 1 to `len` whole numbers, each in `min..=max`.
    Counts { min: u64, max: u64, len: usize },
    /// A list of 1 to `len` finite numbers, each in the interval of [`Ty::Real`].
    Reals {
        min: f64,
        max: f64,
        open: bool,
        len: usize,
    },
    /// A list of 1 to `len` lists of whole numbers, each in `min..=max`.
    CountLists { min: u64, max: u64, len: usize },
    /// One of the names.
    Choice(&'static [&'static str]),
    /// A list of 1 or more distinct names among these.
    Choices(&'static [&'static str]),
    /// Any 64-bit seed.
    Seed,
}

/// One parameter: its name (the key of `--set` and of summary.json's `config`), what it
/// takes and why (shown when a value is refused).
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    pub why: &'static str,
}

/// The most steps one simulation of an experiment may take: beyond it a step size is too
/// small for its time span (h = 0, or a time of 1e300, would otherwise spin for ever).
pub const MAX_STEPS: f64 = 1e7;

/// The largest list a parameter takes (`len` of the list types).
pub const LIST: usize = 64;

pub const fn count(name: &'static str, min: u64, max: u64, why: &'static str) -> Param {
    Param {
        name,
        ty: Ty::Count { min, max },
        why,
    }
}

/// A number in (min, max] (`open`) or [min, max].
pub const fn real(name: &'static str, min: f64, max: f64, open: bool, why: &'static str) -> Param {
    Param {
        name,
        ty: Ty::Real { min, max, open },
        why,
    }
}

pub const fn counts(name: &'static str, min: u64, max: u64, why: &'static str) -> Param {
    Param {
        name,
        ty: Ty::Counts {
            min,
            max,
            len: LIST,
        },
        why,
    }
}

pub const fn reals(name: &'static str, min: f64, max: f64, open: bool, why: &'static str) -> Param {
    Param {
        name,
        ty: Ty::Reals {
            min,
            max,
            open,
            len: LIST,
        },
        why,
    }
}

/// The interval of a real range as written in a message: `(0, 10]` or `[0, 10]`.
fn interval(min: f64, max: f64, open: bool) -> String {
    format!("{}{min}, {max}]", if open { "(" } else { "[" })
}

impl Ty {
    /// What the parameter takes, in words.
    pub fn describe(&self) -> String {
        match *self {
            Ty::Count { min, max } => format!("a whole number from {min} to {max}"),
            Ty::Real { min, max, open } => format!("a number in {}", interval(min, max, open)),
            Ty::Counts { min, max, len } => {
                format!("a list of 1 to {len} whole numbers from {min} to {max} (e.g. 8,16)")
            }
            Ty::Reals {
                min,
                max,
                open,
                len,
            } => format!(
                "a list of 1 to {len} numbers in {} (e.g. 0.5,1)",
                interval(min, max, open)
            ),
            Ty::CountLists { min, max, len } => format!(
                "a list of 1 to {len} lists of whole numbers from {min} to {max} (e.g. [[8,16],[32]])"
            ),
            Ty::Choice(names) => format!("one of {}", names.join(", ")),
            Ty::Choices(names) => format!("a list of distinct names among {}", names.join(", ")),
            Ty::Seed => "a whole number from 0 to 2^64 - 1".into(),
        }
    }

    /// Whether `v` is of this type at all (a number for a number, a list for a list, a name
    /// for a name), whatever its range: a value of the wrong type is a TypeError in Python,
    /// one out of range (a negative count, a fraction for a count, an infinite number) a
    /// ValueError.
    pub fn type_matches(&self, v: &Value) -> bool {
        let non_finite = |v: &Value| {
            v.as_str().is_some_and(|s| {
                let s = s.trim().trim_start_matches(['-', '+']).to_ascii_lowercase();
                ["inf", "infinity", "nan"].contains(&s.as_str())
            })
        };
        let number = |v: &Value| v.is_number() || non_finite(v);
        let list = |v: &Value, each: &dyn Fn(&Value) -> bool| {
            v.as_array().is_some_and(|a| a.iter().all(each))
        };
        match self {
            Ty::Count { .. } | Ty::Real { .. } | Ty::Seed => number(v),
            Ty::Counts { .. } | Ty::Reals { .. } => list(v, &number),
            Ty::CountLists { .. } => list(v, &|x| list(x, &number)),
            Ty::Choice(_) => v.is_string(),
            Ty::Choices(_) => list(v, &Value::is_string),
        }
    }

    /// Whether `v` is of this type and in range.
    pub fn accepts(&self, v: &Value) -> bool {
        let whole =
            |v: &Value, min: u64, max: u64| v.as_u64().is_some_and(|k| (min..=max).contains(&k));
        let number = |v: &Value, min: f64, max: f64, open: bool| {
            v.as_f64()
                .is_some_and(|x| x.is_finite() && x <= max && if open { x > min } else { x >= min })
        };
        let list = |v: &Value, len: usize, each: &dyn Fn(&Value) -> bool| {
            v.as_array()
                .is_some_and(|a| !a.is_empty() && a.len() <= len && a.iter().all(each))
        };
        match *self {
            Ty::Count { min, max } => whole(v, min, max),
            Ty::Real { min, max, open } => number(v, min, max, open),
            Ty::Counts { min, max, len } => list(v, len, &|x| whole(x, min, max)),
            Ty::Reals {
                min,
                max,
                open,
                len,
            } => list(v, len, &|x| number(x, min, max, open)),
            Ty::CountLists { min, max, len } => {
                list(v, len, &|x| list(x, LIST, &|y| whole(y, min, max)))
            }
            Ty::Choice(names) => v.as_str().is_some_and(|s| names.contains(&s)),
            Ty::Choices(names) => {
                list(v, names.len(), &|x| {
                    x.as_str().is_some_and(|s| names.contains(&s))
                }) && v
                    .as_array()
                    .is_some_and(|a| a.iter().enumerate().all(|(i, x)| !a[..i].contains(x)))
            }
            Ty::Seed => v.as_u64().is_some(),
        }
    }
}

/// Checks every value of `map` (an experiment's parameters with the user's `--set` applied)
/// against its declaration: an undeclared key is a defect of the experiment, a value out of
/// range an error naming the parameter, the value, the range and why.
pub fn check_ranges(name: &str, params: &[Param], map: &Map<String, Value>) -> Result<()> {
    check_typed(name, params, map).map_err(|r| r.error)
}

/// A refused parameter value: `wrong_type` when it is not even of the parameter's type.
#[derive(Debug)]
pub struct Refusal {
    pub wrong_type: bool,
    pub error: attnflow::error::Error,
}

/// [`check_ranges`], telling a value of the wrong type from one out of range.
pub fn check_typed(
    name: &str,
    params: &[Param],
    map: &Map<String, Value>,
) -> std::result::Result<(), Refusal> {
    for (key, value) in map {
        let Some(p) = params.iter().find(|p| p.name == key) else {
            return Err(Refusal {
                wrong_type: false,
                error: input(format!(
                    "{name}: parameter '{key}' has no declared range (a defect of the experiment)"
                )),
            });
        };
        if !p.ty.accepts(value) {
            return Err(Refusal {
                wrong_type: !p.ty.type_matches(value),
                error: input(format!(
                    "--set {key}={value}: {key} takes {} ({}); got {value}",
                    p.ty.describe(),
                    p.why
                )),
            });
        }
    }
    Ok(())
}

/// A refusal of a combination of parameters, before any work: `--set` names them.
pub fn refuse(msg: impl std::fmt::Display) -> attnflow::error::Error {
    input(format!("--set: {msg}"))
}

/// The steps of a simulation over time `t` at step `h`, refused when there are more than
/// [`MAX_STEPS`] (or `h` is not a positive number) with the names of both.
pub fn steps(what: &str, t: f64, h: f64) -> Result<usize> {
    let k = (t / h).ceil();
    if !(h > 0.0 && h.is_finite()) {
        return Err(refuse(format!(
            "{what}: the step is {h:.3e}, which is not a positive number; give a larger step"
        )));
    }
    if k.is_nan() || k > MAX_STEPS {
        return Err(refuse(format!(
            "{what}: time {t} at step {h:.3e} is {k:.3e} steps, more than the {MAX_STEPS:e} an \
             experiment's simulation may take; raise the step or shorten the time"
        )));
    }
    Ok(k as usize)
}

/// Refuses a simulation of `batch` systems of n tokens in d dimensions (with `heads` heads of
/// d x d weights) that needs more memory than the machine has available, or whose sizes
/// overflow: the check of `attnflow run` ([`attnflow::limits::run_bytes`]).
pub fn memory(what: &str, batch: usize, n: usize, d: usize, heads: usize) -> Result<()> {
    let bytes = attnflow::limits::run_bytes(batch, n, d, heads, 0)
        .map_err(|e| refuse(format!("{what}: {e}")))?;
    attnflow::limits::ensure_memory(what, bytes).map_err(refuse)
}

/// Refuses `count` values of `bytes_each` that do not fit in memory (arrays beside the
/// tokens: grids, samples, matrices).
pub fn array(what: &str, parts: &[(&str, usize)], bytes_each: u64) -> Result<()> {
    let count = attnflow::limits::product(what, parts).map_err(refuse)?;
    attnflow::limits::ensure_memory(what, count.saturating_mul(bytes_each)).map_err(refuse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_checked_against_their_declared_ranges() {
        let params = [
            count("n", 2, 100, "tokens"),
            real("h", 0.0, 1.0, true, "the step"),
            reals("betas", 0.0, 10.0, false, "inverse temperatures"),
            Param {
                name: "models",
                ty: Ty::Choices(&["a", "b"]),
                why: "which",
            },
        ];
        let ok = |m: Value| check_ranges("x", &params, m.as_object().unwrap());
        ok(json!({"n": 2, "h": 1.0, "betas": [0, 10], "models": ["b", "a"]})).unwrap();
        let typed = |m: Value| {
            check_typed("x", &params, m.as_object().unwrap())
                .unwrap_err()
                .wrong_type
        };
        assert!(typed(json!({"n": "abc"})) && typed(json!({"betas": "x"})));
        assert!(typed(json!({"models": [1]})));
        assert!(!typed(json!({"n": -3})) && !typed(json!({"n": 2.5})));
        assert!(!typed(json!({"h": "inf"})) && !typed(json!({"h": "-Infinity"})));
        for (bad, want) in [
            (
                json!({"n": 1}),
                "--set n=1: n takes a whole number from 2 to 100 (tokens)",
            ),
            (json!({"n": 1e9}), "n takes a whole number"),
            (json!({"n": -3}), "got -3"),
            (
                json!({"h": 0.0}),
                "h takes a number in (0, 1] (the step); got 0.0",
            ),
            (json!({"h": -0.1}), "got -0.1"),
            (json!({"h": "inf"}), "got \"inf\""),
            (json!({"betas": []}), "a list of 1 to 64"),
            (json!({"betas": [1, 1000]}), "betas takes"),
            (json!({"models": ["a", "a"]}), "distinct"),
            (json!({"models": ["c"]}), "among a, b"),
            (json!({"lambda": 1}), "no declared range"),
        ] {
            let e = ok(bad.clone()).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn steps_and_memory_are_bounded() {
        assert_eq!(steps("run", 30.0, 0.05).unwrap(), 600);
        for (t, h) in [(30.0, 0.0), (30.0, -0.1), (1e300, 0.05), (30.0, 1e-300)] {
            let e = steps("the SA runs", t, h).unwrap_err().to_string();
            assert!(e.starts_with("--set: the SA runs: "), "{e}");
        }
        let e = memory("clustering", 3, 1_000_000_000_000, 3, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("clustering") && e.contains("GiB"), "{e}");
        memory("clustering", 3, 48, 3, 1).unwrap();
        assert!(array("the grid", &[("points", usize::MAX), ("draws", 4)], 8).is_err());
    }
}
