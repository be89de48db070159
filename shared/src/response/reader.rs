//! Reading typed fields out of an [`Element`] while keeping every child it did not read.
//!
//! Missing fields read as defaults (older BBB versions and the mobile API omit some); fields that
//! are present but malformed are errors. Numbers tolerate a grouping comma (`1,234`), which old
//! bbb-web templates printed.

use crate::xml::{Element, XmlError};

/// A cursor over one element's children that remembers which ones were consumed.
pub(crate) struct FieldReader<'a> {
    element: &'a Element,
    used: Vec<bool>,
}

impl<'a> FieldReader<'a> {
    pub(crate) fn new(element: &'a Element) -> FieldReader<'a> {
        FieldReader {
            element,
            used: vec![false; element.children.len()],
        }
    }

    /// The first unconsumed child called `name`, marked as consumed.
    pub(crate) fn take(&mut self, name: &str) -> Option<&'a Element> {
        let index = self
            .element
            .children
            .iter()
            .enumerate()
            .position(|(i, c)| !self.used[i] && c.name == name)?;
        self.used[index] = true;
        Some(&self.element.children[index])
    }

    pub(crate) fn string(&mut self, name: &str) -> String {
        self.take(name).map(|e| e.text.clone()).unwrap_or_default()
    }

    pub(crate) fn opt_string(&mut self, name: &str) -> Option<String> {
        self.take(name).map(|e| e.text.clone())
    }

    pub(crate) fn bool(&mut self, name: &str) -> Result<bool, XmlError> {
        Ok(self.opt_bool(name)?.unwrap_or(false))
    }

    pub(crate) fn opt_bool(&mut self, name: &str) -> Result<Option<bool>, XmlError> {
        let Some(e) = self.take(name) else {
            return Ok(None);
        };
        match e.text.trim() {
            "true" => Ok(Some(true)),
            "false" | "" => Ok(Some(false)),
            other => Err(invalid(name, other)),
        }
    }

    pub(crate) fn u64(&mut self, name: &str) -> Result<u64, XmlError> {
        Ok(self.opt_u64(name)?.unwrap_or(0))
    }

    pub(crate) fn opt_u64(&mut self, name: &str) -> Result<Option<u64>, XmlError> {
        let Some(e) = self.take(name) else {
            return Ok(None);
        };
        let text = e.text.trim();
        if text.is_empty() {
            return Ok(Some(0));
        }
        text.replace(',', "")
            .parse()
            .map(Some)
            .map_err(|_| invalid(name, text))
    }

    pub(crate) fn u32(&mut self, name: &str) -> Result<u32, XmlError> {
        let value = self.u64(name)?;
        u32::try_from(value).map_err(|_| invalid(name, &value.to_string()))
    }

    /// `<name><k1>v1</k1><k2>v2</k2></name>` as ordered pairs.
    pub(crate) fn pairs(&mut self, name: &str) -> Vec<(String, String)> {
        self.take(name)
            .map(|e| {
                e.children
                    .iter()
                    .map(|c| (c.name.clone(), c.text.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The children nobody read, in document order.
    pub(crate) fn rest(self) -> Vec<Element> {
        self.element
            .children
            .iter()
            .zip(self.used)
            .filter(|(_, used)| !used)
            .map(|(c, _)| c.clone())
            .collect()
    }
}

/// `<name><k1>v1</k1>…</name>` from ordered pairs.
pub(crate) fn pairs_element(name: &str, pairs: &[(String, String)]) -> Element {
    let mut element = Element::new(name);
    for (k, v) in pairs {
        element.push(Element::text(k.clone(), v.clone()));
    }
    element
}

fn invalid(element: &str, value: &str) -> XmlError {
    XmlError::InvalidValue {
        element: element.to_owned(),
        value: value.to_owned(),
    }
}
