//! A small lossless XML element tree, parsed and written with quick-xml.
//!
//! BBB answers are plain element trees (no mixed content, no namespaces). The typed responses in
//! `response` read from and write to this tree, so elements they do not know (metadata,
//! plugin fields, newer BBB fields) survive a round trip untouched. Comments, declarations and
//! formatting whitespace are dropped; CDATA becomes text. Parsing is iterative with a depth limit,
//! so hostile input cannot overflow the stack. No I/O here.

use std::fmt::Write as _;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Why an XML document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("the document has no root element")]
    NoRoot,
    #[error("the document nests deeper than {0} elements")]
    TooDeep(usize),
    #[error("expected root element <{expected}>, found <{found}>")]
    UnexpectedRoot { expected: String, found: String },
    #[error("element <{element}> has an invalid value {value:?}")]
    InvalidValue { element: String, value: String },
}

/// One element: name, attributes in order, text, children in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

/// Deepest nesting accepted; BBB documents nest about 8 deep.
pub const MAX_DEPTH: usize = 64;

impl Element {
    pub fn new(name: impl Into<String>) -> Element {
        Element {
            name: name.into(),
            ..Element::default()
        }
    }

    /// An element holding only text.
    pub fn text(name: impl Into<String>, text: impl Into<String>) -> Element {
        Element {
            name: name.into(),
            text: text.into(),
            ..Element::default()
        }
    }

    /// Builder: adds a child.
    pub fn with(mut self, child: Element) -> Element {
        self.children.push(child);
        self
    }

    /// Builder: adds a text child.
    pub fn with_text(self, name: &str, text: impl ToString) -> Element {
        self.with(Element::text(name, text.to_string()))
    }

    pub fn push(&mut self, child: Element) {
        self.children.push(child);
    }

    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the first child called `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parses a document and returns its root element.
    pub fn parse(xml: &str) -> Result<Element, XmlError> {
        let mut reader = Reader::from_str(xml);
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let event = reader
                .read_event()
                .map_err(|e| XmlError::Malformed(e.to_string()))?;
            match event {
                Event::Start(start) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(XmlError::TooDeep(MAX_DEPTH));
                    }
                    stack.push(open(&start)?);
                }
                Event::Empty(start) => {
                    let element = open(&start)?;
                    close(&mut stack, &mut root, element)?;
                }
                Event::End(_) => {
                    let mut element = stack
                        .pop()
                        .ok_or_else(|| XmlError::Malformed("unexpected end tag".into()))?;
                    if !element.children.is_empty() && element.text.trim().is_empty() {
                        element.text.clear();
                    }
                    close(&mut stack, &mut root, element)?;
                }
                Event::Text(text) => {
                    let text = text
                        .unescape()
                        .map_err(|e| XmlError::Malformed(e.to_string()))?;
                    match stack.last_mut() {
                        Some(parent) => parent.text.push_str(&text),
                        None if text.trim().is_empty() => {}
                        None => return Err(XmlError::Malformed("text outside the root".into())),
                    }
                }
                Event::CData(data) => {
                    let data = String::from_utf8(data.into_inner().into_owned())
                        .map_err(|e| XmlError::Malformed(e.to_string()))?;
                    if let Some(parent) = stack.last_mut() {
                        parent.text.push_str(&data);
                    }
                }
                Event::Eof => break,
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
        if !stack.is_empty() {
            return Err(XmlError::Malformed(
                "unclosed element at end of input".into(),
            ));
        }
        root.ok_or(XmlError::NoRoot)
    }

    /// Writes the element compactly, as bbb-web's `<#compress>` templates do.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write_to(&mut out);
        out
    }

    /// Appends the element to `out`.
    pub fn write_to(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}=\"{}\"", quick_xml::escape::escape(v.as_str()));
        }
        if self.children.is_empty() && self.text.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        out.push_str(&quick_xml::escape::escape(self.text.as_str()));
        for child in &self.children {
            child.write_to(out);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

fn open(start: &BytesStart<'_>) -> Result<Element, XmlError> {
    let name = utf8(start.name().as_ref())?;
    let mut element = Element::new(name);
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError::Malformed(e.to_string()))?;
        let key = utf8(attr.key.as_ref())?;
        let value = attr
            .unescape_value()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        element.attrs.push((key, value.into_owned()));
    }
    Ok(element)
}

fn close(
    stack: &mut [Element],
    root: &mut Option<Element>,
    element: Element,
) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(XmlError::Malformed("more than one root element".into())),
    }
    Ok(())
}

fn utf8(bytes: &[u8]) -> Result<String, XmlError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| XmlError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_writes_compactly() {
        let xml = "<!-- c --><response>\n  <returncode>SUCCESS</returncode>\n  <a x=\"1 &amp; 2\">t &lt; u</a>\n  <b/><c><![CDATA[x&y]]></c></response>";
        let root = Element::parse(xml).unwrap();
        assert_eq!(root.child_text("returncode"), Some("SUCCESS"));
        assert_eq!(root.child("a").unwrap().attr("x"), Some("1 & 2"));
        assert_eq!(root.child_text("c"), Some("x&y"));
        assert_eq!(
            root.to_xml(),
            "<response><returncode>SUCCESS</returncode><a x=\"1 &amp; 2\">t &lt; u</a><b/><c>x&amp;y</c></response>"
        );
        assert_eq!(Element::parse(&root.to_xml()).unwrap(), root);
    }

    #[test]
    fn keeps_significant_spaces_in_values() {
        let root = Element::parse("<r><fullName>  Ann </fullName></r>").unwrap();
        assert_eq!(root.child_text("fullName"), Some("  Ann "));
    }

    #[test]
    fn refuses_broken_documents() {
        for bad in ["", "<a>", "<a></b>", "<a/><b/>", "text", "<a x=1/>", "</a>"] {
            assert!(Element::parse(bad).is_err(), "{bad:?} accepted");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(Element::parse(&deep), Err(XmlError::TooDeep(MAX_DEPTH)));
    }

    fn element() -> impl Strategy<Value = Element> {
        let leaf = (
            "[a-zA-Z][a-zA-Z0-9_-]{0,6}",
            "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\r]{0,12}",
        )
            .prop_map(|(n, t)| Element::text(n, t.trim().to_owned()));
        leaf.prop_recursive(4, 32, 4, |inner| {
            (
                "[a-zA-Z][a-zA-Z0-9_-]{0,6}",
                proptest::collection::vec(inner, 1..4),
            )
                .prop_map(|(n, children)| Element {
                    name: n,
                    children,
                    ..Element::default()
                })
        })
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in ".{0,300}") {
            let _ = Element::parse(&input);
        }

        #[test]
        fn parse_never_panics_on_xmlish_input(input in "[<>/a-c =\"'&;!\\[\\]CDAT-]{0,120}") {
            let _ = Element::parse(&input);
        }

        #[test]
        fn written_trees_parse_back(tree in element()) {
            prop_assert_eq!(Element::parse(&tree.to_xml()).unwrap(), tree);
        }
    }
}
