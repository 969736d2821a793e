//! Telling operators: compliance changes to the log and syslog
//! ([`Notifier`]), and Call Home alerts (DESIGN §10): compliance shortfalls, registration
//! problems, sync trouble and the server's start and stop, delivered to the
//! configured profiles by e-mail or HTTP POST, as short text, full text or
//! the AML XML envelope.
//!
//! Every alert is first written to the outbox (`store::outbox`), in the
//! transaction of the change that caused it where there is one, and is
//! delivered from there: by the server's delivery thread, or by the command
//! that caused it right after its commit. A kill -9 therefore loses none,
//! and a profile whose target is down gets it later. What happens to each
//! message is counted per profile and message type (Success, Failed,
//! Dropped, Last-sent); Inqueue is what still waits in the outbox.

mod alert;
pub mod callhome;
mod delivery;
mod mail;
mod notifier;
mod render;
mod statistics;
pub mod syslog;
mod transport;

pub use alert::{category_name, sync_overdue, Alert};
pub use delivery::{deliver_waiting, CallHome};
pub use notifier::Notifier;
pub use statistics::{statistics, Statistics};
