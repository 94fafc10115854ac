//! The typed client other services (and loadgen) use to call users.

use mesh::{
    CallError, MeshClient,
    auth::{Caller, client_address},
};

use crate::model::{LoginRequest, RegisterRequest, Session, User};

/// Calls the users service through the mesh's outbound stack.
#[derive(Clone, Debug)]
pub struct UsersClient {
    mesh: MeshClient,
}

impl UsersClient {
    /// The destination name edges and spans use.
    pub const DESTINATION: &'static str = crate::NAME;

    pub fn new(mesh: MeshClient) -> Self {
        Self { mesh }
    }

    /// `POST /users`: creates an account. 409 `email_taken` if the email is
    /// in use, 422 `invalid_input` naming the bad field.
    pub async fn register(&self, request: &RegisterRequest) -> Result<User, CallError> {
        self.mesh
            .post("/users", &[])
            .json(request)
            .send_json()
            .await
    }

    /// `POST /sessions`: logs in. 401 `invalid_credentials` for an unknown
    /// email or a wrong password alike; 429 `too_many_attempts` after too
    /// many failures for this email from this client.
    ///
    /// `client` is the end client's address, signed
    /// ([`mesh::auth::ClientAddress::attest`]), for a caller that logs in
    /// on others' behalf (the gateway): failures then count against that
    /// address, not the caller's. Without it they count against the
    /// caller's own address.
    pub async fn login(
        &self,
        request: &LoginRequest,
        client: Option<&str>,
    ) -> Result<Session, CallError> {
        let builder = self.mesh.post("/sessions", &[]).json(request);
        let builder = match client {
            Some(signed) => builder.header(client_address::HEADER.as_str(), signed),
            None => builder,
        };
        builder.send_json().await
    }

    /// `GET /users/{user_id}` on behalf of `caller`, whose token is
    /// forwarded: the profile, 403 `forbidden` unless `caller` is
    /// `user_id`, 404 `not_found`.
    pub async fn get(&self, caller: &Caller, user_id: &str) -> Result<User, CallError> {
        self.mesh
            .get("/users/{user_id}", &[user_id])
            .bearer_auth(caller.token())
            .send_json()
            .await
    }
}
