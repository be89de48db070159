//! getRecordings' filters, read from a query and applied to recordings: `meetingID` and
//! `recordID` comma lists (record ids match as prefixes; meetingID is ignored when recordID is
//! given), `state` (default `published,unpublished`; `any` for all), `meta_*` equality (AND-ed,
//! as BBB and Mconf-LB; or Scalelite's rule, [`MetaRule::AnyOf`]) and `offset`/`limit` (BBB
//! 2.6+, limit 1-100).

use crate::query::Query;
use crate::response::{messages, Message, Recording};

/// The filters of one getRecordings call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingQuery {
    pub record_ids: Vec<String>,
    pub meeting_ids: Vec<String>,
    /// Empty means any state.
    pub states: Vec<String>,
    pub meta: Vec<(String, String)>,
    pub meta_rule: MetaRule,
    pub offset: usize,
    pub limit: Option<usize>,
}

/// How `meta_*` filters combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetaRule {
    /// Every filter holds, each value exactly (BBB, Mconf-LB).
    #[default]
    All,
    /// Any filter holds, each value a comma list of accepted values (Scalelite).
    AnyOf,
}

impl RecordingQuery {
    pub fn from_query(q: &Query) -> Result<RecordingQuery, Message> {
        let record_ids = q.list("recordID");
        let meeting_ids = if record_ids.is_empty() {
            q.list("meetingID")
        } else {
            Vec::new()
        };
        let mut states = q.list("state");
        if states.is_empty() {
            states = vec!["published".into(), "unpublished".into()];
        }
        if states.iter().any(|s| s == "any") {
            states.clear();
        }
        let number = |name: &str, error: &'static str| -> Result<Option<usize>, Message> {
            q.get_trimmed(name)
                .map(|v| v.parse::<usize>().map_err(|_| messages::validation(error)))
                .transpose()
        };
        Ok(RecordingQuery {
            record_ids,
            meeting_ids,
            states,
            meta: q
                .with_prefix("meta_")
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            meta_rule: MetaRule::All,
            offset: number("offset", "Offset must be an integral value")?.unwrap_or(0),
            limit: number("limit", "Limit must be an integral value")?.map(|l| l.clamp(1, 100)),
        })
    }

    /// Whether `r` passes every filter (offset and limit aside).
    pub fn matches(&self, r: &Recording) -> bool {
        (self.record_ids.is_empty()
            || self
                .record_ids
                .iter()
                .any(|id| r.record_id.starts_with(id.as_str())))
            && (self.meeting_ids.is_empty() || self.meeting_ids.contains(&r.meeting_id))
            && (self.states.is_empty() || self.states.contains(&r.state))
            && self.meta_matches(r)
    }

    fn meta_matches(&self, r: &Recording) -> bool {
        match self.meta_rule {
            MetaRule::All => self.meta.iter().all(|(k, v)| r.meta(k) == Some(v.as_str())),
            MetaRule::AnyOf => {
                self.meta.is_empty()
                    || self.meta.iter().any(|(k, v)| {
                        r.meta(k)
                            .is_some_and(|have| v.split(',').any(|want| want.trim() == have))
                    })
            }
        }
    }

    /// The matching recordings of `all`, paginated.
    pub fn apply(&self, all: impl IntoIterator<Item = Recording>) -> Vec<Recording> {
        all.into_iter()
            .filter(|r| self.matches(r))
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
            .collect()
    }

    /// Whether the call named a meeting or a recording (GET_RECORDINGS_API_FILTERED).
    pub fn is_filtered(&self) -> bool {
        !self.record_ids.is_empty() || !self.meeting_ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, meeting: &str, state: &str, course: &str) -> Recording {
        Recording {
            record_id: id.into(),
            meeting_id: meeting.into(),
            state: state.into(),
            metadata: vec![("course".into(), course.into())],
            ..Recording::default()
        }
    }

    fn ids(query: &str) -> Vec<String> {
        ids_by(query, MetaRule::All)
    }

    fn ids_by(query: &str, rule: MetaRule) -> Vec<String> {
        let all = vec![
            rec("aa-1", "m1", "published", "cs"),
            rec("ab-2", "m2", "unpublished", "cs"),
            rec("ac-3", "m1", "deleted", "math"),
            rec("bb-4", "m3", "processing", "math"),
        ];
        let mut q = RecordingQuery::from_query(&Query::parse(query).unwrap()).unwrap();
        q.meta_rule = rule;
        q.apply(all).into_iter().map(|r| r.record_id).collect()
    }

    #[test]
    fn filters_like_bbb() {
        assert_eq!(ids(""), ["aa-1", "ab-2"]);
        assert_eq!(ids("state=any"), ["aa-1", "ab-2", "ac-3", "bb-4"]);
        assert_eq!(ids("meetingID=m1,m3&state=any"), ["aa-1", "ac-3", "bb-4"]);
        assert_eq!(
            ids("recordID=a&meetingID=m3&state=any"),
            ["aa-1", "ab-2", "ac-3"]
        );
        assert_eq!(ids("meta_course=math&state=any"), ["ac-3", "bb-4"]);
        assert_eq!(ids("state=any&offset=1&limit=2"), ["ab-2", "ac-3"]);
        assert_eq!(ids("state=deleted%2Cprocessing"), ["ac-3", "bb-4"]);
        assert!(RecordingQuery::from_query(&Query::parse("limit=x").unwrap()).is_err());
    }

    #[test]
    fn meta_filters_and_like_bbb_or_like_scalelite() {
        let both = "meta_course=cs&meta_term=fall&state=any";
        assert!(ids(both).is_empty(), "BBB: every filter");
        assert_eq!(ids_by(both, MetaRule::AnyOf), ["aa-1", "ab-2"]);
        let listed = "meta_course=math%2Ccs&state=any";
        assert!(ids(listed).is_empty(), "BBB: the value as given");
        assert_eq!(
            ids_by(listed, MetaRule::AnyOf),
            ["aa-1", "ab-2", "ac-3", "bb-4"]
        );
    }
}
