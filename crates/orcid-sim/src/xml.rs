//! ORCID XML request bodies, read into the JSON value a JSON client would have sent (§2.1, §9).
//!
//! The mapping is mechanical, so the JSON reader ([`crate::records::normalize`]) then applies
//! the same rules to both formats:
//!
//! - namespace prefixes are dropped (`common:title` → `title`); `xmlns` declarations and
//!   `xsi:*` attributes are ignored;
//! - attributes become keys (`put-code`, `visibility`, `path`, `display-index`,
//!   `language-code`, `currency-code`, …);
//! - an element with child elements becomes an object; a leaf becomes its text as a string, or
//!   `{"value": text, …attributes}` when it has attributes (`<funding:amount
//!   currency-code="USD">10</funding:amount>` → `{"value": "10", "currency-code": "USD"}`);
//! - repeated elements become arrays, and so do ORCID's list elements ([`LIST_ELEMENTS`]) even
//!   when they occur once.
//!
//! A leaf's text is kept as written (no trimming), as JAXB keeps it.

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Value};

/// Elements that are arrays in ORCID's JSON even when there is one: external ids, work and
/// funding contributors, and the works of a bulk.
pub const LIST_ELEMENTS: &[&str] = &["external-id", "contributor", "work"];

/// Why an XML body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The body is not UTF-8 (ORCID's XML is UTF-8).
    #[error("the XML body is not UTF-8")]
    NotUtf8,
    /// Not well-formed.
    #[error("malformed XML at byte {position}: {message}")]
    Malformed {
        /// Byte offset where the reader stopped.
        position: u64,
        /// What the reader found.
        message: String,
    },
    /// No root element.
    #[error("the XML body has no root element")]
    NoRoot,
    /// Content after the root element.
    #[error("content after the root element <{root}>")]
    AfterRoot {
        /// The root element's local name.
        root: String,
    },
}

/// A parsed body: the root element's local name and its content as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct XmlBody {
    /// Local name of the root element (`work`, `employment`, `bulk`, …).
    pub root: String,
    /// The root element as JSON (an object for every ORCID item).
    pub value: Value,
}

/// One open element.
struct Frame {
    name: String,
    attributes: Map<String, Value>,
    children: Map<String, Value>,
    has_children: bool,
    text: String,
}

impl Frame {
    fn open(start: &BytesStart<'_>) -> Result<Frame, String> {
        let mut attributes = Map::new();
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|e| e.to_string())?;
            let key = attribute.key;
            let qualified = key.as_ref();
            if qualified == "xmlns"
                || qualified.starts_with("xmlns:")
                || qualified.starts_with("xsi:")
            {
                continue;
            }
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| e.to_string())?;
            attributes.insert(
                key.local_name().as_ref().to_owned(),
                Value::String(value.into_owned()),
            );
        }
        Ok(Frame {
            name: start.local_name().as_ref().to_owned(),
            attributes,
            children: Map::new(),
            has_children: false,
            text: String::new(),
        })
    }

    fn add_child(&mut self, name: String, value: Value) {
        self.has_children = true;
        match self.children.get_mut(&name) {
            // Element values are never arrays, so an array here is this element's list.
            Some(Value::Array(list)) => list.push(value),
            Some(first) => {
                let first = first.take();
                self.children.insert(name, Value::Array(vec![first, value]));
            }
            None => {
                let value = if LIST_ELEMENTS.contains(&name.as_str()) {
                    Value::Array(vec![value])
                } else {
                    value
                };
                self.children.insert(name, value);
            }
        }
    }

    fn close(self) -> (String, Value) {
        let value = if self.has_children {
            // Whitespace between child elements is layout, not content.
            let mut object = self.attributes;
            object.extend(self.children);
            Value::Object(object)
        } else if self.attributes.is_empty() {
            Value::String(self.text)
        } else {
            let mut object = self.attributes;
            object.insert("value".to_owned(), Value::String(self.text));
            Value::Object(object)
        };
        (self.name, value)
    }
}

/// Reads an XML body.
pub fn parse(body: &[u8]) -> Result<XmlBody, XmlError> {
    let text = std::str::from_utf8(body).map_err(|_| XmlError::NotUtf8)?;
    // Some of ORCID's own samples have whitespace (or a BOM) before the declaration.
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let mut reader = Reader::from_str(text);
    let malformed = |reader: &Reader<&[u8]>, message: String| XmlError::Malformed {
        position: reader.buffer_position(),
        message,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<(String, Value)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(&reader, e.to_string()))?;
        match event {
            Event::Start(_) | Event::Empty(_) if stack.is_empty() && root.is_some() => {
                return Err(after_root(root));
            }
            Event::Start(start) => {
                let frame = Frame::open(&start).map_err(|m| malformed(&reader, m))?;
                stack.push(frame);
            }
            Event::Empty(start) => {
                let frame = Frame::open(&start).map_err(|m| malformed(&reader, m))?;
                close_into(frame, &mut stack, &mut root);
            }
            Event::End(_) => {
                // The reader checks that end tags match their start tags.
                let Some(frame) = stack.pop() else {
                    return Err(malformed(&reader, "unexpected end tag".to_owned()));
                };
                close_into(frame, &mut stack, &mut root);
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                match stack.last_mut() {
                    Some(frame) => frame.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None if root.is_some() => return Err(after_root(root)),
                    None => return Err(malformed(&reader, "text before the root".to_owned())),
                }
            }
            Event::CData(cdata) => {
                let content = cdata.xml_content(XmlVersion::Implicit1_0);
                if let Some(frame) = stack.last_mut() {
                    frame.text.push_str(&content);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|e| malformed(&reader, e.to_string()))?
                {
                    Some(c) => c.to_string(),
                    None => resolve_predefined_entity(&reference)
                        .ok_or_else(|| {
                            malformed(&reader, format!("unknown entity &{};", &*reference))
                        })?
                        .to_owned(),
                };
                if let Some(frame) = stack.last_mut() {
                    frame.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(&reader, format!("<{}> is not closed", open.name)));
    }
    let (root, value) = root.ok_or(XmlError::NoRoot)?;
    Ok(XmlBody { root, value })
}

fn close_into(frame: Frame, stack: &mut [Frame], root: &mut Option<(String, Value)>) {
    let (name, value) = frame.close();
    match stack.last_mut() {
        Some(parent) => parent.add_child(name, value),
        None => *root = Some((name, value)),
    }
}

fn after_root(root: Option<(String, Value)>) -> XmlError {
    XmlError::AfterRoot {
        root: root.map(|(name, _)| name).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn elements_attributes_and_lists() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<funding:funding put-code="12" visibility="public" xmlns:funding="http://www.orcid.org/ns/funding"
    xmlns:common="http://www.orcid.org/ns/common" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="x">
  <funding:title>
    <common:title>A &amp; B &#x41;</common:title>
    <common:translated-title language-code="fr">T</common:translated-title>
  </funding:title>
  <funding:amount currency-code="USD">10</funding:amount>
  <common:external-ids>
    <common:external-id><common:external-id-type>grant_number</common:external-id-type></common:external-id>
  </common:external-ids>
  <common:start-date><common:year>2020</common:year><common:month/></common:start-date>
  <funding:short-description><![CDATA[<raw>]]></funding:short-description>
</funding:funding>"#;
        let parsed = parse(body).unwrap();
        assert_eq!(parsed.root, "funding");
        assert_eq!(
            parsed.value,
            json!({
                "put-code": "12",
                "visibility": "public",
                "title": {"title": "A & B A", "translated-title": {"language-code": "fr", "value": "T"}},
                "amount": {"currency-code": "USD", "value": "10"},
                "external-ids": {"external-id": [{"external-id-type": "grant_number"}]},
                "start-date": {"year": "2020", "month": ""},
                "short-description": "<raw>",
            })
        );
    }

    #[test]
    fn repeated_elements_become_arrays() {
        let parsed = parse(b"<a><b>1</b><b>2</b><c>3</c></a>").unwrap();
        assert_eq!(parsed.value, json!({"b": ["1", "2"], "c": "3"}));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(matches!(
            parse(b"<a><b></a>"),
            Err(XmlError::Malformed { .. })
        ));
        assert!(matches!(parse(b"<a>"), Err(XmlError::Malformed { .. })));
        assert_eq!(parse(b"  "), Err(XmlError::NoRoot));
        assert!(matches!(
            parse(b"<a/><b/>"),
            Err(XmlError::AfterRoot { .. })
        ));
        assert_eq!(parse(&[0xff, 0xfe]), Err(XmlError::NotUtf8));
        assert!(matches!(
            parse(b"<a>&nbsp;</a>"),
            Err(XmlError::Malformed { .. })
        ));
    }
}
