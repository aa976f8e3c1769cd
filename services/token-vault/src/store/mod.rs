//! The vault's tables as sea-orm entities. Each service owns its tables; no other service
//! reads these (they go through the API).
//!
//! | table | what |
//! |---|---|
//! | `token_vault_connections` | one row per connected iD: who, scopes, state, expiry, and the sealed token pair |
//! | `token_vault_client_tokens` | one row per client-credentials scope (`/webhook`, `/read-public`), sealed |
//! | `token_vault_audit` | append-only: every token read and every revoke/disconnect, by caller and purpose |

pub(crate) mod audit;
pub(crate) mod client_token;
pub(crate) mod connection;
