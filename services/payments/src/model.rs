//! The service's JSON contract, shared by its routes and its typed client.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The request header naming one logical charge across retries.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Set (to `true`) on a response that replays the answer stored for an
/// `Idempotency-Key` instead of charging again.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The error code of a 402: the provider declined the card. Callers tell a
/// decline (the user must act) from a failure (retry later) by this code.
pub const PAYMENT_DECLINED: &str = "payment_declined";

/// `POST /payments` body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeRequest {
    /// Who pays: must be the caller (the bearer token's subject).
    #[schema(min_length = 1, max_length = 64)]
    pub user_id: String,
    /// No control characters.
    #[schema(min_length = 1, max_length = 64)]
    pub course_id: String,
    /// Minor units (cents), 1 to 1 000 000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub amount_cents: i64,
    /// Three uppercase letters, like `USD`.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

/// Whether the money moved.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The provider approved and captured the charge.
    Captured,
    /// The provider declined the card; nothing was charged.
    Declined,
    /// Captured, then refunded (`POST /payments/{id}/refund`).
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Captured => "captured",
            Self::Declined => "declined",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "captured" => Some(Self::Captured),
            "declined" => Some(Self::Declined),
            "refunded" => Some(Self::Refunded),
            _ => None,
        }
    }
}

/// Why the provider declined a card.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    InsufficientFunds,
    CardDeclined,
    ExpiredCard,
}

impl DeclineReason {
    pub const ALL: [Self; 3] = [
        Self::InsufficientFunds,
        Self::CardDeclined,
        Self::ExpiredCard,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InsufficientFunds => "insufficient_funds",
            Self::CardDeclined => "card_declined",
            Self::ExpiredCard => "expired_card",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A payment: one charge attempt the provider answered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Payment {
    pub id: String,
    pub user_id: String,
    pub course_id: String,
    pub amount_cents: i64,
    pub currency: String,
    pub status: PaymentStatus,
    /// Only on declined payments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<DeclineReason>,
    /// The provider's id for the charge, for reconciliation and support.
    pub provider_reference: Option<String>,
    /// RFC 3339, UTC.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

/// `GET /users/{user_id}/payments`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PaymentList {
    pub items: Vec<Payment>,
}

/// The 402 body: the mesh's `{"error": {"code", "message"}}` plus the
/// decline reason, so generic clients still read `code` and `message`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DeclineBody {
    pub error: DeclineDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DeclineDetail {
    /// Always [`PAYMENT_DECLINED`].
    pub code: String,
    pub message: String,
    pub reason: DeclineReason,
}

/// What `POST /payments` answered with a 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub payment: Payment,
    /// True when the answer is the one stored for the key (200 with
    /// `Idempotent-Replayed: true`): this call charged nothing.
    pub replayed: bool,
}
