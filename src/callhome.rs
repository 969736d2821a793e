//! The Call Home AML envelope (SOAP 1.2) around a Smart Licensing JSON
//! message, in both directions: devices wrap requests, the server unwraps
//! them and wraps its answer the same way (REFERENCE.md).
//!
//! `unwrap` reads untrusted input, so it is a small, strict XML reader:
//! well-formedness, namespaces and the element path are checked; DOCTYPE
//! (and with it entity expansion) is refused; nothing panics.

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
    let mut reader = Reader::new(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut envelope = Envelope::default();
    let mut content: Option<String> = None;
    let mut root_seen = false;
    while let Some(event) = reader.next()? {
        match event {
            Event::Start { name, attrs, empty } => {
                if stack.is_empty() && root_seen {
                    return Err(reader.error("more than one root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(reader.error("elements nested too deeply"));
                }
                root_seen = true;
                let element = Element::open(name, &attrs, stack.last(), &reader)?;
                let path = path_of(&stack, &element);
                if stack.is_empty() && !element.is(SOAP_NS, "Envelope") {
                    return Err(CallHomeError::NotEnvelope(format!(
                        "the root element is {} (expected soap-env:Envelope in {SOAP_NS})",
                        element.name
                    )));
                }
                if inside_content(&stack) {
                    return Err(CallHomeError::NotEnvelope(format!(
                        "aml-block:Content holds the element {}; it must hold the JSON message as CDATA",
                        element.name
                    )));
                }
                if path == CONTENT_PATH {
                    content.get_or_insert_with(String::new);
                }
                stack.push(element);
                if empty {
                    stack.pop();
                }
            }
            Event::End { name } => {
                let Some(open) = stack.pop() else {
                    return Err(reader.error(&format!("</{name}> closes nothing")));
                };
                if open.name != name {
                    return Err(reader.error(&format!("</{name}> closes <{}>", open.name)));
                }
            }
            Event::Text { text, cdata } => {
                if stack.is_empty() {
                    if cdata || !text.trim().is_empty() {
                        return Err(reader.error("text outside the root element"));
                    }
                    continue;
                }
                if inside_content(&stack[..stack.len() - 1]) {
                    // Text in a child of Content: refused at its start tag already.
                    continue;
                }
                let path: Vec<(&str, &str)> = stack
                    .iter()
                    .map(|e| (e.ns.as_str(), e.local.as_str()))
                    .collect();
                if path == CONTENT_PATH {
                    if let Some(c) = content.as_mut() {
                        c.push_str(&text);
                    }
                } else if path == TO_PATH {
                    envelope.to = Some(collect(&envelope.to, &text));
                } else if path == MESSAGE_ID_PATH {
                    envelope.message_id = Some(collect(&envelope.message_id, &text));
                } else if path == GROUP_ID_PATH {
                    envelope.group_id = Some(collect(&envelope.group_id, &text));
                }
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(reader.error(&format!("<{}> is never closed", open.name)));
    }
    if !root_seen {
        return Err(reader.error("no root element"));
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

fn collect(so_far: &Option<String>, more: &str) -> String {
    format!("{}{more}", so_far.as_deref().unwrap_or(""))
}

fn path_of<'a>(stack: &'a [Element], last: &'a Element) -> Vec<(&'a str, &'a str)> {
    stack
        .iter()
        .chain(std::iter::once(last))
        .map(|e| (e.ns.as_str(), e.local.as_str()))
        .collect()
}

fn inside_content(stack: &[Element]) -> bool {
    let path: Vec<(&str, &str)> = stack
        .iter()
        .map(|e| (e.ns.as_str(), e.local.as_str()))
        .collect();
    path.len() >= CONTENT_PATH.len() && path[..CONTENT_PATH.len()] == CONTENT_PATH
}

/// `2013-06-05 03:11:36 GMT+00:00`, as AML writes it.
fn creation_date(now: OffsetDateTime) -> String {
    let t = now.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} GMT+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
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

/// An open element with its resolved namespace and in-scope declarations.
struct Element {
    name: String,
    ns: String,
    local: String,
    /// Prefix ("" for the default namespace) → URI, including inherited ones.
    scope: Vec<(String, String)>,
}

impl Element {
    fn open(
        name: String,
        attrs: &[(String, String)],
        parent: Option<&Element>,
        reader: &Reader,
    ) -> Result<Element, CallHomeError> {
        let mut scope = parent.map(|p| p.scope.clone()).unwrap_or_default();
        for (key, value) in attrs {
            if key == "xmlns" {
                scope.push((String::new(), value.clone()));
            } else if let Some(prefix) = key.strip_prefix("xmlns:") {
                scope.push((prefix.to_string(), value.clone()));
            }
        }
        let (prefix, local) = match name.split_once(':') {
            Some((p, l)) => (p, l),
            None => ("", name.as_str()),
        };
        let ns = scope
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, uri)| uri.clone());
        let ns = match ns {
            Some(ns) => ns,
            None if prefix.is_empty() => String::new(),
            None => {
                return Err(reader.error(&format!("the prefix of <{name}> is not declared")));
            }
        };
        Ok(Element {
            local: local.to_string(),
            name,
            ns,
            scope,
        })
    }

    fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }
}

enum Event {
    Start {
        name: String,
        attrs: Vec<(String, String)>,
        empty: bool,
    },
    End {
        name: String,
    },
    Text {
        text: String,
        cdata: bool,
    },
}

struct Reader<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(src: &'a str) -> Self {
        // A UTF-8 byte order mark is allowed before the declaration.
        let pos = if src.starts_with('\u{feff}') { 3 } else { 0 };
        Self { src, pos }
    }

    fn error(&self, reason: &str) -> CallHomeError {
        CallHomeError::Xml {
            at: self.pos,
            reason: reason.to_string(),
        }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    /// Skips to just after `end`, returning what was in between.
    fn until(&mut self, end: &str, what: &str) -> Result<&'a str, CallHomeError> {
        let rest = self.rest();
        let Some(i) = rest.find(end) else {
            return Err(self.error(&format!("unterminated {what}")));
        };
        self.pos += i + end.len();
        Ok(&rest[..i])
    }

    fn next(&mut self) -> Result<Option<Event>, CallHomeError> {
        loop {
            let rest = self.rest();
            if rest.is_empty() {
                return Ok(None);
            }
            if rest.starts_with("<?") {
                self.pos += 2;
                self.until("?>", "processing instruction")?;
            } else if rest.starts_with("<!--") {
                self.pos += 4;
                let body = self.until("-->", "comment")?;
                if body.contains("--") {
                    return Err(self.error("\"--\" inside a comment"));
                }
            } else if rest.starts_with("<![CDATA[") {
                self.pos += 9;
                let text = self.until("]]>", "CDATA section")?;
                return Ok(Some(Event::Text {
                    text: text.to_string(),
                    cdata: true,
                }));
            } else if rest.starts_with("<!") {
                return Err(self.error("DOCTYPE and other declarations are not accepted"));
            } else if let Some(after) = rest.strip_prefix("</") {
                let Some(end) = after.find('>') else {
                    return Err(self.error("unterminated end tag"));
                };
                let name = after[..end].trim_end();
                check_name(name).map_err(|r| self.error(&r))?;
                self.pos += 2 + end + 1;
                return Ok(Some(Event::End {
                    name: name.to_string(),
                }));
            } else if rest.starts_with('<') {
                return self.start_tag().map(Some);
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                let raw = &rest[..end];
                let text = decode(raw).map_err(|r| self.error(&r))?;
                self.pos += end;
                return Ok(Some(Event::Text { text, cdata: false }));
            }
        }
    }

    fn start_tag(&mut self) -> Result<Event, CallHomeError> {
        self.pos += 1;
        let name = self.take_name()?;
        let mut attrs: Vec<(String, String)> = Vec::new();
        loop {
            let had_space = self.skip_space();
            let rest = self.rest();
            if rest.starts_with("/>") {
                self.pos += 2;
                return Ok(Event::Start {
                    name,
                    attrs,
                    empty: true,
                });
            }
            if rest.starts_with('>') {
                self.pos += 1;
                return Ok(Event::Start {
                    name,
                    attrs,
                    empty: false,
                });
            }
            if rest.is_empty() {
                return Err(self.error("unterminated start tag"));
            }
            if !had_space {
                return Err(self.error("attributes must be separated by white space"));
            }
            let key = self.take_name()?;
            self.skip_space();
            if !self.rest().starts_with('=') {
                return Err(self.error(&format!("attribute {key} has no value")));
            }
            self.pos += 1;
            self.skip_space();
            let quote = match self.rest().chars().next() {
                Some(q @ ('"' | '\'')) => q,
                _ => return Err(self.error(&format!("the value of {key} is not quoted"))),
            };
            self.pos += 1;
            let raw = self.until(&quote.to_string(), "attribute value")?;
            if raw.contains('<') {
                return Err(self.error("'<' inside an attribute value"));
            }
            let value = decode(raw).map_err(|r| self.error(&r))?;
            if attrs.iter().any(|(k, _)| *k == key) {
                return Err(self.error(&format!("attribute {key} given twice")));
            }
            attrs.push((key, value));
        }
    }

    fn skip_space(&mut self) -> bool {
        let rest = self.rest();
        let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n']);
        self.pos += rest.len() - trimmed.len();
        rest.len() != trimmed.len()
    }

    fn take_name(&mut self) -> Result<String, CallHomeError> {
        let rest = self.rest();
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '>' | '=' | '<'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        check_name(name).map_err(|r| self.error(&r))?;
        self.pos += end;
        Ok(name.to_string())
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid_start = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
    let valid_rest = name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if valid_start && valid_rest && name.matches(':').count() <= 1 && !name.ends_with(':') {
        Ok(())
    } else {
        Err(format!("{name:?} is not an XML name"))
    }
}

/// Resolves the five predefined entities and character references.
fn decode(raw: &str) -> Result<String, String> {
    if raw.contains("]]>") {
        return Err("\"]]>\" in text".into());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(end) = after.find(';') else {
            return Err("'&' without a closing ';'".into());
        };
        let entity = &after[..end];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity &{entity};"))?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
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
}
