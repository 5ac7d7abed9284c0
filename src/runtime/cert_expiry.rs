//! The notAfter time of an X.509 certificate, read from its DER encoding (RFC 5280 §4.1), for
//! the certificate-expiry metric. Only the path to `validity` is walked; nothing is verified.

/// Seconds since the Unix epoch at which the certificate expires; `None` if the encoding is not
/// the expected shape.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (cert, _) = element(der, 0x30)?; // Certificate ::= SEQUENCE
    let (mut tbs, _) = element(cert, 0x30)?; // TBSCertificate ::= SEQUENCE
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs, 0xa0)?.1; // [0] EXPLICIT version
    }
    let rest = element(tbs, 0x02)?.1; // serialNumber
    let rest = element(rest, 0x30)?.1; // signature AlgorithmIdentifier
    let rest = element(rest, 0x30)?.1; // issuer Name
    let (validity, _) = element(rest, 0x30)?; // Validity ::= SEQUENCE { notBefore, notAfter }
    let after_not_before = skip_time(validity)?;
    let tag = *after_not_before.first()?;
    let (time, _) = element(after_not_before, tag)?;
    parse_time(tag, time)
}

/// The content of the element at the start of `data` with the given tag, and what follows it.
fn element(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *data.first()? != tag {
        return None;
    }
    let first = *data.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in data.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((data.get(header..end)?, data.get(end..)?))
}

fn skip_time(data: &[u8]) -> Option<&[u8]> {
    let tag = *data.first()?;
    if tag != 0x17 && tag != 0x18 {
        return None;
    }
    Some(element(data, tag)?.1)
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950–2049, RFC 5280) or GeneralizedTime `YYYYMMDDHHMMSSZ`.
fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, rest) = match (tag, s.len()) {
        (0x17, 12) => {
            let yy = digits(0..2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (0x18, 14) => (digits(0..4)?, 4),
        _ => return None,
    };
    let month = digits(rest..rest + 2)?;
    let day = digits(rest + 2..rest + 4)?;
    let hour = digits(rest + 4..rest + 6)?;
    let minute = digits(rest + 6..rest + 8)?;
    let second = digits(rest + 8..rest + 10)?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2038, 1, 19), 24_855);
    }

    #[test]
    fn times() {
        assert_eq!(parse_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(parse_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(0x18, b"20380119031408Z"), Some(2_147_483_648));
        assert_eq!(parse_time(0x17, b"701301000000Z"), None);
        assert_eq!(parse_time(0x17, b"70010100000Z"), None);
    }

    #[test]
    fn reads_not_after_of_real_certificates() {
        for (y, m, d) in [(2031, 5, 17), (2049, 12, 31), (2051, 1, 2)] {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params =
                rcgen::CertificateParams::new(vec!["turn.example.org".into()]).expect("params");
            params.not_after = rcgen::date_time_ymd(y, m, d);
            let cert = params.self_signed(&key).expect("cert");
            assert_eq!(
                not_after(cert.der()),
                Some(days_from_civil(i64::from(y), i64::from(m), i64::from(d)) * 86_400),
                "{y}-{m}-{d}"
            );
        }
    }

    #[test]
    fn truncated_or_wrong_shapes_are_none() {
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after(&[0x04, 0x00]), None);
    }
}
