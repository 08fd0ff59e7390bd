//! API keys: creating them (the secret is shown once) and checking a presented one.

use convo_core::{ApiKey, Result, Store, Timestamp, UserId, ids};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every secret starts with this, so leaked keys are easy to spot (and scan for).
pub const SECRET_PREFIX: &str = "convo_sk_";

/// SHA-256 of a secret, lowercase hex: what the store keeps instead of the secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a key for `user` (or an admin key) and returns it with its secret,
/// `convo_sk_` + 64 hex digits. Only the hash is stored: the secret cannot be shown
/// again.
pub async fn create_key(
    store: &dyn Store,
    user: Option<&str>,
    admin: bool,
    label: &str,
    expires_at: Option<Timestamp>,
) -> Result<(ApiKey, String)> {
    let user = match user {
        Some(u) => Some(UserId::new(u)?.as_str().to_string()),
        None => None,
    };
    if user.is_none() && !admin {
        return Err(convo_core::Error::invalid(
            "user",
            "a key needs a user, or must be an admin key",
        ));
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{SECRET_PREFIX}{}", hex::encode(bytes));
    let key = ApiKey {
        id: ids::new_id(ids::API_KEY),
        hash: hash_secret(&secret),
        user,
        admin,
        label: label.to_string(),
        created_at: Timestamp::now(),
        expires_at,
        revoked_at: None,
    };
    let stored = store.create_api_key(key).await?;
    Ok((stored, secret))
}

/// True when the store holds no key at all: the server then runs in local
/// single-user mode, and the binary must bind only loopback.
pub async fn local_mode(store: &dyn Store) -> Result<bool> {
    Ok(store.list_api_keys().await?.is_empty())
}

/// Why a presented key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    Unknown,
    Revoked,
    Expired,
}

/// Finds the key for a presented secret and checks it is usable now.
pub(crate) async fn check(
    store: &dyn Store,
    secret: &str,
    now: Timestamp,
) -> Result<std::result::Result<ApiKey, KeyProblem>> {
    let hash = hash_secret(secret);
    let Some(key) = store.find_api_key(&hash).await? else {
        return Ok(Err(KeyProblem::Unknown));
    };
    // The store matched on the hash already; comparing again in constant time keeps
    // a backend with a timing-leaky index from becoming an oracle.
    if !bool::from(key.hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Ok(Err(KeyProblem::Unknown));
    }
    if key.revoked_at.is_some() {
        return Ok(Err(KeyProblem::Revoked));
    }
    if key.expires_at.is_some_and(|t| t <= now) {
        return Ok(Err(KeyProblem::Expired));
    }
    Ok(Ok(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
