//! The Call Home AML envelope (SOAP 1.2) around a Smart Licensing JSON
//! message, in both directions: devices wrap requests, the server unwraps
//! them and wraps its answer the same way (REFERENCE.md).
//!
//! `unwrap` reads untrusted input with quick-xml's namespace-aware reader,
//! strictly: well-formedness, namespaces and the element path are checked;
//! DOCTYPE (and with it entity expansion) is refused; nesting is bounded;
//! nothing panics.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use quick_xml::XmlVersion;
use time::OffsetDateTime;

pub const SOAP_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const AML_SESSION_NS: &str = "http://www.cisco.com/2004/01/aml-session";
pub const AML_BLOCK_NS: &str = "http://www.cisco.com/2004/01/aml-block";
pub const APPLIANCE_URI: &str = "http://www.cisco.com/appliance/uri";
/// The block type of a Smart Licensing message.
pub const BLOCK_TYPE: &str = "http://www.cisco.com/2005/05/callhome/smartlicensing";
pub const CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";
pub const PATH: &str = "/Transportgateway/services/DeviceRequestHandler";

/// Nesting deeper than this is not an envelope but an attack on the reader.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallHomeError {
    #[error("not well-formed XML at byte {at}: {reason}")]
    Xml { at: usize, reason: String },
    #[error("not a Call Home envelope: {0}")]
    NotEnvelope(String),
    #[error("the envelope's aml-block:Content is empty; it must hold the JSON message as CDATA")]
    EmptyContent,
}

/// The parts of an envelope a receiver cares about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    pub to: Option<String>,
    pub message_id: Option<String>,
    pub group_id: Option<String>,
    /// The JSON message carried in `aml-block:Content`.
    pub content: String,
}

/// Wraps `json_message` for `to_url`. `device_id` is written `PID@C@SN`; it
/// goes in the block group id, as Call Home puts the sender there; the
/// payload itself carries the UDI.
pub fn wrap(
    json_message: &str,
    to_url: &str,
    message_id: &str,
    device_id: &str,
    now: OffsetDateTime,
) -> String {
    let created = creation_date(now);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soap-env:Envelope xmlns:soap-env="{SOAP_NS}">
 <soap-env:Header>
  <aml-session:Session xmlns:aml-session="{AML_SESSION_NS}" soap-env:mustUnderstand="true" soap-env:role="http://www.w3.org/2003/05/soap-envelope/role/next">
   <aml-session:To>{to}</aml-session:To>
   <aml-session:Path><aml-session:Via>{APPLIANCE_URI}</aml-session:Via></aml-session:Path>
   <aml-session:From>{APPLIANCE_URI}</aml-session:From>
   <aml-session:MessageId>{id}</aml-session:MessageId>
  </aml-session:Session>
 </soap-env:Header>
 <soap-env:Body>
  <aml-block:Block xmlns:aml-block="{AML_BLOCK_NS}">
   <aml-block:Header>
    <aml-block:Type>{BLOCK_TYPE}</aml-block:Type>
    <aml-block:CreationDate>{created}</aml-block:CreationDate>
    <aml-block:Builder><aml-block:Name>Smart Agent for Licensing</aml-block:Name><aml-block:Version>2.0</aml-block:Version></aml-block:Builder>
    <aml-block:BlockGroup><aml-block:GroupId>{group}</aml-block:GroupId><aml-block:Number>0</aml-block:Number><aml-block:IsLast>true</aml-block:IsLast><aml-block:IsPrimary>true</aml-block:IsPrimary><aml-block:WaitForPriority>false</aml-block:WaitForPriority></aml-block:BlockGroup>
   </aml-block:Header>
   <aml-block:Content>{content}</aml-block:Content>
  </aml-block:Block>
 </soap-env:Body>
</soap-env:Envelope>
"#,
        to = escape(to_url),
        id = escape(message_id),
        group = escape(&format!("G1:{device_id}:{message_id}")),
        content = cdata(json_message),
    )
}

/// The JSON message inside an envelope.
pub fn unwrap(xml: &str) -> Result<String, CallHomeError> {
    unwrap_envelope(xml).map(|e| e.content)
}

/// The JSON message and the session fields of an envelope.
pub fn unwrap_envelope(xml: &str) -> Result<Envelope, CallHomeError> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().check_comments = true;
    // Open elements as (namespace, local name); the reader itself checks that
    // every end tag matches its start tag.
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut envelope = Envelope::default();
    let mut content: Option<String> = None;
    let mut block_seen = false;
    let mut root_seen = false;
    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok((ns, event)) => (namespace(ns), event),
            Err(e) => return Err(xml_error(reader.error_position(), e)),
        };
        let at = reader.buffer_position();
        let text: Cow<'_, str> = match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let ns = ns.map_err(|prefix| {
                    xml_error(
                        at,
                        format!("the prefix {prefix} of <{name}> is not declared"),
                    )
                })?;
                if stack.is_empty() && root_seen {
                    return Err(xml_error(at, "more than one root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(xml_error(at, "elements nested too deeply"));
                }
                check_attributes(e).map_err(|reason| xml_error(at, reason))?;
                root_seen = true;
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if stack.is_empty() && !(ns == SOAP_NS && local == "Envelope") {
                    return Err(CallHomeError::NotEnvelope(format!(
                        "the root element is {name} (expected soap-env:Envelope in {SOAP_NS})"
                    )));
                }
                if at_path(&stack, &CONTENT_PATH) {
                    return Err(CallHomeError::NotEnvelope(format!(
                        "aml-block:Content holds the element {name}; it must hold the JSON message as CDATA"
                    )));
                }
                stack.push((ns, local));
                // One message per envelope: a second Block or Content is
                // refused rather than joined, so what the server reads is
                // exactly what one sender wrapped.
                if at_path(&stack, &BLOCK_PATH) {
                    if block_seen {
                        return Err(CallHomeError::NotEnvelope(
                            "more than one aml-block:Block in soap-env:Body".into(),
                        ));
                    }
                    block_seen = true;
                }
                if at_path(&stack, &CONTENT_PATH) {
                    if content.is_some() {
                        return Err(CallHomeError::NotEnvelope(
                            "more than one aml-block:Content in aml-block:Block".into(),
                        ));
                    }
                    content = Some(String::new());
                }
                if matches!(event, Event::Empty(_)) {
                    stack.pop();
                }
                continue;
            }
            Event::End(_) => {
                // Unmatched and mismatched end tags are the reader's errors.
                stack.pop();
                continue;
            }
            Event::Text(e) => {
                let text = e.xml10_content().map_err(|e| xml_error(at, e))?;
                if stack.is_empty() && text.trim().is_empty() {
                    continue;
                }
                if text.contains("]]>") {
                    return Err(xml_error(at, "\"]]>\" in text"));
                }
                text
            }
            Event::CData(e) => e.xml10_content().map_err(|e| xml_error(at, e))?,
            Event::GeneralRef(e) => Cow::Owned(entity(&e).map_err(|r| xml_error(at, r))?.into()),
            Event::DocType(_) => {
                return Err(xml_error(
                    at,
                    "DOCTYPE and other declarations are not accepted",
                ));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
            Event::Eof => break,
        };
        if stack.is_empty() {
            return Err(xml_error(at, "text outside the root element"));
        }
        let field = if at_path(&stack, &CONTENT_PATH) {
            content.as_mut()
        } else if at_path(&stack, &TO_PATH) {
            Some(envelope.to.get_or_insert_with(String::new))
        } else if at_path(&stack, &MESSAGE_ID_PATH) {
            Some(envelope.message_id.get_or_insert_with(String::new))
        } else if at_path(&stack, &GROUP_ID_PATH) {
            Some(envelope.group_id.get_or_insert_with(String::new))
        } else {
            None
        };
        if let Some(field) = field {
            field.push_str(&text);
        }
    }
    let at = reader.buffer_position();
    if !stack.is_empty() {
        return Err(xml_error(at, "an element is never closed"));
    }
    if !root_seen {
        return Err(xml_error(at, "no root element"));
    }
    let content = content.ok_or_else(|| {
        CallHomeError::NotEnvelope(
            "no soap-env:Body/aml-block:Block/aml-block:Content element".into(),
        )
    })?;
    let content = content.trim();
    if content.is_empty() {
        return Err(CallHomeError::EmptyContent);
    }
    envelope.content = content.to_string();
    envelope.to = envelope.to.map(|s| s.trim().to_string());
    envelope.message_id = envelope.message_id.map(|s| s.trim().to_string());
    envelope.group_id = envelope.group_id.map(|s| s.trim().to_string());
    Ok(envelope)
}

const BLOCK_PATH: [(&str, &str); 3] = [
    (SOAP_NS, "Envelope"),
    (SOAP_NS, "Body"),
    (AML_BLOCK_NS, "Block"),
];
const CONTENT_PATH: [(&str, &str); 4] = [
    (SOAP_NS, "Envelope"),
    (SOAP_NS, "Body"),
    (AML_BLOCK_NS, "Block"),
    (AML_BLOCK_NS, "Content"),
];
const TO_PATH: [(&str, &str); 4] = [
    (SOAP_NS, "Envelope"),
    (SOAP_NS, "Header"),
    (AML_SESSION_NS, "Session"),
    (AML_SESSION_NS, "To"),
];
const MESSAGE_ID_PATH: [(&str, &str); 4] = [
    (SOAP_NS, "Envelope"),
    (SOAP_NS, "Header"),
    (AML_SESSION_NS, "Session"),
    (AML_SESSION_NS, "MessageId"),
];
const GROUP_ID_PATH: [(&str, &str); 6] = [
    (SOAP_NS, "Envelope"),
    (SOAP_NS, "Body"),
    (AML_BLOCK_NS, "Block"),
    (AML_BLOCK_NS, "Header"),
    (AML_BLOCK_NS, "BlockGroup"),
    (AML_BLOCK_NS, "GroupId"),
];

fn at_path(stack: &[(String, String)], path: &[(&str, &str)]) -> bool {
    stack.len() == path.len()
        && stack
            .iter()
            .zip(path)
            .all(|((ns, local), (want_ns, want_local))| ns == want_ns && local == want_local)
}

fn xml_error(at: u64, reason: impl std::fmt::Display) -> CallHomeError {
    CallHomeError::Xml {
        at: usize::try_from(at).unwrap_or(usize::MAX),
        reason: reason.to_string(),
    }
}

/// The namespace of an element event: `""` when none applies, or the
/// undeclared prefix as the error.
fn namespace(resolved: ResolveResult<'_>) -> Result<String, String> {
    match resolved {
        ResolveResult::Bound(ns) => Ok(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(prefix) => Err(String::from_utf8_lossy(&prefix).into_owned()),
    }
}

/// Attribute syntax (quoting, duplicates) and values (entities, no `<`).
fn check_attributes(start: &BytesStart<'_>) -> Result<(), String> {
    for attr in start.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        if attr.value.contains(&b'<') {
            return Err("'<' inside an attribute value".into());
        }
        attr.normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A character or predefined entity reference; any other entity is unknown,
/// as no DTD can declare one.
fn entity(reference: &BytesRef<'_>) -> Result<char, String> {
    let unknown = || {
        format!(
            "unknown entity &{};",
            String::from_utf8_lossy(reference.as_ref())
        )
    };
    if let Some(c) = reference.resolve_char_ref().map_err(|e| e.to_string())? {
        return Ok(c);
    }
    match reference.as_ref() {
        b"lt" => Ok('<'),
        b"gt" => Ok('>'),
        b"amp" => Ok('&'),
        b"quot" => Ok('"'),
        b"apos" => Ok('\''),
        _ => Err(unknown()),
    }
}

/// `2013-06-05 03:11:36 GMT+00:00`, as AML writes it. A time that cannot
/// be moved to UTC (the calendar's very edge) keeps, and names, its offset.
fn creation_date(now: OffsetDateTime) -> String {
    let t = now.checked_to_offset(time::UtcOffset::UTC).unwrap_or(now);
    let (h, m, _) = t.offset().as_hms();
    let sign = if t.offset().is_negative() { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} GMT{sign}{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        h.unsigned_abs(),
        m.unsigned_abs()
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// CDATA cannot contain `]]>`; split it across two sections.
fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const JSON: &str = r#"{"type":"ENTITLEMENT","message_id":"m-1","note":"a]]>b & <c>"}"#;

    fn sample() -> String {
        wrap(
            JSON,
            "https://sat.example/Transportgateway/services/DeviceRequestHandler?a=1&b=2",
            "M1:FOC2104R0XX:51AEAC68",
            "N540-24Z8Q2C-M@C@FOC2104R0XX",
            datetime!(2013-06-05 03:11:36 UTC),
        )
    }

    #[test]
    fn round_trips_any_json() {
        let xml = sample();
        assert!(xml.contains("<aml-block:CreationDate>2013-06-05 03:11:36 GMT+00:00<"));
        let env = unwrap_envelope(&xml).unwrap();
        assert_eq!(env.content, JSON);
        assert_eq!(env.message_id.as_deref(), Some("M1:FOC2104R0XX:51AEAC68"));
        assert_eq!(
            env.to.as_deref(),
            Some("https://sat.example/Transportgateway/services/DeviceRequestHandler?a=1&b=2")
        );
        assert_eq!(
            env.group_id.as_deref(),
            Some("G1:N540-24Z8Q2C-M@C@FOC2104R0XX:M1:FOC2104R0XX:51AEAC68")
        );
    }

    #[test]
    fn a_second_content_or_block_is_refused_not_joined() {
        let good = sample();
        let content = format!(
            "<aml-block:Content>{}</aml-block:Content>",
            super::cdata(JSON)
        );
        assert!(good.contains(&content));
        let block_start = good.find("<aml-block:Block ").unwrap();
        let block_end = good.find("</aml-block:Block>").unwrap() + "</aml-block:Block>".len();
        let block = &good[block_start..block_end];
        let cases = [
            good.replacen(&content, &format!("{content}{content}"), 1),
            good.replacen(
                &content,
                &format!(
                    "{content}<aml-block:Content>{}</aml-block:Content>",
                    super::cdata("{}")
                ),
                1,
            ),
            good.replacen(&content, &format!("{content}<aml-block:Content/>"), 1),
            good.replacen(block, &format!("{block}{block}"), 1),
        ];
        for case in &cases {
            assert!(
                matches!(unwrap(case), Err(CallHomeError::NotEnvelope(_))),
                "{:?}: {case}",
                unwrap(case)
            );
        }
    }

    #[test]
    fn creation_dates_never_panic() {
        assert_eq!(
            creation_date(datetime!(2013-06-05 05:11:36 +2)),
            "2013-06-05 03:11:36 GMT+00:00"
        );
        assert_eq!(
            creation_date(datetime!(9999-12-31 23:59:59 -23:59)),
            "9999-12-31 23:59:59 GMT-23:59"
        );
    }

    #[test]
    fn other_prefixes_and_escaped_text_are_read_too() {
        let xml = format!(
            r#"<e:Envelope xmlns:e="{SOAP_NS}"><e:Body><b:Block xmlns:b="{AML_BLOCK_NS}"><!-- c --><b:Content>
            {{&quot;type&quot;:&quot;RENEW&quot;}}</b:Content></b:Block></e:Body></e:Envelope>"#
        );
        assert_eq!(unwrap(&xml).unwrap(), r#"{"type":"RENEW"}"#);
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        let good = sample();
        let mut cases: Vec<String> = vec![
            String::new(),
            "{\"type\":\"ENTITLEMENT\"}".into(),
            "<a>".into(),
            "<a></b>".into(),
            "</a>".into(),
            "<!DOCTYPE x [<!ENTITY a \"b\">]><x/>".into(),
            format!("<soap-env:Envelope xmlns:soap-env=\"{SOAP_NS}\"/>"),
            "<soap-env:Envelope/>".into(),
            format!("<x:Envelope xmlns:x=\"urn:other\"></x:Envelope>"),
            good.replace(&super::cdata(JSON), "<x>1</x>"),
            good.replace(&super::cdata(JSON), "  "),
            good.replace("</soap-env:Envelope>", ""),
            format!("{good}<extra/>"),
            good.replace("&amp;b=2", "&bogus;"),
            good.replace(
                "soap-env:mustUnderstand=\"true\"",
                "soap-env:mustUnderstand=true",
            ),
        ];
        // Every prefix of a valid envelope, cut at char boundaries.
        cases.extend(
            (0..good.trim_end().len())
                .step_by(7)
                .filter(|i| good.is_char_boundary(*i))
                .map(|i| good[..i].to_string()),
        );
        for case in &cases {
            assert!(unwrap(case).is_err(), "accepted: {case}");
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(unwrap(&deep).is_err());
    }

    #[test]
    fn hostile_input_is_refused_without_panicking() {
        let good = sample();
        let cut = |i: usize| good.get(..i).unwrap_or(&good).to_string();
        let laughs = concat!(
            "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">",
            "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>",
            "<lolz>&lol2;</lolz>"
        );
        let header = "<soap-env:Header>";
        let deep = good.replacen(
            header,
            &format!("{header}{}{}", "<d>".repeat(80), "</d>".repeat(80)),
            1,
        );
        // What a caller makes of a body that is not UTF-8.
        let not_utf8 = String::from_utf8_lossy(b"<soap-env:Envelope \xff\xfe\x00/>").into_owned();
        let cases: Vec<(&str, String)> = vec![
            (
                "truncated in a tag",
                cut(good.find("<aml-block:Con").unwrap_or(0) + 5),
            ),
            (
                "truncated in CDATA",
                cut(good.find("<![CDATA[").unwrap_or(0) + 12),
            ),
            ("DOCTYPE with entities", laughs.into()),
            (
                "DOCTYPE before a good envelope",
                format!("<!DOCTYPE x>{good}"),
            ),
            ("deep nesting inside the header", deep),
            ("not UTF-8", not_utf8),
            (
                "undeclared prefix",
                good.replace("<aml-block:Type>", "<zz:Type>")
                    .replace("</aml-block:Type>", "</zz:Type>"),
            ),
            (
                "SOAP prefix bound elsewhere",
                good.replace(&format!("\"{SOAP_NS}\""), "\"urn:not-soap\""),
            ),
            (
                "element inside Content",
                good.replace(&super::cdata(JSON), "<x/>"),
            ),
            ("CDATA outside the root", format!("{good}<![CDATA[x]]>")),
            ("entity outside the root", format!("{good}&amp;")),
            (
                "duplicate attribute",
                good.replace(
                    "soap-env:role=",
                    "soap-env:mustUnderstand=\"1\" soap-env:role=",
                ),
            ),
            (
                "'<' in an attribute",
                good.replace("mustUnderstand=\"true\"", "mustUnderstand=\"<\""),
            ),
            (
                "unknown entity in an attribute",
                good.replace("mustUnderstand=\"true\"", "mustUnderstand=\"&x;\""),
            ),
            (
                "\"--\" in a comment",
                good.replace("<soap-env:Body>", "<soap-env:Body><!-- a -- b -->"),
            ),
            ("bad character reference", good.replace("&amp;b=2", "&#0;")),
        ];
        for (what, case) in &cases {
            assert!(unwrap(case).is_err(), "{what}: accepted {case}");
        }
        assert!(matches!(
            unwrap(&cases[0].1),
            Err(CallHomeError::Xml { .. })
        ));
        // A byte order mark and a default namespace are fine.
        let bom = format!(
            "\u{feff}{}",
            good.replace("soap-env:", "")
                .replace("xmlns:soap-env=", "xmlns=")
        );
        assert_eq!(unwrap(&bom).unwrap(), JSON);
    }
}
