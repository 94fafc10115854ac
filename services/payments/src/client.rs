//! The typed client other services (and loadgen) use to call payments.

use std::sync::Arc;

use mesh::{CallError, MeshClient, auth::Caller};

use crate::model::{
    Charge, ChargeRequest, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, PAYMENT_DECLINED, Payment,
    PaymentList,
};

/// Calls the payments service through the mesh's outbound stack.
#[derive(Clone, Debug)]
pub struct PaymentsClient {
    mesh: MeshClient,
}

impl PaymentsClient {
    /// The destination name edges and spans use.
    pub const DESTINATION: &'static str = crate::NAME;

    pub fn new(mesh: MeshClient) -> Self {
        Self { mesh }
    }

    /// `POST /payments`: charges once per `idempotency_key`.
    ///
    /// Make the key once per logical purchase (a UUID) and reuse it on
    /// every retry: a retry then returns the original payment
    /// (`replayed: true`) instead of charging again. A declined card is
    /// `Err(CallError::Status)` with status 402 and code
    /// [`PAYMENT_DECLINED`] (see [`is_declined`]); a provider failure is a
    /// 502 `provider_unavailable`, safe to retry with the same key.
    pub async fn charge(
        &self,
        caller: &Caller,
        idempotency_key: &str,
        request: &ChargeRequest,
    ) -> Result<Charge, CallError> {
        let response = self
            .mesh
            .post("/payments", &[])
            .bearer_auth(caller.token())
            .header(IDEMPOTENCY_KEY, idempotency_key)
            .json(request)
            .send()
            .await?;
        let replayed = response
            .headers()
            .get(IDEMPOTENT_REPLAYED)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let destination: Arc<str> = self.mesh.destination().into();
        let payment: Payment = mesh::outbound::decode(&destination, response).await?;
        Ok(Charge { payment, replayed })
    }

    /// `GET /payments/{payment_id}`: one payment, captured or declined.
    pub async fn get(&self, caller: &Caller, payment_id: &str) -> Result<Payment, CallError> {
        self.mesh
            .get("/payments/{payment_id}", &[payment_id])
            .bearer_auth(caller.token())
            .send_json()
            .await
    }

    /// `POST /payments/{payment_id}/refund`: the payment, refunded (also
    /// when it already was); 409 `not_refundable` for a declined one.
    pub async fn refund(&self, caller: &Caller, payment_id: &str) -> Result<Payment, CallError> {
        self.mesh
            .post("/payments/{payment_id}/refund", &[payment_id])
            .bearer_auth(caller.token())
            .send_json()
            .await
    }

    /// `GET /users/{user_id}/payments`: the user's latest payments (at most
    /// 100), newest first.
    pub async fn list_for_user(
        &self,
        caller: &Caller,
        user_id: &str,
    ) -> Result<Vec<Payment>, CallError> {
        let list: PaymentList = self
            .mesh
            .get("/users/{user_id}/payments", &[user_id])
            .bearer_auth(caller.token())
            .send_json()
            .await?;
        Ok(list.items)
    }
}

/// Whether a [`PaymentsClient::charge`] failed because the card was
/// declined (the user must act) rather than because a call failed.
pub fn is_declined(error: &CallError) -> bool {
    error.code() == Some(PAYMENT_DECLINED)
}
