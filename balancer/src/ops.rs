//! The domain layer: the operations the admin doors (the CLI, the admin pages and their JSON
//! API, the Scalelite API, agent enrolment, the demo) perform on nodes, integrations and users,
//! each validated once, here, whichever door asked.

pub mod integrations;
pub mod nodes;

/// Input an operation refuses, with a sentence saying why (a usage error on the CLI, a form
/// message on the web, a failed answer on the Scalelite API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);
