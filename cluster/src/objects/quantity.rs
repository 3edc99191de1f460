//! Resource quantities as Kubernetes writes them: CPU in cores or millicores (`2`, `0.5`,
//! `500m`), memory in bytes with a decimal or binary suffix (`128974848`, `129M`, `123Mi`).

/// Parses a CPU quantity into millicores.
///
/// # Errors
/// Returns a sentence naming the text when it is no CPU quantity, is zero or negative, or is
/// finer than one millicore.
pub fn parse_cpu_millis(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{text:?} is no CPU quantity (write cores like \"2\" or \"0.5\", or millicores like \"500m\")"
        )
    };
    let millis = if let Some(m) = text.strip_suffix('m') {
        m.parse::<u64>().map_err(|_| bad())?
    } else {
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        if frac.len() > 3 || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("{text:?} is finer than one millicore"));
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let frac_millis: u64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<3}").parse().map_err(|_| bad())?
        };
        whole
            .checked_mul(1000)
            .and_then(|w| w.checked_add(frac_millis))
            .ok_or_else(|| format!("{text:?} is too large"))?
    };
    if millis == 0 {
        return Err(format!("{text:?} must be more than zero"));
    }
    Ok(millis)
}

/// Parses a memory quantity into bytes.
///
/// # Errors
/// Returns a sentence naming the text when it is no memory quantity, is zero, or does not fit
/// in 64 bits.
pub fn parse_memory_bytes(text: &str) -> Result<u64, String> {
    const SUFFIXES: [(&str, u64); 10] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
    ];
    let (digits, unit) = SUFFIXES
        .iter()
        .find_map(|(s, mult)| text.strip_suffix(s).map(|d| (d, *mult)))
        .unwrap_or((text, 1));
    let value: u64 = digits.parse().map_err(|_| {
        format!(
            "{text:?} is no memory quantity (write bytes, or a number with Ki, Mi, Gi, k, M or G)"
        )
    })?;
    let bytes = value
        .checked_mul(unit)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes == 0 {
        return Err(format!("{text:?} must be more than zero"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cpu_quantities_parse_to_millicores() {
        assert_eq!(parse_cpu_millis("2"), Ok(2000));
        assert_eq!(parse_cpu_millis("0.5"), Ok(500));
        assert_eq!(parse_cpu_millis(".25"), Ok(250));
        assert_eq!(parse_cpu_millis("250m"), Ok(250));
        assert!(parse_cpu_millis("0.0001").is_err());
        assert!(parse_cpu_millis("0").is_err());
        assert!(parse_cpu_millis("two").is_err());
        assert!(parse_cpu_millis("").is_err());
        assert!(parse_cpu_millis("-1").is_err());
    }

    #[test]
    fn test_memory_quantities_parse_to_bytes() {
        assert_eq!(parse_memory_bytes("64Mi"), Ok(64 << 20));
        assert_eq!(parse_memory_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_memory_bytes("4096"), Ok(4096));
        assert!(parse_memory_bytes("64MB").is_err());
        assert!(parse_memory_bytes("0Mi").is_err());
        assert!(parse_memory_bytes("99999999999Pi").is_err());
    }
}
