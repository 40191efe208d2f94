//! The message text that follows DATA: RFC 5322 header fields and dates, and the dot-stuffing
//! SMTP applies to it on the wire (RFC 5321 §4.5.2). Sans-IO.

use std::ops::Range;

/// The line that ends the message text: a dot alone (§4.1.1.4).
pub const END_OF_DATA: &[u8] = b".\r\n";

/// The message text as it goes on the wire after a 354: every line that starts with `.` gets
/// one more `.` in front (so it cannot be taken for the end), and the `.` line ends it.
/// `text` is CRLF lines; a missing last CRLF is added.
pub fn dot_stuff(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 16);
    let mut at_line_start = true;
    for &b in text {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(END_OF_DATA);
    out
}

/// Where the message text ends in `buf`, which starts at the beginning of a line: the length
/// through the `.` line, or `None` when it has not arrived.
pub fn end_of_data(buf: &[u8]) -> Option<usize> {
    if buf.starts_with(END_OF_DATA) {
        return Some(END_OF_DATA.len());
    }
    buf.windows(5).position(|w| w == b"\r\n.\r\n").map(|i| i + 5)
}

/// One header field of a message (RFC 5322 §2.2), folded lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField<'a> {
    pub name: &'a str,
    /// The value with folding undone and outer spaces trimmed.
    pub value: String,
    /// Where the value's bytes are (across folded lines).
    pub value_range: Range<usize>,
    /// Where the whole field is, its name and folded lines, without the last CR LF.
    pub range: Range<usize>,
}

/// The header fields at the start of a message text, up to the blank line that ends them (or
/// the first line that is not a field).
pub fn header_fields(text: &[u8]) -> Vec<HeaderField<'_>> {
    let mut fields: Vec<HeaderField<'_>> = Vec::new();
    let mut at = 0;
    while let Some(rel) = text[at..].windows(2).position(|w| w == b"\r\n") {
        let line = &text[at..at + rel];
        let next = at + rel + 2;
        if line.is_empty() || line == b"." {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // A folded line continues the field above it.
            let Some(last) = fields.last_mut() else { break };
            last.value.push(' ');
            last.value.push_str(String::from_utf8_lossy(line).trim());
            last.value = last.value.trim().to_string();
            last.value_range.end = at + rel;
            last.range.end = at + rel;
        } else {
            let Some(colon) = line.iter().position(|&b| b == b':') else { break };
            let Ok(name) = std::str::from_utf8(&line[..colon]) else { break };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                break;
            }
            let raw = &line[colon + 1..];
            let lead = raw.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let start = at + colon + 1 + lead;
            fields.push(HeaderField {
                name,
                value: String::from_utf8_lossy(raw).trim().to_string(),
                value_range: start..(at + rel).max(start),
                range: at..at + rel,
            });
        }
        at = next;
    }
    fields
}

/// A date as RFC 5322 §3.3 writes it, in UTC: `Tue, 14 Nov 2023 22:13:20 +0000`.
/// `unix` is seconds since 1970-01-01 00:00:00 UTC; the caller reads the clock.
/// Where a message's body starts: after the blank line that ends its header (the end, if it
/// has none).
pub fn header_end(content: &[u8]) -> usize {
    content.windows(4).position(|w| w == b"\r\n\r\n").map_or(content.len(), |i| i + 4)
}

pub fn rfc5322_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Year, month (1-12), day (1-31) of a day counted from 1970-01-01: Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc5322_date(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 +0000");
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_ends_with_a_dot_line() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n..c\r\nd."), b"a\r\n..b\r\n...c\r\nd.\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
        assert_eq!(dot_stuff(b".\r\n"), b"..\r\n.\r\n");
    }

    #[test]
    fn finds_the_end_of_the_text() {
        assert_eq!(end_of_data(b".\r\nQUIT\r\n"), Some(3));
        assert_eq!(end_of_data(b"a\r\n..b\r\n.\r\nQUIT"), Some(11));
        assert_eq!(end_of_data(b"a\r\n.b\r\n"), None);
        assert_eq!(end_of_data(b"a\r\n.\r"), None);
    }

    #[test]
    fn reads_header_fields_with_folding() {
        let text = b"Subject: Hello\r\n  there\r\nFrom:a@b\r\n\r\nNot: a header\r\n.\r\n";
        let f = header_fields(text);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].name, f[0].value.as_str()), ("Subject", "Hello there"));
        assert_eq!(&text[f[0].value_range.clone()], b"Hello\r\n  there");
        assert_eq!((f[1].name, f[1].value.as_str()), ("From", "a@b"));
        assert_eq!(&text[f[1].value_range.clone()], b"a@b");
        assert!(header_fields(b"no colon here\r\n").is_empty());
    }
}
