//! The events payments publishes (docs/events.md), through its outbox.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `payment.captured`: the provider approved a charge and it is recorded.
pub const PAYMENT_CAPTURED: &str = "payment.captured";
/// The `schema_version` of [`PaymentCaptured`].
pub const PAYMENT_CAPTURED_VERSION: u32 = 1;

/// `payment.refunded`: a captured payment was refunded.
pub const PAYMENT_REFUNDED: &str = "payment.refunded";
/// The `schema_version` of [`PaymentRefunded`].
pub const PAYMENT_REFUNDED_VERSION: u32 = 1;

/// `data` of a `payment.refunded` event, schema version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub payment_id: String,
    pub user_id: String,
    pub course_id: String,
    pub amount_cents: i64,
    pub currency: String,
    pub refunded_at: DateTime<Utc>,
}

/// `data` of a `payment.captured` event, schema version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub payment_id: String,
    pub user_id: String,
    pub course_id: String,
    pub amount_cents: i64,
    pub currency: String,
    pub captured_at: DateTime<Utc>,
}
