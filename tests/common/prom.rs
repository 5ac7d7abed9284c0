//! A strict parser of the Prometheus text exposition format (0.0.4), so a malformed line
//! fails the test instead of being skipped by a lenient scraper.

use std::collections::{BTreeMap, HashMap, HashSet};

/// The samples of one scrape, keyed by name and sorted labels.
#[derive(Debug, Clone)]
pub struct Scrape {
    samples: BTreeMap<String, f64>,
    /// Family name → TYPE.
    pub types: HashMap<String, String>,
}

fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<_> = labels.to_vec();
    labels.sort();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

impl Scrape {
    /// The value of the sample `name{labels}`; panics when there is no such sample.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let k = key(name, labels);
        *self
            .samples
            .get(&k)
            .unwrap_or_else(|| panic!("no sample {k} in the scrape"))
    }

    /// The sum of every sample named `name` (over all label sets).
    pub fn sum(&self, name: &str) -> f64 {
        let prefix = format!("{name}{{");
        self.samples
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v)
            .sum()
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) && !s.is_empty() => {
            s.parse().map_err(|_| format!("bad value {s:?}"))
        }
        _ => Err(format!("bad value {s:?}")),
    }
}

type Labels = Vec<(String, String)>;

/// Parses `{k="v",...}` starting at `s[0] == '{'`; returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut rest = &s[1..];
    let mut labels = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in label value")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate label {name:?}"));
        }
        labels.push((name.to_string(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

/// The family a sample belongs to, given the declared types.
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types
                .get(base)
                .is_some_and(|t| t == "histogram" || (t == "summary" && suffix != "_bucket"))
            {
                return Some(base);
            }
        }
    }
    None
}

/// Parses a whole exposition; any malformed or out-of-order line is an error naming it.
pub fn parse(text: &str) -> Result<Scrape, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the exposition must end with a newline".into());
    }
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut samples = BTreeMap::new();
    let mut seen_samples: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    // Histogram checks: family → (last cumulative count, saw +Inf, +Inf count).
    let mut buckets: HashMap<String, (f64, Option<f64>)> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let fail = |why: String| format!("line {}: {why}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, ' ');
            let (kind, name, rest) = (parts.next(), parts.next(), parts.next());
            let name = name.ok_or_else(|| fail("comment without a metric name".into()))?;
            if !is_metric_name(name) {
                return Err(fail(format!("bad metric name {name:?}")));
            }
            match kind {
                Some("HELP") => {
                    if !helps.insert(name.to_string()) {
                        return Err(fail("second HELP".into()));
                    }
                }
                Some("TYPE") => {
                    let t = rest.ok_or_else(|| fail("TYPE without a type".into()))?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                        return Err(fail(format!("unknown type {t:?}")));
                    }
                    if seen_samples.contains(name) {
                        return Err(fail("TYPE after the family's samples".into()));
                    }
                    if types.insert(name.to_string(), t.to_string()).is_some() {
                        return Err(fail("second TYPE".into()));
                    }
                }
                _ => return Err(fail("a comment that is neither HELP nor TYPE".into())),
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| fail("sample without a value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(fail(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(fail)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| fail("no space before the value".into()))?;
        let mut fields = rest.split(' ');
        let value = parse_value(fields.next().unwrap_or("")).map_err(fail)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .map_err(|_| fail(format!("bad timestamp {ts:?}")))?;
        }
        if fields.next().is_some() {
            return Err(fail("extra fields".into()));
        }
        let family = family_of(name, &types)
            .ok_or_else(|| fail(format!("sample of {name} has no TYPE")))?
            .to_string();
        if current.as_deref() != Some(family.as_str()) {
            if finished.contains(&family) {
                return Err(fail(format!("samples of {family} are not contiguous")));
            }
            if let Some(prev) = current.take() {
                finished.insert(prev);
            }
            current = Some(family.clone());
        }
        seen_samples.insert(family.clone());
        let ty = types[&family].as_str();
        if ty == "counter" && (value.is_nan() || value < 0.0) {
            return Err(fail("negative or NaN counter".into()));
        }
        if ty == "histogram" && name.ends_with("_bucket") {
            let le = labels
                .iter()
                .find(|(k, _)| k == "le")
                .ok_or_else(|| fail("bucket without le".into()))?;
            let le = parse_value(&le.1).map_err(fail)?;
            let entry = buckets.entry(family.clone()).or_insert((0.0, None));
            if value < entry.0 {
                return Err(fail("bucket counts are not cumulative".into()));
            }
            entry.0 = value;
            if le == f64::INFINITY {
                entry.1 = Some(value);
            }
        }
        if ty == "histogram" && name.ends_with("_count") {
            let inf = buckets.get(&family).and_then(|b| b.1);
            if inf != Some(value) {
                return Err(fail(format!(
                    "_count {value} differs from the +Inf bucket {inf:?}"
                )));
            }
        }
        let label_refs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if samples.insert(key(name, &label_refs), value).is_some() {
            return Err(fail("duplicate sample".into()));
        }
    }
    for (family, ty) in &types {
        if ty == "histogram"
            && seen_samples.contains(family)
            && buckets.get(family).and_then(|b| b.1).is_none()
        {
            return Err(format!("histogram {family} has no +Inf bucket"));
        }
    }
    Ok(Scrape { samples, types })
}

/// Fetches `/metrics` from `addr`, checks status and content type, and parses it strictly.
pub fn scrape(addr: std::net::SocketAddr) -> Scrape {
    let reply = super::http::get(addr, "/metrics");
    assert_eq!(reply.status, 200, "GET /metrics: {}", reply.body);
    let ct = reply.header("content-type").unwrap_or("");
    assert!(ct.starts_with("text/plain"), "content type {ct:?}");
    parse(&reply.body).unwrap_or_else(|e| panic!("malformed exposition: {e}\n{}", reply.body))
}
