//! Work that left a Selenium Grid node and has not landed on another one yet.
//!
//! A slot whose session on a node is dropped (after a failure, or because the node's breaker is
//! open) records a [`Departure`]; the next session that lands on another node of the same Grid
//! worker completes it as an `other_node` recovery, the move the report counts per node. A
//! departure whose slot ended with its phase first (a node killed at a phase's end) is parked
//! with the run, and the next phase's first fresh session on another node completes it.

use crate::recovery::FailureClass;
use std::time::Instant;

/// A slot's work left `node` of Grid worker `worker`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Departure {
    /// The Grid worker's id.
    pub worker: String,
    /// The node the work left.
    pub node: String,
    /// Why: the failure's class (an open node breaker counts as the slot's last failure).
    pub class: FailureClass,
    /// When it left: the move's time to recover is measured from here.
    pub since: Instant,
}
